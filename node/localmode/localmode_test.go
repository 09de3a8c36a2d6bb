package localmode

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/runtime"
)

// testIPPrefix keeps this test process's nodes on their own loopback
// addresses, away from other packages' tests and from an earlier run whose
// leftovers may still be shutting down.
var testIPPrefix = fmt.Sprintf("127.0.%d.", 100+os.Getpid()%100)

// freePort is a TCP port nothing listens on, for the fake cloud.
func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// mesh is a local mesh run by the real binary, as a user would.
type mesh struct {
	t    *testing.T
	bin  string
	dir  string
	port string
}

func (m *mesh) run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, m.bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (m *mesh) up(nodes int, extra ...string) string {
	m.t.Helper()
	args := append([]string{"local", "up", "--dir", m.dir, "--nodes", fmt.Sprint(nodes), "--base-port", m.basePort(),
		"--health-interval", "1s", "--ip-prefix", testIPPrefix, "--timeout", "4m"}, extra...)
	out, err := m.run(5*time.Minute, args...)
	if err != nil {
		m.t.Fatalf("local up: %v\n%s", err, out)
	}
	return out
}

func (m *mesh) basePort() string {
	if m.port == "" {
		m.port = freePort(m.t)
	}
	return m.port
}

func (m *mesh) status() []NodeStatus {
	m.t.Helper()
	out, err := m.run(30*time.Second, "local", "status", "--dir", m.dir, "--json")
	if err != nil {
		m.t.Fatalf("local status: %v\n%s", err, out)
	}
	var st struct{ Nodes []NodeStatus }
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		m.t.Fatalf("local status --json: %v\n%s", err, out)
	}
	return st.Nodes
}

// fakeState reads the fake cloud's /_fake/state.
func (m *mesh) fakeState() fakeCloudState {
	m.t.Helper()
	st, err := readState(m.dir)
	if err != nil {
		m.t.Fatal(err)
	}
	resp, err := http.Get(st.FakeCloud + "/_fake/state")
	if err != nil {
		m.t.Fatal(err)
	}
	defer resp.Body.Close()
	var fs fakeCloudState
	if err := json.NewDecoder(resp.Body).Decode(&fs); err != nil {
		m.t.Fatal(err)
	}
	return fs
}

type fakeCloudState struct {
	Droplets []struct {
		ID      int    `json:"id"`
		Name    string `json:"name"`
		Status  string `json:"status"`
		Actions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"actions"`
	} `json:"droplets"`
	Firewalls []struct {
		Name         string `json:"name"`
		InboundRules []struct {
			Protocol  string `json:"protocol"`
			PortRange string `json:"ports"`
			Sources   struct {
				Addresses []string `json:"addresses"`
			} `json:"sources"`
		} `json:"inbound_rules"`
	} `json:"firewalls"`
	DNSRecords []struct {
		Name    string `json:"name"`
		Content string `json:"content"`
	} `json:"dns_records"`
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func TestLocalUpStatusDownAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node mesh")
	}
	m := &mesh{t: t, bin: runtime.BuildStaticBinary(t, "github.com/dropmesh/dropmesh"), dir: t.TempDir()}
	t.Cleanup(func() { m.run(2*time.Minute, "local", "down", "--dir", m.dir) })
	out := m.up(3)
	for _, want := range []string{"mesh ready", "web UI:", "admin", ". " + filepath.Join(m.dir, EnvFile)} {
		if !strings.Contains(out, want) {
			t.Fatalf("local up printed no %q:\n%s", want, out)
		}
	}
	if info, err := os.Stat(filepath.Join(m.dir, AdminPasswordFile)); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("admin-password: %v %v", info, err)
	}
	env, _ := os.ReadFile(filepath.Join(m.dir, EnvFile))
	for _, v := range []string{"DROPMESH_ADDR=", "DROPMESH_API_KEY=", "DROPMESH_FAKE_CLOUD="} {
		if !bytes.Contains(env, []byte(v)) {
			t.Fatalf("env lacks %s:\n%s", v, env)
		}
	}

	nodes := m.status()
	roles := map[string]int{}
	for _, n := range nodes {
		if !alive(n.PID) || n.API == "" || n.Gossip == "" || n.Raft == "" || n.DropletID == 0 {
			t.Fatalf("node %+v", n)
		}
		roles[n.Role]++
	}
	if len(nodes) != 3 || roles["leader"] != 1 || roles["follower"] != 2 {
		t.Fatalf("status: %+v", nodes)
	}

	// The fake cloud holds three active droplets and the cluster firewall.
	fs := m.fakeState()
	active := 0
	for _, d := range fs.Droplets {
		if d.Status == "active" {
			active++
		}
	}
	if active != 3 || len(fs.Droplets) != 3 {
		t.Fatalf("fake cloud droplets: %+v", fs.Droplets)
	}
	if len(fs.Firewalls) != 1 {
		t.Fatalf("firewalls: %+v", fs.Firewalls)
	}
	open := map[string][]string{}
	for _, r := range fs.Firewalls[0].InboundRules {
		open[r.Protocol+"/"+r.PortRange] = r.Sources.Addresses
	}
	if _, ok := open["tcp/22"]; ok {
		t.Fatal("the firewall opens SSH")
	}
	for _, p := range []string{"tcp/80", "tcp/443"} {
		if !contains(open[p], "0.0.0.0/0") {
			t.Fatalf("%s not open to the world: %v", p, open)
		}
	}
	for _, p := range []string{"tcp/9999", "tcp/7946", "udp/7946", "tcp/7947"} {
		if len(open[p]) == 0 || contains(open[p], "0.0.0.0/0") {
			t.Fatalf("%s should be VPC-only: %v", p, open[p])
		}
	}

	// Something to find again after the resume.
	c, err := Client(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateWorkspace(context.Background(), "kept"); err != nil {
		t.Fatal(err)
	}

	if out, err := m.run(2*time.Minute, "local", "down", "--dir", m.dir); err != nil {
		t.Fatalf("local down: %v\n%s", err, out)
	}
	for _, n := range nodes {
		if alive(n.PID) {
			t.Fatalf("%s (pid %d) still runs after down", n.ID, n.PID)
		}
	}
	if pid := supervisorPID(m.dir); pid != 0 {
		t.Fatalf("supervisor %d still runs", pid)
	}

	// local up on the same dir resumes the same cluster.
	m.up(3)
	c, err = Client(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the workspace made before down", func() bool {
		list, err := c.Workspaces(context.Background())
		if err != nil {
			return false
		}
		for _, w := range list {
			if w.Name == "kept" {
				return true
			}
		}
		return false
	})
	if fs := m.fakeState(); len(fs.Droplets) != 3 {
		t.Fatalf("resume made droplets: %d", len(fs.Droplets))
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
