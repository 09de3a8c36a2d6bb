package localmode

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/digitalocean/godo"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/bootstrap"
	"github.com/dropmesh/dropmesh/node/clusterconf"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/pki"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/node/testkit"
	"github.com/dropmesh/dropmesh/scripts"
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

// fakeState reads the fake cloud's /_fake/state, in the providers' own
// JSON shapes.
func (m *mesh) fakeState() fakeapi.State {
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
	var fs fakeapi.State
	if err := json.NewDecoder(resp.Body).Decode(&fs); err != nil {
		m.t.Fatal(err)
	}
	return fs
}

// records returns the sorted IPs of a host's A records in the fake zone.
func (m *mesh) records(host string) []string {
	var ips []string
	for _, r := range m.fakeState().DNSRecords {
		if r.Name == host && r.Type == "A" {
			ips = append(ips, r.Content)
		}
	}
	slices.Sort(ips)
	return ips
}

// containers lists the Docker containers of this mesh (dropmesh-managed,
// with the mesh's name suffix) that carry labels.
func (m *mesh) containers(labels map[string]string) []runtime.ContainerInfo {
	m.t.Helper()
	ctx := context.Background()
	rt, err := runtime.New(ctx, nil)
	if err != nil {
		m.t.Fatal(err)
	}
	defer rt.Close()
	want := map[string]string{runtime.LabelManaged: "true"}
	maps.Copy(want, labels)
	list, err := rt.List(ctx, want)
	if err != nil {
		m.t.Fatal(err)
	}
	var out []runtime.ContainerInfo
	for _, c := range list {
		if strings.Contains(c.Name, Suffix(m.dir)) {
			out = append(out, c)
		}
	}
	return out
}

// nginxProcs returns the pids of the nginx masters whose command line names
// a path under this mesh's dir, and of their workers.
func (m *mesh) nginxProcs() []int {
	m.t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		m.t.Skip("no /proc")
	}
	masters := map[int]bool{}
	parents := map[int]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte("nginx")) {
			continue
		}
		if bytes.Contains(cmdline, []byte("master")) && bytes.Contains(cmdline, []byte(m.dir+"/")) {
			masters[pid] = true
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			// pid (comm) state ppid ...: comm may hold spaces, so count from its ')'.
			if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(f) > 1 {
				parents[pid], _ = strconv.Atoi(f[1])
			}
		}
	}
	var out []int
	for pid, ppid := range parents {
		if masters[pid] || masters[ppid] {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testkit.WaitForEvery(t, timeout, 250*time.Millisecond, what, cond) // each ask may start a process
}

// alive reports whether pid runs. A zombie does not: a process that `local
// up` started and that exited waits for init to reap it.
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		_, noProc := os.Stat("/proc/self")
		return noProc != nil // without /proc, kill(pid, 0) is all there is
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(f) == 0 || f[0] != "Z"
}

func TestLocalUpStatusDownAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node mesh")
	}
	testkit.RequireDocker(t) // the sample runs in containers
	m := &mesh{t: t, bin: runtimetest.BuildStaticBinary(t, "github.com/dropmesh/dropmesh"), dir: t.TempDir()}
	t.Cleanup(func() { m.run(2*time.Minute, "local", "down", "--dir", m.dir) })
	out := m.up(3, "--sample")
	for _, want := range []string{"mesh ready", "web UI:", "admin", ". " + filepath.Join(m.dir, EnvFile), "sample deployed"} {
		if !strings.Contains(out, want) {
			t.Fatalf("local up printed no %q:\n%s", want, out)
		}
	}
	if info, err := os.Stat(filepath.Join(m.dir, AdminPasswordFile)); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("admin-password: %v %v", info, err)
	}

	nodes := m.status()
	roles := map[string]int{}
	var apis []string
	for _, n := range nodes {
		if !alive(n.PID) || n.API == "" || n.Gossip == "" || n.Raft == "" || n.DropletID == 0 {
			t.Fatalf("node %+v", n)
		}
		roles[n.Role]++
		apis = append(apis, n.API)
	}
	if len(nodes) != 3 || roles["leader"] != 1 || roles["follower"] != 2 {
		t.Fatalf("status: %+v", nodes)
	}
	// DIR/env points the CLI at every node that exists, over TLS, with the
	// cluster CA to verify it.
	env, _ := os.ReadFile(filepath.Join(m.dir, EnvFile))
	for _, v := range []string{"DROPMESH_ADDR=" + strings.Join(apis, ",") + "\n", "DROPMESH_API_KEY=", "DROPMESH_FAKE_CLOUD=",
		"DROPMESH_CACERT=" + filepath.Join(m.dir, CACertFile) + "\n"} {
		if !bytes.Contains(env, []byte(v)) {
			t.Fatalf("env lacks %s:\n%s", v, env)
		}
	}
	for _, a := range apis {
		if !strings.HasPrefix(a, "https://") {
			t.Fatalf("local status gives the API as %q, want https", a)
		}
	}
	checkUserData(t, m, apis)
	st, err := readState(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	supervisor := supervisorPID(m.dir)
	if supervisor == 0 || supervisor != st.SupervisorPID {
		t.Fatalf("supervisorPID = %d, want the running supervisor %d", supervisor, st.SupervisorPID)
	}

	// The fake cloud holds three active droplets, all in the cluster's VPC
	// and under the cluster firewall's tag, the seed included.
	fs := m.fakeState()
	var vpcs []godo.VPC
	for _, v := range fs.VPCs {
		if v.Name == bootstrap.VPCName(ClusterName) {
			vpcs = append(vpcs, v)
		}
	}
	if len(vpcs) != 1 {
		t.Fatalf("VPCs named %s: %+v", bootstrap.VPCName(ClusterName), fs.VPCs)
	}
	vpc := vpcs[0]
	if len(fs.Firewalls) != 1 || len(fs.Firewalls[0].Tags) != 1 {
		t.Fatalf("firewalls: %+v", fs.Firewalls)
	}
	fw := fs.Firewalls[0]
	if len(fs.Droplets) != 3 {
		t.Fatalf("fake cloud droplets: %+v", fs.Droplets)
	}
	for _, d := range fs.Droplets {
		if d.Status != "active" || !slices.Contains(d.Tags, fw.Tags[0]) || d.VPCUUID != vpc.ID {
			t.Errorf("droplet %s: status %s, tags %v, vpc %s; want active, firewall %s's tag %s, vpc %s",
				d.Name, d.Status, d.Tags, d.VPCUUID, fw.Name, fw.Tags[0], vpc.ID)
		}
	}
	// The firewall: 80 and 443 from anywhere, the agent, gossip and raft
	// ports only from the cluster's droplets (by tag), nothing else (no SSH).
	var open []string
	for _, r := range fw.InboundRules {
		var from []string
		if r.Sources != nil {
			from = append(slices.Clone(r.Sources.Addresses), r.Sources.Tags...)
		}
		open = append(open, r.Protocol+"/"+r.PortRange+" from "+strings.Join(from, ","))
	}
	slices.Sort(open)
	tag := fw.Tags[0]
	wantOpen := []string{"tcp/443 from 0.0.0.0/0,::/0", "tcp/7946 from " + tag, "tcp/7947 from " + tag, "tcp/7948 from " + tag,
		"tcp/80 from 0.0.0.0/0,::/0", "tcp/9999 from " + tag, "udp/7946 from " + tag}
	if !slices.Equal(open, wantOpen) {
		t.Fatalf("firewall inbound rules:\n%s\nwant:\n%s", strings.Join(open, "\n"), strings.Join(wantOpen, "\n"))
	}

	// DNS: the UI host on the leader, the sample's host on the nodes that serve it.
	c, err := Client(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	publicIPs := map[string]string{}
	list, err := c.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range list {
		publicIPs[n.ID] = n.PublicIP
	}
	serving := sampleNodes(t, c)
	var want []string
	for _, ip := range serving {
		want = append(want, ip)
	}
	slices.Sort(want)
	if len(want) != 2 {
		t.Fatalf("the sample runs on %v, want two nodes", serving)
	}
	waitFor(t, 30*time.Second, "the sample's A records on its nodes "+strings.Join(want, ", "), func() bool {
		return slices.Equal(m.records("sample."+Zone), want)
	})
	waitFor(t, 30*time.Second, "the UI host's A record on the leader "+publicIPs[info.Leader.ID], func() bool {
		return slices.Equal(m.records("mesh."+Zone), []string{publicIPs[info.Leader.ID]})
	})

	// The edge local up printed answers for the sample.
	edge := regexp.MustCompile(`sample: +curl -H 'Host: sample\.example\.test' (http://\S+/)`).FindStringSubmatch(out)
	if edge == nil {
		t.Fatalf("local up printed no sample address:\n%s", out)
	}
	req, _ := http.NewRequest(http.MethodGet, edge[1], nil)
	req.Host = "sample." + Zone
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("the printed edge %s: %v", edge[1], err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the printed edge %s answered %s", edge[1], resp.Status)
	}

	// Something to find again after the resume, and what down must remove.
	if _, err := c.CreateWorkspace(context.Background(), "kept"); err != nil {
		t.Fatal(err)
	}
	sample := m.containers(map[string]string{runtime.LabelProject: "sample"})
	if len(sample) < 2 {
		t.Fatalf("the sample's containers: %+v", sample)
	}
	edges := m.nginxProcs()
	if _, ok := testkit.LookTool("nginx"); ok && len(edges) == 0 {
		t.Fatal("nginx is installed but no nginx master of the mesh runs")
	}

	if out, err := m.run(2*time.Minute, "local", "down", "--dir", m.dir); err != nil {
		t.Fatalf("local down: %v\n%s", err, out)
	}
	for _, n := range nodes {
		if alive(n.PID) {
			t.Fatalf("%s (pid %d) still runs after down", n.ID, n.PID)
		}
	}
	if alive(supervisor) {
		t.Fatalf("supervisor %d still runs", supervisor)
	}
	if left := m.containers(nil); len(left) != 0 {
		t.Fatalf("containers of the mesh left after down: %+v", left)
	}
	if left := m.nginxProcs(); len(left) != 0 {
		t.Fatalf("nginx processes of the mesh left after down: %v (before: %v)", left, edges)
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

// checkUserData: nothing the fake cloud stored as a droplet's user data (what
// its metadata service would hand anyone on it) opens the cluster: no
// cluster secret, no key derived from it, no gossip key, no cloud token, no
// admin password; the joined droplets carry a join token, already spent, and
// the CA's fingerprint.
func checkUserData(t *testing.T, m *mesh, apis []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(m.dir, FakeCloudState))
	if err != nil {
		t.Fatal(err)
	}
	var store struct {
		Droplets map[string]struct {
			UserData string `json:"user_data"`
		} `json:"droplets"`
	}
	if err := json.Unmarshal(data, &store); err != nil {
		t.Fatal(err)
	}
	secret, err := clusterconf.ReadClusterSecretFile(filepath.Join(m.dir, "node-1", "cluster-secret"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := clusterconf.DeriveKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(m.dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	fingerprint, err := pki.Fingerprint(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	forbidden := map[string]string{"the cluster secret": secret.String(), "the API key": keys.APIKey,
		"the derived gossip key": hex.EncodeToString(keys.GossipKey), "the cloud token": readTrimmed(t, filepath.Join(m.dir, cloudTokenFile)),
		"the admin password": readTrimmed(t, filepath.Join(m.dir, AdminPasswordFile))}
	if gk, err := os.ReadFile(filepath.Join(m.dir, "node-1", "gossip-keys")); err == nil {
		for i, k := range strings.Fields(string(gk)) {
			forbidden[fmt.Sprintf("gossip key %d", i)] = k
		}
	}
	if len(store.Droplets) != 3 {
		t.Fatalf("the fake cloud stored %d droplets", len(store.Droplets))
	}
	var tokens []string
	for id, d := range store.Droplets {
		for what, v := range forbidden {
			if v != "" && strings.Contains(d.UserData, v) {
				t.Errorf("droplet %s's user data holds %s", id, what)
			}
		}
		vars, err := scripts.ParseUserData(d.UserData)
		if err != nil {
			t.Fatal(err)
		}
		for k := range vars {
			if strings.Contains(k, "SECRET") || strings.Contains(k, "GOSSIP_KEY") || (strings.Contains(k, "TOKEN") && k != "DROPMESH_JOIN_TOKEN") {
				t.Errorf("droplet %s's user data sets %s", id, k)
			}
		}
		if vars["DROPMESH_BOOTSTRAP"] == "true" {
			continue
		}
		if !strings.HasPrefix(vars["DROPMESH_JOIN_TOKEN"], "dmj_") || vars["DROPMESH_CA_FINGERPRINT"] != fingerprint {
			t.Errorf("droplet %s joined without a join token and the CA fingerprint: %v", id, vars)
		}
		tokens = append(tokens, vars["DROPMESH_JOIN_TOKEN"])
	}
	if len(tokens) != 2 {
		t.Fatalf("join tokens in the user data: %d, want 2", len(tokens))
	}
	// Read from the metadata service later, a token is worth nothing: it
	// has been used.
	c, err := apiclient.New(apiclient.Config{Addrs: apis, CACert: caPEM, RetryFor: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens {
		_, err := c.Join(context.Background(), control.JoinRequest{Token: tok, NodeID: "node-9", IP: "127.0.0.9", CSR: testCSR(t, "node-9")})
		if apiclient.Code(err) != "forbidden" || !strings.Contains(err.Error(), "join token") {
			t.Errorf("a join with a used token: %v, want 403 naming the join token", err)
		}
	}
}

func readTrimmed(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// testCSR is a certificate request for nodeID.
func testCSR(t *testing.T, nodeID string) string {
	t.Helper()
	_, csr, err := pki.NewKeyAndCSR(pki.Identity{NodeID: nodeID, IPs: []net.IP{net.IPv4(127, 0, 0, 9)}})
	if err != nil {
		t.Fatal(err)
	}
	return string(csr)
}
