package node

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/clusterconf"
)

// Nothing is served before the parts the handlers use exist (issue 17):
// the API and the UI ports are bound early, but a request that arrives
// while the agent starts is answered only once the mesh and the raft store
// are there. The handler reads the fields the way Leader and Cluster do,
// without the lock, so under -race an early request is also a reported race.
func TestNothingServedBeforeTheMeshExists(t *testing.T) {
	secret, err := clusterconf.NewClusterSecret()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, t.TempDir(), 40)
	cfg.ClusterSecret, cfg.Bootstrap = secret.String(), true
	cfg.AdminPassword = "correct horse battery"
	var early, served atomic.Int32
	opts := testOptions(t)
	opts.UI = func(a *Agent) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if a.mesh == nil || a.store == nil {
				early.Add(1)
			}
			a.Leader()
			a.Members()
			served.Add(1)
			w.WriteHeader(http.StatusNoContent)
		}), nil
	}
	a, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	url := "http://" + cfg.addr(cfg.UIPort) + "/probe"
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		// Ask from the moment the agent starts until it answers (bounded).
		client := &http.Client{Timeout: 20 * time.Second}
		deadline := time.Now().Add(30 * time.Second)
		for i := 0; i < 1_000_000 && time.Now().Before(deadline) && ctx.Err() == nil; i++ {
			resp, err := client.Get(url)
			if err == nil {
				resp.Body.Close()
				return
			}
		}
	}()
	go func() { errc <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-errc:
		t.Fatalf("agent stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("agent not ready")
	}
	<-probed
	if served.Load() == 0 {
		t.Fatal("the UI port never answered")
	}
	if n := early.Load(); n > 0 {
		t.Fatalf("%d requests were served before the mesh or the store existed", n)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run: %v", err)
	}
}
