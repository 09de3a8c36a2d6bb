package localmode

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/compose"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// votingApp is Docker's example voting app's Compose file (licence header
// kept, only image names swapped for stand-ins; see the file).
const votingApp = "../testdata/voting-app/compose.yaml"

// cli runs the dropmesh CLI against the mesh, with DIR/env's variables,
// as a user who ran `. DIR/env` would.
func (m *mesh) cli(timeout time.Duration, args ...string) (string, error) {
	m.t.Helper()
	b, err := os.ReadFile(filepath.Join(m.dir, EnvFile))
	if err != nil {
		m.t.Fatal(err)
	}
	env := os.Environ()
	for _, line := range strings.Split(string(b), "\n") {
		if kv := strings.TrimPrefix(strings.TrimSpace(line), "export "); strings.Contains(kv, "=") {
			env = append(env, kv)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, m.bin, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}

// appContainer is one running container of the app.
type appContainer struct {
	id, node, service string
}

// appContainers lists the running containers of workspace id ws by
// service, waiting until there is exactly one for each of want services
// (a roll-out's old and new containers overlap for a while).
func (m *mesh) appContainers(ws string, want int) map[string]appContainer {
	m.t.Helper()
	out := map[string]appContainer{}
	waitFor(m.t, time.Minute, "one running container per service of "+ws, func() bool {
		clear(out)
		count := 0
		for _, c := range m.containers(map[string]string{runtime.LabelWorkspace: ws}) {
			if !c.Running {
				continue
			}
			count++
			svc := c.Labels[runtime.LabelService]
			out[svc] = appContainer{id: c.ID, node: c.Labels[runtime.LabelNode], service: svc}
		}
		return count == want && len(out) == want
	})
	return out
}

// specFile writes specs as a multi-document spec file (the JSON form the
// CLI sends) and returns its path.
func specFile(t *testing.T, specs []raftfsm.ServiceSpec) string {
	t.Helper()
	var b bytes.Buffer
	for _, s := range specs {
		doc, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(doc)
		b.WriteString("\n")
	}
	path := filepath.Join(t.TempDir(), "specs.yaml")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLocalComposeAppFindsServicesByName is issue 20's scenario on a real
// `dropmesh local up` mesh of three agent processes: Docker's example
// voting app, deployed with `dropmesh deploy -f compose.yaml`, and the same
// specs in a second workspace. From inside every container each other
// service answers by its Compose name on its port, across nodes (over the
// agents' mutual-TLS gateways), and it is its own workspace's container
// that answers; a container cannot reach the other workspace's
// containers; a second apply says "unchanged" and replaces nothing; after
// the stateful redis moves to another node its name follows it within
// seconds and the services that use it keep their containers.
func TestLocalComposeAppFindsServicesByName(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node mesh and the voting app twice")
	}
	if os.Geteuid() != 0 {
		t.Skip("service discovery needs root (DNS on port 53 of each workspace network, a local route for the service addresses)")
	}
	rt := runtimetest.NewTestRuntime(t)
	for _, s := range []struct {
		env, name string
		port      int
	}{{"STANDIN_VOTE", "vote", 80}, {"STANDIN_RESULT", "result", 80}, {"STANDIN_WORKER", "worker", 0},
		{"STANDIN_REDIS", "redis", 6379}, {"STANDIN_POSTGRES", "postgres", 5432}} {
		t.Setenv(s.env, runtimetest.BuildStandinImage(t, rt, s.name, s.port))
	}
	loaded, err := compose.Load(context.Background(), []string{votingApp}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]int{}
	for _, s := range loaded.Specs {
		if s.Port > 0 {
			ports[s.Service] = s.Port
		}
	}
	if len(loaded.Specs) != 5 || len(ports) != 4 {
		t.Fatalf("mapped %d services with ports %v", len(loaded.Specs), ports)
	}

	m := &mesh{t: t, bin: runtimetest.BuildStaticBinary(t, "github.com/dropmesh/dropmesh"), dir: t.TempDir()}
	t.Cleanup(func() { m.run(2*time.Minute, "local", "down", "--dir", m.dir) })
	m.up(3)
	if out, err := m.cli(10*time.Minute, "deploy", "-f", votingApp); err != nil {
		t.Fatalf("deploy -f %s: %v\n%s", votingApp, err, out)
	}
	// workspaces are the workspace ids of the mesh's containers.
	workspaces := func() map[string]bool {
		out := map[string]bool{}
		for _, c := range m.containers(nil) {
			if ws := c.Labels[runtime.LabelWorkspace]; ws != "" {
				out[ws] = true
			}
		}
		return out
	}
	var first, other string
	for ws := range workspaces() {
		first = ws
	}
	second := make([]raftfsm.ServiceSpec, 0, len(loaded.Specs))
	for _, s := range loaded.Specs {
		s = s.Clone()
		s.Workspace = "second"
		second = append(second, s)
	}
	if out, err := m.cli(10*time.Minute, "deploy", "-f", specFile(t, second)); err != nil {
		t.Fatalf("deploy the second workspace: %v\n%s", err, out)
	}
	for ws := range workspaces() {
		if ws != first {
			other = ws
		}
	}
	if first == "" || other == "" {
		t.Fatalf("containers of workspaces %v, want two", workspaces())
	}
	wsIDs := []string{first, other}
	apps := map[string]map[string]appContainer{}
	for _, ws := range wsIDs {
		apps[ws] = m.appContainers(ws, 5)
	}
	nodesUsed := map[string]bool{}
	for _, c := range apps[first] {
		nodesUsed[c.node] = true
	}
	if len(nodesUsed) < 2 {
		t.Fatalf("every service on one node (%v): nothing crosses nodes", nodesUsed)
	}

	// Every service answers every other by name, from its own workspace.
	for _, ws := range wsIDs {
		for _, from := range apps[ws] {
			var addrs []string
			for name, port := range ports {
				if name != from.service {
					addrs = append(addrs, net.JoinHostPort(name, strconv.Itoa(port)))
				}
			}
			var out string
			ok := false
			// A node learns of the others' instances from the state, a
			// moment after the deploy finished.
			waitFor(t, 20*time.Second, ws+"/"+from.service+" reaching every service by name", func() bool {
				out, ok = runtimetest.Probe(t, rt, from.id, addrs...)
				return ok
			})
			for name := range ports {
				if name == from.service {
					continue
				}
				if want := apps[ws][name].id[:12]; !strings.Contains(out, want) {
					t.Fatalf("%s/%s on %s: %s was not answered by its own workspace's container %s:\n%s", ws, from.service, from.node, name, want, out)
				}
			}
		}
	}

	// The other workspace's containers are out of reach, also on the same node.
	vote := apps[first]["vote"]
	for _, c := range apps[other] {
		if ports[c.service] == 0 {
			continue
		}
		info, err := rt.Inspect(context.Background(), c.id)
		if err != nil {
			t.Fatal(err)
		}
		if out, ok := runtimetest.Probe(t, rt, vote.id, net.JoinHostPort(info.IP, strconv.Itoa(ports[c.service]))); ok {
			t.Fatalf("vote reached the other workspace's %s at %s:\n%s", c.service, info.IP, out)
		}
	}

	// A second apply changes nothing.
	before := map[string]string{}
	for _, c := range apps[first] {
		before[c.service] = c.id
	}
	out, err := m.cli(5*time.Minute, "deploy", "-f", votingApp)
	if err != nil {
		t.Fatalf("second deploy: %v\n%s", err, out)
	}
	if n := strings.Count(out, "unchanged "); n != 5 {
		t.Fatalf("second apply: %d services unchanged, want 5:\n%s", n, out)
	}
	after := map[string]string{}
	for _, c := range m.appContainers(first, 5) {
		after[c.service] = c.id
	}
	if !maps.Equal(before, after) {
		t.Fatalf("second apply replaced containers: %v -> %v", before, after)
	}

	// redis moves to another node (not where the other workspace's redis
	// publishes the same port): its name follows, vote and worker keep
	// their containers.
	redis := apps[first]["redis"]
	var target string
	for _, n := range m.status() {
		if n.ID != redis.node && n.ID != apps[other]["redis"].node {
			target = n.ID
		}
	}
	var moved raftfsm.ServiceSpec
	for _, s := range loaded.Specs {
		if s.Service == "redis" {
			moved = s.Clone()
		}
	}
	moved.Nodes = []string{target}
	if out, err := m.cli(5*time.Minute, "deploy", "-f", specFile(t, []raftfsm.ServiceSpec{moved})); err != nil {
		t.Fatalf("move redis to %s: %v\n%s", target, err, out)
	}
	now := m.appContainers(first, 5)
	if now["redis"].node != target || now["redis"].id == redis.id {
		t.Fatalf("redis did not move to %s: %+v", target, now["redis"])
	}
	for _, user := range []string{"vote", "worker"} {
		if now[user].id != before[user] {
			t.Fatalf("%s was restarted when redis moved", user)
		}
	}
	moveDone := time.Now()
	waitFor(t, 15*time.Second, "redis's name to follow it", func() bool {
		out, ok := runtimetest.Probe(t, rt, now["vote"].id, "redis:6379")
		return ok && strings.Contains(out, now["redis"].id[:12])
	})
	t.Logf("redis's name followed it %s after the deploy returned", time.Since(moveDone).Round(100*time.Millisecond))
}
