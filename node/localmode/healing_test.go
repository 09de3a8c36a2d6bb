package localmode

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/clusterconf"
	"github.com/dropmesh/dropmesh/node/pki"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/node/testkit"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// sampleNodes returns the nodes serving the sample and their public IPs.
func sampleNodes(t *testing.T, c *apiclient.Client) map[string]string {
	t.Helper()
	ins, err := c.Instances(context.Background(), apiclient.InstanceFilter{})
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := c.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ips := map[string]string{}
	for _, n := range nodes {
		ips[n.ID] = n.PublicIP
	}
	out := map[string]string{}
	for _, in := range ins {
		if strings.HasSuffix(in.Service, "/sample/prod/web") && in.Phase == raftfsm.PhaseReady {
			out[in.Node] = ips[in.Node]
		}
	}
	return out
}

// sampleRecords returns the IPs of the sample host's A records in the fake zone.
func (m *mesh) sampleRecords() []string { return m.records("sample." + Zone) }

// actionsOf counts a droplet's actions of one type in the fake cloud.
func (m *mesh) actionsOf(dropletID int, typ string) int {
	n := 0
	for _, d := range m.fakeState().Droplets {
		if d.ID != dropletID {
			continue
		}
		for _, a := range d.Actions {
			if a.Type == typ {
				n++
			}
		}
	}
	return n
}

func (m *mesh) node(id string) NodeStatus {
	for _, n := range m.status() {
		if n.ID == id {
			return n
		}
	}
	m.t.Fatalf("no node %s", id)
	return NodeStatus{}
}

func TestLocalHealing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node mesh and breaks it")
	}
	testkit.RequireDocker(t) // the sample runs in containers
	m := &mesh{t: t, bin: runtimetest.BuildStaticBinary(t, "github.com/dropmesh/dropmesh"), dir: t.TempDir()}
	t.Cleanup(func() { m.run(2*time.Minute, "local", "down", "--dir", m.dir) })
	m.up(3, "--sample")
	c, err := Client(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	serving := sampleNodes(t, c)
	if len(serving) != 2 {
		t.Fatalf("the sample runs on %v, want two nodes", serving)
	}
	var want []string
	for _, ip := range serving {
		want = append(want, ip)
	}
	slices.Sort(want)
	waitFor(t, 30*time.Second, "the sample's two A records", func() bool { return slices.Equal(m.sampleRecords(), want) })

	// 1. A frozen agent: exactly one power-cycle after five failed pings,
	// its record leaves the zone meanwhile, and it comes back healthy.
	var victim string
	for id := range serving {
		if id != info.Leader.ID {
			victim = id
		}
	}
	vs := m.node(victim)
	if err := syscall.Kill(vs.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the frozen node's A record to leave the zone", func() bool {
		return slices.Equal(m.sampleRecords(), []string{serving[otherThan(serving, victim)]})
	})
	waitFor(t, 60*time.Second, "a power-cycle of "+victim, func() bool { return m.actionsOf(vs.DropletID, "power_cycle") >= 1 })
	waitFor(t, 90*time.Second, victim+" back, serving the sample again", func() bool {
		s := sampleNodes(t, c)
		_, ok := s[victim]
		return ok && slices.Equal(m.sampleRecords(), want)
	})
	if n := m.actionsOf(vs.DropletID, "power_cycle"); n != 1 {
		t.Fatalf("%d power-cycles of %s, want exactly one", n, victim)
	}
	health, err := c.ServiceHealth(context.Background(), "default/sample/prod/web")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range health.Instances {
		if in.Node == victim && in.Status != raftfsm.HealthHealthy {
			waitFor(t, 30*time.Second, "the sample on "+victim+" to be healthy", func() bool {
				h, _ := c.ServiceHealth(context.Background(), "default/sample/prod/web")
				for _, in := range h.Instances {
					if in.Node == victim {
						return in.Status == raftfsm.HealthHealthy
					}
				}
				return false
			})
		}
	}

	// 2. A node that never comes back: its power-cycle fails, so it stays
	// dead past the grace; its services move and a replacement droplet joins.
	st, _ := readState(m.dir)
	fault := fmt.Sprintf(`{"method":"POST","path_prefix":"/v2/droplets/%d/actions","status":500}`, vs.DropletID)
	resp, err := http.Post(st.FakeCloud+"/_fake/faults", "application/json", strings.NewReader(fault))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	vs = m.node(victim)
	if err := syscall.Kill(vs.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Minute, "the sample to run on two live nodes again", func() bool {
		s := sampleNodes(t, c)
		_, stillThere := s[victim]
		return len(s) == 2 && !stillThere
	})
	waitFor(t, 3*time.Minute, "a replacement droplet and the dead one gone", func() bool {
		nodes, err := c.Nodes(context.Background())
		if err != nil {
			return false
		}
		ids := map[string]bool{}
		for _, n := range nodes {
			ids[n.ID] = n.Status == raftfsm.NodeActive
		}
		_, deadKept := ids[victim]
		return len(ids) == 3 && !deadKept && ids["node-4"]
	})
	fs := m.fakeState()
	for _, d := range fs.Droplets {
		if d.ID == vs.DropletID && d.Status != "archive" {
			t.Fatalf("the dead droplet %d is still there: %s", d.ID, d.Status)
		}
	}
	// Replacement is revocation: the dead node's certificates are revoked,
	// and its key cannot open a connection to any agent any more.
	ca, err := c.CA(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	revoked := 0
	for _, nc := range ca.Certs {
		if nc.Node == victim {
			if !nc.Revoked {
				t.Fatalf("certificate %s of the replaced %s is not revoked", nc.Serial, victim)
			}
			revoked++
		}
	}
	if revoked == 0 {
		t.Fatalf("no certificate of %s in GET /v1/ca: %+v", victim, ca.Certs)
	}
	creds, err := pki.LoadCredentials(filepath.Join(m.dir, victim, clusterconf.TLSDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range m.status() {
		if n.ID == victim {
			continue
		}
		stolen, err := apiclient.New(apiclient.Config{Addrs: []string{n.API}, APIKey: "none",
			TLS: pki.ClientConfig(creds, &pki.Verifier{Roots: creds.Pool()}, ""), RetryFor: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stolen.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("%s took the replaced %s's certificate: %v", n.ID, victim, err)
		}
	}
	// DIR/env follows the droplets: the replacement in, the dead one out.
	var apis []string
	waitFor(t, 30*time.Second, "DIR/env to list the droplets that exist", func() bool {
		apis = apis[:0]
		for _, n := range m.status() {
			apis = append(apis, n.API)
		}
		env, err := os.ReadFile(filepath.Join(m.dir, EnvFile))
		return err == nil && len(apis) == 3 && !slices.Contains(apis, vs.API) &&
			bytes.Contains(env, []byte("DROPMESH_ADDR="+strings.Join(apis, ",")+"\n"))
	})
}

func otherThan(m map[string]string, id string) string {
	for k := range m {
		if k != id {
			return k
		}
	}
	return ""
}
