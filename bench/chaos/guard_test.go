//go:build chaos

package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	"github.com/dropmesh/dropmesh/node/clusterconf"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// proberPackage answers "can this container reach ADDR?" from inside a
// deployed container.
const proberPackage = "github.com/dropmesh/dropmesh/bench/chaos/testdata/prober"

// probeResult is the prober's answer.
type probeResult struct {
	Addr      string `json:"addr"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error"`
}

// TestChaosWorkloadCannotReachControlPorts deploys a prober through
// dropmesh and asks it, from inside its container, to connect to every
// node's gossip, raft, API and UI port and to a stand-in metadata server on
// the cluster's network. Every one must fail, while each target answers
// the test process (so they listen) and the prober reaches the fake cloud
// on the network's gateway (so the probe itself works).
//
// What stops the prober here: the agents run in containers on a network of
// their own and the prober on the engine's default bridge, and Docker's own
// isolation between bridges drops what goes from one to the other. The
// host rules (scripts/metadata-guard.sh) are what a droplet relies on,
// where the workload's bridge and the agent share a host. This suite must
// not change the machine's iptables, and its agents, fake cloud and test
// process share the machine's network namespace (the fake cloud on the
// cluster network's gateway), so the rules are not applied here. They are
// proven with real Docker and a real agent on a guarded host (a Docker
// engine of the test's own in a network namespace with the guard applied,
// package scripts/guardtest) by node's
// TestGuardedHostCutsDeployedContainersOff, the same check as this one,
// and in bare network namespaces by scripts' TestHostGuard* tests.
func TestChaosWorkloadCannotReachControlPorts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rt := runtimetest.NewTestRuntime(t)
	img := runtimetest.TestImageRepo + "prober-" + runtimetest.RandomSuffix() + ":1"
	if _, err := rt.BuildFromBinary(ctx, runtimetest.BuildStaticBinary(t, proberPackage), img, []string{"/prober"}, 8080); err != nil {
		t.Fatalf("build the prober image: %v", err)
	}
	t.Cleanup(func() { runtimetest.RemoveTestImage(t, rt, img) })

	c := NewCluster(t, DefaultConfig(), NewHistory())

	// The stand-in metadata service: the prober image on port 80, on the
	// cluster's network (a droplet's link-local neighbour).
	metaIP := nthIP(c.Subnet, 250)
	name := c.prefix + "-metadata"
	_, err := c.docker.cli.ContainerCreate(ctx,
		&container.Config{Image: img, Env: []string{"PORT=80"}, Labels: map[string]string{LabelRun: c.run, LabelRole: "metadata"}},
		&container.HostConfig{NetworkMode: container.NetworkMode(c.networkName)},
		&network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			c.networkName: {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: metaIP}}}},
		nil, name)
	if err != nil {
		t.Fatalf("the stand-in metadata server: %v", err)
	}
	if err := c.docker.cli.ContainerStart(ctx, name, container.StartOptions{}); err != nil {
		t.Fatalf("the stand-in metadata server: %v", err)
	}

	cl, err := c.AnyClient()
	if err != nil {
		t.Fatal(err)
	}
	host := "prober." + Zone
	if _, err := cl.DeploySpec(ctx, raftfsm.ServiceSpec{Project: Project, Env: Env, Service: "prober", Kind: raftfsm.KindService,
		Image: img, Port: 8080, Hosts: []string{host}, Replicas: 1, Health: raftfsm.HealthSpec{Path: "/health"}}); err != nil {
		t.Fatalf("deploy the prober: %v", err)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	probe := func(addr string) (probeResult, error) {
		var errs []error
		for _, n := range c.Nodes() {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(n.IP, "80")+"/probe?addr="+url.QueryEscape(addr), nil)
			if err != nil {
				return probeResult{}, err
			}
			req.Host = host
			resp, err := hc.Do(req)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			var res probeResult
			err = json.NewDecoder(resp.Body).Decode(&res)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK && res.Addr == addr {
				return res, nil
			}
			errs = append(errs, fmt.Errorf("%s: status %d: %v", n.ID, resp.StatusCode, err))
		}
		return probeResult{}, errors.Join(errs...)
	}
	fake, err := url.Parse(c.FakeURL)
	if err != nil {
		t.Fatal(err)
	}
	c.waitFor(ctx, 3*time.Minute, "the prober to answer through the edge", func() error {
		res, err := probe(fake.Host)
		if err != nil {
			return err
		}
		if !res.Reachable {
			// The control: what the prober must reach, it reaches.
			return fmt.Errorf("the prober cannot reach the fake cloud at %s: %s", fake.Host, res.Error)
		}
		return nil
	})

	var targets []string
	for _, n := range c.Nodes() {
		for _, p := range []int{clusterconf.DefaultGossipPort, clusterconf.DefaultRaftPort, clusterconf.DefaultAPIPort, clusterconf.DefaultUIPort} {
			targets = append(targets, net.JoinHostPort(n.IP, strconv.Itoa(p)))
		}
	}
	targets = append(targets, net.JoinHostPort(metaIP, "80"))
	for _, a := range targets {
		// Every target listens: the test process reaches it.
		conn, err := net.DialTimeout("tcp", a, 2*time.Second)
		if err != nil {
			t.Fatalf("%s does not answer the test process (%v): the probe below would prove nothing", a, err)
		}
		conn.Close()
	}
	var reached []string
	for _, a := range targets {
		res, err := probe(a)
		if err != nil {
			t.Fatalf("probe %s: %v", a, err)
		}
		if res.Reachable {
			reached = append(reached, a)
		}
		c.logf("from the deployed container: %s -> reachable %v (%s)", a, res.Reachable, res.Error)
	}
	if len(reached) > 0 {
		t.Fatalf("a container deployed through dropmesh reaches %s", strings.Join(reached, ", "))
	}
}
