package node

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/dropmesh/dropmesh/node/imagepeer/enginetest"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/node/testkit"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// randvalContext is a build context whose image stores a random value at
// build time (testdata/randval): two builds give two values.
func randvalContext(t *testing.T) io.Reader {
	t.Helper()
	bin, err := os.ReadFile(runtimetest.BuildStaticBinary(t, "github.com/dropmesh/dropmesh/node/imagepeer/testdata/randval"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		body []byte
	}{
		{"Dockerfile", 0o644, []byte("FROM scratch\nCOPY randval /randval\nRUN [\"/randval\", \"write\"]\nEXPOSE 8080\nENTRYPOINT [\"/randval\"]\n")},
		{"randval", 0o755, bin},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// engineCluster is a cluster of n agents, each with its own Docker engine.
func engineCluster(t *testing.T, n int) (*testCluster, []*enginetest.Engine) {
	t.Helper()
	engines := make([]*enginetest.Engine, n)
	var wg sync.WaitGroup
	for i := range engines {
		wg.Add(1)
		go func() { defer wg.Done(); engines[i] = enginetest.Start(t) }()
	}
	wg.Wait()
	for _, e := range engines {
		if e == nil || e.RT == nil {
			t.FailNow()
		}
	}
	c := startCluster(t, n, func(i int, cfg *Config) {
		cfg.NoRuntime = false
		cfg.DockerHost = engines[i-1].Host // i counts from 1
		cfg.ImageGrace = time.Millisecond  // tests run housekeeping themselves
	})
	return c, engines
}

func httpValue(t *testing.T, addr string) string {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/")
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestBuildOnceAcrossEngines: 4 agents with an engine each deploy a built
// context with 3 replicas. One node builds it, the others get that image
// from a peer: the three containers report one random value and one image
// id. Then a node running it is killed: its instance moves to the fourth
// node, which gets the image from a surviving peer (no registry exists).
func TestBuildOnceAcrossEngines(t *testing.T) {
	c, engines := engineCluster(t, 4)
	ctx := context.Background()
	leader := c.leader()
	info, err := leader.agent.StoreContext(ctx, randvalContext(t))
	if err != nil {
		t.Fatal(err)
	}
	spec := raftfsm.ServiceSpec{Project: "shop", Env: "prod", Service: "rnd", Kind: raftfsm.KindService, Build: info.Digest, Port: 8080,
		Replicas: 3, Health: raftfsm.HealthSpec{Path: "/health"}}
	if d := c.deploy(spec); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy: %s (%s)", d.Status, d.Reason)
	}
	ref := buildTag(info.Digest, "")
	var img raftfsm.Image
	var ins []raftfsm.Instance
	view := func() {
		ins = nil
		leader.agent.fsm.View(func(s *raftfsm.State) {
			if i, ok := s.Images[ref]; ok {
				img = *i
			}
			for _, in := range s.Instances {
				if in.Service == "default/shop/prod/rnd" || s.Services[in.Service] != nil && s.Services[in.Service].Name == "rnd" {
					ins = append(ins, *in)
				}
			}
		})
	}
	view()
	if img.ID == "" || img.Builder == "" || len(ins) != 3 {
		t.Fatalf("image %+v, %d instances: want a committed id, a builder and 3 instances", img, len(ins))
	}
	values := map[string]bool{}
	nodes := map[string]bool{}
	for _, in := range ins {
		nodes[in.Node] = true
		if in.ImageDigest != img.ID {
			t.Errorf("instance on %s runs %s, want %s", in.Node, in.ImageDigest, img.ID)
		}
		values[httpValue(t, in.Address)] = true
	}
	if len(nodes) != 3 || len(values) != 1 {
		t.Fatalf("instances on %v answer %v: want 3 nodes and one build-time value", nodes, values)
	}
	for i, e := range engines {
		id, _, _, err := e.RT.ImageLayers(ctx, ref)
		if nodes[c.nodes[i].cfg.NodeID] && (err != nil || id != img.ID) {
			t.Errorf("engine of %s: %s %v, want %s", c.nodes[i].cfg.NodeID, id, err, img.ID)
		}
	}
	t.Logf("built once on %s as %s, value %v, holders %v", img.Builder, img.ID, values, img.Holders)

	// Kill a node that runs it (not the leader): the fourth node takes
	// the instance over and fetches the image from a surviving peer.
	var victim *testNode
	for _, n := range c.nodes {
		if n != leader && nodes[n.cfg.NodeID] {
			victim = n
			break
		}
	}
	idle := ""
	for _, n := range c.nodes {
		if !nodes[n.cfg.NodeID] {
			idle = n.cfg.NodeID
		}
	}
	c.stop(victim, true)
	c.waitState(leader, 2*time.Minute, "the instance of "+victim.cfg.NodeID+" to run on "+idle, func(s *raftfsm.State) bool {
		for _, in := range s.Instances {
			if in.Node == idle && in.Phase == raftfsm.PhaseReady && in.ImageDigest == img.ID {
				return true
			}
		}
		return false
	})
	view()
	for _, in := range ins {
		if in.Node == idle {
			if v := httpValue(t, in.Address); !values[v] {
				t.Fatalf("the moved instance answers %q, want the build-time value %v", v, values)
			}
		}
	}
}

// TestPushFromALaptopWithoutARegistry: `dropmesh push` sends an image built
// on a third engine (the user's laptop) to one node, with a line per
// layer; a second push sends no layer again; a deploy that names the image
// runs it on both nodes (the other gets it from its peer). No registry
// exists anywhere.
func TestPushFromALaptopWithoutARegistry(t *testing.T) {
	c, _ := engineCluster(t, 2)
	laptop := enginetest.Start(t)
	ctx := context.Background()
	if _, err := laptop.RT.BuildImage(ctx, randvalContext(t), []string{"shop/pushed:1"}, "Dockerfile", nil, nil); err != nil {
		t.Fatal(err)
	}
	id, _, _, err := laptop.RT.ImageLayers(ctx, "shop/pushed:1")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_HOST", laptop.Host)
	leader := c.leader()
	key := leader.agent.Keys().APIKey
	out, code := runCLI(t, c.caFile(), []string{leader.agent.APIAddr()}, key, "push", "shop/pushed:1")
	if code != 0 || !strings.Contains(out, ": sent") || !strings.Contains(out, "pushed docker.io/shop/pushed:1 ("+id+")") {
		t.Fatalf("push: exit %d:\n%s", code, out)
	}
	t.Logf("first push:\n%s", out)
	out, code = runCLI(t, c.caFile(), []string{leader.agent.APIAddr()}, key, "push", "shop/pushed:1")
	if code != 0 || strings.Contains(out, ": sent") || !strings.Contains(out, "already there") {
		t.Fatalf("second push sent layers again: exit %d:\n%s", code, out)
	}
	if out, code := runCLI(t, c.caFile(), []string{leader.agent.APIAddr()}, key, "push", "Not An Image"); code == 0 {
		t.Fatalf("push of a bad reference: exit 0:\n%s", out)
	}
	// The peer routes want a node certificate: the API key alone is refused.
	req, err := http.NewRequest(http.MethodGet, "https://"+leader.agent.APIAddr()+"/v1/internal/images/descriptor?ref=shop/pushed:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := c.cliHTTP().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		t.Fatalf("peer route with the API key and no node certificate: %s", resp.Status)
	}
	spec := raftfsm.ServiceSpec{Project: "shop", Env: "prod", Service: "pushed", Kind: raftfsm.KindService, Image: "shop/pushed:1", Port: 8080,
		Replicas: 2, Health: raftfsm.HealthSpec{Path: "/health"}}
	if d := c.deploy(spec); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy of the pushed image: %s (%s)", d.Status, d.Reason)
	}
	values := map[string]bool{}
	n := 0
	leader.agent.fsm.View(func(s *raftfsm.State) {
		for _, in := range s.Instances {
			if s.Services[in.Service] != nil && s.Services[in.Service].Name == "pushed" {
				n++
				if in.ImageDigest != id {
					t.Errorf("instance on %s runs %s, want %s", in.Node, in.ImageDigest, id)
				}
				values[in.Address] = true
			}
		}
	})
	if n != 2 {
		t.Fatalf("%d instances, want 2", n)
	}
	seen := map[string]bool{}
	for addr := range values {
		seen[httpValue(t, addr)] = true
	}
	if len(seen) != 1 {
		t.Fatalf("the instances answer %v: want the one value built on the laptop", seen)
	}
	// Both nodes put the pushed image there (received, fetched from the
	// peer): both ledgers hold it, so housekeeping may remove it later.
	for _, n := range c.nodes {
		entries, err := n.agent.images.ledger.Entries()
		if err != nil || entries["docker.io/shop/pushed:1"].ID != id {
			t.Errorf("%s's ledger: %v %v, want docker.io/shop/pushed:1 %s", n.agent.cfg.NodeID, entries, err, id)
		}
	}
}

// TestRegistryImageFromAPeerWhenTheRegistryIsDown: one node pulls a
// registry image; with the registry stopped, a second replica's node gets
// the image from that peer. Both record it in their ledgers; once the
// service is undeployed, housekeeping removes it from both engines and
// their image disk use goes down, while the operator's own image stays.
func TestRegistryImageFromAPeerWhenTheRegistryIsDown(t *testing.T) {
	c, engines := engineCluster(t, 2)
	laptop := enginetest.Start(t)
	ctx := context.Background()
	if _, err := laptop.RT.BuildImage(ctx, randvalContext(t), []string{"shop/reg:1"}, "Dockerfile", nil, nil); err != nil {
		t.Fatal(err)
	}
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	ref := strings.TrimPrefix(reg.URL, "http://") + "/shop/reg:1"
	t.Setenv("DOCKER_HOST", laptop.Host) // runtimetest.PushImage's client: the laptop's engine
	runtimetest.PushImage(t, laptop.RT, "shop/reg:1", ref)
	spec := raftfsm.ServiceSpec{Project: "shop", Env: "prod", Service: "reg", Kind: raftfsm.KindService, Image: ref, Port: 8080,
		Replicas: 1, Health: raftfsm.HealthSpec{Path: "/health"}}
	if d := c.deploy(spec); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy from the registry: %s (%s)", d.Status, d.Reason)
	}
	reg.Close() // the registry is down from here on
	spec.Replicas = 2
	if d := c.deploy(spec); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("second replica with the registry down: %s (%s)", d.Status, d.Reason)
	}
	values := map[string]bool{}
	nodes := map[string]bool{}
	c.leader().agent.fsm.View(func(s *raftfsm.State) {
		for _, in := range s.Instances {
			if s.Services[in.Service] != nil && s.Services[in.Service].Name == "reg" {
				nodes[in.Node] = true
				values[httpValue(t, in.Address)] = true
			}
		}
	})
	if len(nodes) != 2 || len(values) != 1 {
		t.Fatalf("instances on %v answer %v: want 2 nodes, one image", nodes, values)
	}
	// Housekeeping: both nodes put the image there (a pull, a peer fetch).
	canon := canonImage(ref)
	usage := map[string]uint64{}
	for i, n := range c.nodes {
		entries, err := n.agent.images.ledger.Entries()
		if err != nil || entries[canon].ID == "" {
			t.Fatalf("%s's ledger lacks %s: %v %v", n.agent.cfg.NodeID, canon, entries, err)
		}
		if _, err := engines[i].RT.BuildImage(ctx, randvalContext(t), []string{"operator/own:1"}, "Dockerfile", nil, nil); err != nil {
			t.Fatal(err)
		}
		usage[n.agent.cfg.NodeID] = n.agent.imageDiskUsage(ctx)
	}
	if err := c.leader().agent.Undeploy(ctx, "shop/prod/reg", "test"); err != nil {
		t.Fatal(err)
	}
	for i, n := range c.nodes {
		testkit.WaitFor(t, 60*time.Second, n.agent.cfg.NodeID+" to remove "+canon, func() bool {
			if err := n.agent.removeUnusedImages(ctx); err != nil {
				t.Logf("housekeeping: %v", err)
			}
			_, err := engines[i].RT.InspectImage(ctx, ref)
			return err != nil
		})
		if _, err := engines[i].RT.InspectImage(ctx, "operator/own:1"); err != nil {
			t.Fatalf("the operator's image was removed from %s: %v", n.agent.cfg.NodeID, err)
		}
		before, after := usage[n.agent.cfg.NodeID], n.agent.imageDiskUsage(ctx)
		t.Logf("%s: images %d -> %d bytes", n.agent.cfg.NodeID, before, after)
		if after >= before {
			t.Fatalf("%s: image disk use %d -> %d, want it down", n.agent.cfg.NodeID, before, after)
		}
	}
}
