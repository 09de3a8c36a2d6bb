package node

import (
	"context"
	"encoding/json"

	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/clusterconf"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/raftfsm"
	"github.com/dropmesh/dropmesh/scripts/guardtest"
)

// proberPackage is the chaos suite's prober: an HTTP service that answers
// whether a TCP connection to an address opens from inside its container.
const proberPackage = "github.com/dropmesh/dropmesh/bench/chaos/testdata/prober"

// TestGuardedHostCutsDeployedContainersOff is issue 16's workload check
// with the host rules doing the work (the chaos suite's version passes
// through Docker's isolation between bridges alone): an agent runs on a
// guarded host (package scripts/guardtest: a Docker engine of the test's
// own in a network namespace with metadata-guard applied, as on a
// droplet), bound to the host's private address with discovery on, and
// deploys the prober through its API. From inside the deployed container
// no connection opens to the agent's gossip, raft, discovery gateway, API
// or UI port, nor to a stand-in metadata service on 169.254.169.254, while
// each of them answers the host, and the prober reaches its own service by
// name (discovery's DNS server and forwarder pass the rules); once the
// guard's hooks are removed, the same probes open.
func TestGuardedHostCutsDeployedContainersOff(t *testing.T) {
	if !guardtest.Inside() {
		h := guardtest.Start(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		out, err := h.Command(ctx, "^TestGuardedHostCutsDeployedContainersOff$").CombinedOutput()
		t.Logf("inside the guarded host:\n%s", out)
		if err != nil || !strings.Contains(string(out), "--- PASS: TestGuardedHostCutsDeployedContainersOff") {
			t.Fatalf("inside the guarded host: %v", err)
		}
		return
	}
	ip := guardtest.PrivateIP
	// The stand-in metadata service and UI listen on the host.
	if out, err := exec.Command("ip", "addr", "add", metadataIP+"/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("the stand-in metadata address: %v\n%s", err, out)
	}
	for _, addr := range []string{net.JoinHostPort(metadataIP, "80"), net.JoinHostPort(ip, strconv.Itoa(clusterconf.DefaultUIPort))} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}

	rt := runtimetest.NewTestRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img := runtimetest.TestImageRepo + "prober-" + runtimetest.RandomSuffix() + ":1"
	if _, err := rt.BuildFromBinary(ctx, runtimetest.BuildStaticBinary(t, proberPackage), img, []string{"/prober"}, 8080); err != nil {
		t.Fatalf("build the prober image: %v", err)
	}
	c := startCluster(t, 1, func(i int, cfg *Config) {
		cfg.NoRuntime, cfg.Discovery = false, "on"
		cfg.BindIP, cfg.AdvertiseIP, cfg.PublicIP = ip, ip, ip
	})
	t.Cleanup(func() { c.stopAll(); removeClusterContainers(t, rt, c) })
	n := c.nodes[0]
	if d := c.deploy(raftfsm.ServiceSpec{Project: "shop", Env: "prod", Service: "prober", Kind: raftfsm.KindService, Image: img, Port: 8080,
		Replicas: 1, Health: raftfsm.HealthSpec{Path: "/health"}}); d.Status != raftfsm.DeploySucceeded {
		t.Fatalf("deploy the prober: %s %s", d.Status, d.Reason)
	}
	var ctrID string
	n.agent.View(func(s *raftfsm.State) {
		for _, in := range s.Instances {
			ctrID = in.Container
		}
	})
	ctr, err := rt.Inspect(ctx, ctrID)
	if err != nil || ctr.IP == "" {
		t.Fatalf("the prober's container %q: %v (address %q)", ctrID, err, ctr.IP)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	probe := func(addr string) (reachable bool, why string) {
		t.Helper()
		resp, err := hc.Get("http://" + net.JoinHostPort(ctr.IP, "8080") + "/probe?addr=" + url.QueryEscape(addr))
		if err != nil {
			t.Fatalf("ask the prober: %v", err)
		}
		defer resp.Body.Close()
		var res struct {
			Reachable bool   `json:"reachable"`
			Error     string `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			t.Fatalf("the prober's answer: %v", err)
		}
		return res.Reachable, res.Error
	}
	// The control: discovery's name of its own service opens.
	waitFor(t, time.Minute, "the prober to reach its own service by name", func() bool {
		ok, _ := probe("prober:8080")
		return ok
	})
	var targets []string
	for _, p := range []int{n.cfg.GossipPort, n.cfg.RaftPort, DefaultMeshPort, n.cfg.APIPort, clusterconf.DefaultUIPort} {
		targets = append(targets, net.JoinHostPort(ip, strconv.Itoa(p)))
	}
	targets = append(targets, net.JoinHostPort(metadataIP, "80"))
	for _, a := range targets {
		conn, err := net.DialTimeout("tcp", a, 2*time.Second)
		if err != nil {
			t.Fatalf("%s does not answer the host (%v): the probe would prove nothing", a, err)
		}
		conn.Close()
		if ok, why := probe(a); ok {
			t.Errorf("the deployed container reaches %s", a)
		} else {
			t.Logf("from the deployed container: %s unreachable (%s)", a, why)
		}
	}
	// Without the guard's hooks the same probes open: the guard, not
	// Docker or this test's network, is what cut them.
	guardtest.Unguard(t)
	for _, a := range targets {
		if ok, why := probe(a); !ok {
			t.Errorf("without the guard, the deployed container still cannot reach %s (%s): the probe proves nothing", a, why)
		}
	}
}

// metadataIP is DigitalOcean's metadata service address.
const metadataIP = "169.254.169.254"
