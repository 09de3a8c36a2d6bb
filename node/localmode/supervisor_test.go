package localmode

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/cloudops"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi/fakeapitest"
	"github.com/dropmesh/dropmesh/node/bootstrap"
	"github.com/dropmesh/dropmesh/node/pki"
	"github.com/dropmesh/dropmesh/scripts"
)

// DIR/env lists the droplets that exist, not node numbers 1..N: after a
// node is removed and another created, droplet and node numbers differ.
func TestEnvFileFollowsTheDroplets(t *testing.T) {
	fake, url := fakeapitest.Start(t, fakeapi.Options{Token: "local-test", Images: []string{BaseSnapshot}})
	do := cloudops.NewDigitalOcean(cloudops.DOConfig{Token: "local-test", BaseURL: url, PollInterval: 10 * time.Millisecond})
	ctx := context.Background()
	create := func(nodeID string) cloudops.Droplet {
		t.Helper()
		ud, err := scripts.RenderUserData(scripts.UserData{NodeID: nodeID, ClusterName: ClusterName, Env: []string{"DROPMESH_NODE_ID=" + nodeID}})
		if err != nil {
			t.Fatal(err)
		}
		d, err := do.CreateDroplet(ctx, cloudops.DropletSpec{Name: ClusterName + "-" + nodeID, Region: Region, Size: "s-1vcpu-2gb",
			ImageSlug: BaseSnapshot, Tags: []string{bootstrap.ClusterTag(ClusterName, "0123456789abcdef")}, UserData: ud})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	dir := t.TempDir()
	s := &supervisor{cfg: Config{Nodes: 3, Layout: Layout{IPPrefix: "127.0.0.", BasePort: 19000}}, dir: dir, fakeURL: url, fake: fake,
		backend: &processBackend{procs: map[int]*agentProc{}}, log: slog.New(slog.DiscardHandler)}
	addr := func() string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, EnvFile))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "export DROPMESH_ADDR="); ok {
				return v
			}
		}
		t.Fatalf("no DROPMESH_ADDR in DIR/env:\n%s", b)
		return ""
	}

	create("node-1")
	s.writeState()
	if _, err := os.Stat(filepath.Join(dir, EnvFile)); !os.IsNotExist(err) {
		t.Fatalf("DIR/env written before the seed made its secret (%v)", err)
	}
	s.mu.Lock()
	s.apiKey = "key"
	s.mu.Unlock()
	s.writeState()
	if got := addr(); got != "https://127.0.0.2:9999" {
		t.Fatalf("DROPMESH_ADDR=%s with the seed alone", got)
	}
	second := create("node-2")
	create("node-3")
	s.writeState()
	if got := addr(); got != "https://127.0.0.2:9999,https://127.0.0.3:9999,https://127.0.0.4:9999" {
		t.Fatalf("DROPMESH_ADDR=%s with three droplets", got)
	}
	// node-2 is removed and node-4 created: the fourth droplet, at 127.0.0.5.
	if err := do.DeleteDroplet(ctx, second.ID); err != nil {
		t.Fatal(err)
	}
	create("node-4")
	s.writeState()
	if got := addr(); got != "https://127.0.0.2:9999,https://127.0.0.4:9999,https://127.0.0.5:9999" {
		t.Fatalf("DROPMESH_ADDR=%s after node-2 went and node-4 came", got)
	}
	if _, err := Client(dir); err == nil {
		t.Fatal("a client without the CA certificate the env names")
	}
	ca, _, err := pki.NewCA("local-test", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CACertFile), ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Client(dir); err != nil {
		t.Fatalf("the CLI cannot use DIR/env: %v", err)
	}
}
