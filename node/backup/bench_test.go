package backup

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// BenchmarkSign measures signing one S3 request.
func BenchmarkSign(b *testing.B) {
	s := Signer{AccessKey: "AK", SecretKey: "SK", Region: "nyc3", Service: "s3"}
	req, _ := http.NewRequest(http.MethodPut, "https://nyc3.digitaloceanspaces.com/bucket/backups/dropmesh-x.state.json", nil)
	req.Header.Set("Content-Type", "application/json")
	b.ReportAllocs()
	for b.Loop() {
		s.Sign(req, EmptyPayloadHash, time.Now())
	}
}

// BenchmarkBackup measures one whole backup (export, raft snapshot,
// manifest) of a state with 200 services, to a directory and to the
// signing fake S3, and reports the bytes written per backup.
func BenchmarkBackup(b *testing.B) {
	n := newNode(b)
	for i := range 200 {
		spec := raftfsm.ServiceSpec{Workspace: testWS, Project: "shop", Env: "prod", Service: fmt.Sprintf("svc-%d", i),
			Image: "127.0.0.1:5000/shop/web:1.4", Port: 8080, Vars: map[string]string{"LOG_LEVEL": strings.Repeat("x", 200)}}
		spec.Normalize()
		n.must(&raftfsm.DeployService{At: t0, DeployID: fmt.Sprintf("d-%d", i), WorkspaceID: testWS, Spec: spec,
			Placement: []raftfsm.Assignment{{Slot: 0, Node: "node-1"}}})
	}
	f := newFakeS3(b)
	c, err := NewS3Client(f.config())
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		t    Target
	}{{"dir", DirTarget(b.TempDir())}, {"s3", S3Target(c, "bench")}} {
		b.Run(tc.name, func(b *testing.B) {
			clk := newClock(time.Now())
			cfg := DefaultConfig()
			cfg.Now = clk.Now
			var size int64
			for b.Loop() {
				clk.Add(time.Second)
				info, err := Backup(context.Background(), StoreSource(n.store), tc.t, cfg)
				if err != nil {
					b.Fatal(err)
				}
				size = info.Files[0].Size + info.Files[1].Size
			}
			b.ReportMetric(float64(size)/1024, "KiB/backup")
		})
	}
}
