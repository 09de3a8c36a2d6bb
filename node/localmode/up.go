package localmode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// UpOptions are the choices of `dropmesh local up`.
type UpOptions struct {
	Dir            string
	Nodes          int
	BasePort       int
	IPPrefix       string
	Sample         bool
	HealthInterval time.Duration
	Out            io.Writer
	// ACME is "" or ACMEPebble.
	ACME string
}

// SampleImage is the image local mode builds from the dropmesh binary itself.
const SampleImage = "local/sample:latest"

// SampleSpec is the sample service `local up --sample` deploys.
func SampleSpec() raftfsm.ServiceSpec {
	return raftfsm.ServiceSpec{Workspace: raftfsm.DefaultWorkspaceName, Project: "sample", Env: "prod", Service: "web",
		Kind: raftfsm.KindService, Image: SampleImage, Port: 8080, Hosts: []string{"sample." + Zone}, Replicas: 2,
		Health: raftfsm.HealthSpec{Path: "/health"}}
}

// Up starts (or resumes) the local mesh and returns once a leader serves the
// API and every node is an alive voter; with Sample it also deploys the
// sample service and waits for it to be healthy and routed.
func Up(ctx context.Context, o UpOptions) error {
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	o.Dir = dir
	if o.IPPrefix == "" {
		o.IPPrefix = "127.0.0."
	}
	out := o.Out
	pid := supervisorPID(dir)
	var exited <-chan struct{}
	if pid != 0 {
		fmt.Fprintf(out, "the local mesh in %s is already running (supervisor pid %d)\n", dir, pid)
	} else {
		if err := checkAddrsFree(ctx, o); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(dir, FakeCloudState)); err == nil {
			fmt.Fprintf(out, "resuming the local mesh in %s\n", dir)
		} else {
			fmt.Fprintf(out, "starting a local mesh of %d nodes in %s\n", o.Nodes, dir)
		}
		if pid, exited, err = startSupervisor(o); err != nil {
			return err
		}
		fmt.Fprintf(out, "  supervisor started (pid %d, log %s)\n", pid, filepath.Join(dir, SupervisorLog))
	}
	client, err := waitForEnv(ctx, dir, pid, exited)
	if err != nil {
		return withLogTail(dir, err)
	}
	fmt.Fprintf(out, "  fake cloud and seed node are up; waiting for %d nodes to join\n", o.Nodes)
	if err := waitForMesh(ctx, dir, client, o.Nodes, out); err != nil {
		return withLogTail(dir, err)
	}
	sample := ""
	if o.Sample {
		if sample, err = deploySample(ctx, client, out); err != nil {
			return withLogTail(dir, err)
		}
	}
	return printWelcome(ctx, dir, out, client, sample)
}

// Client returns an API client for the local mesh in dir, from DIR/env.
func Client(dir string) (*apiclient.Client, error) {
	b, err := os.ReadFile(filepath.Join(dir, EnvFile))
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "export ")
		if k, v, ok := strings.Cut(line, "="); ok {
			vars[k] = v
		}
	}
	if vars["DROPMESH_ADDR"] == "" || vars["DROPMESH_API_KEY"] == "" {
		return nil, fmt.Errorf("%s: no DROPMESH_ADDR or DROPMESH_API_KEY", filepath.Join(dir, EnvFile))
	}
	if vars["DROPMESH_CACERT"] == "" {
		return nil, fmt.Errorf("%s: no DROPMESH_CACERT", filepath.Join(dir, EnvFile))
	}
	ca, err := os.ReadFile(vars["DROPMESH_CACERT"])
	if err != nil {
		return nil, fmt.Errorf("the local mesh's CA certificate: %w", err)
	}
	return apiclient.New(apiclient.Config{Addrs: strings.Split(vars["DROPMESH_ADDR"], ","), APIKey: vars["DROPMESH_API_KEY"], CACert: ca, Timeout: 10 * time.Second})
}

// waitForEnv waits until the supervisor wrote DIR/env. exited is closed
// when the supervisor this process started exits; for one that was already
// running (not our child) it is nil and the process is looked up instead.
func waitForEnv(ctx context.Context, dir string, supervisor int, exited <-chan struct{}) (*apiclient.Client, error) {
	for {
		if c, err := Client(dir); err == nil {
			return c, nil
		}
		if exited == nil && !isSupervisorOf(supervisor, dir) {
			return nil, errors.New("the supervisor stopped before the mesh was up")
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the seed node: %w", ctx.Err())
		case <-exited:
			if c, err := Client(dir); err == nil {
				return c, nil
			}
			return nil, errors.New("the supervisor stopped before the mesh was up")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// checkAddrsFree refuses to start a mesh on addresses something else holds
// (most often another local mesh started with another --dir): its agents
// would fail to bind, or worse, the CLI would reach the other mesh.
func checkAddrsFree(ctx context.Context, o UpOptions) error {
	layout := DefaultLayout(o.BasePort)
	if o.IPPrefix != "" {
		layout.IPPrefix = o.IPPrefix
	}
	addrs := []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(o.BasePort))}
	for n := 1; n <= max(o.Nodes, 1); n++ {
		a := layout.Node(n)
		addrs = append(addrs, a.APIAddr, a.GossipAddr, a.RaftAddr, net.JoinHostPort(a.IP, strconv.Itoa(a.UI)), a.EdgeAddr)
	}
	for _, addr := range addrs {
		l, err := net.Listen("tcp", addr)
		if err == nil {
			l.Close()
			continue
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("local up: check address %s: %w", addr, err)
		}
		who := "another program"
		if id := pingNode(ctx, addr); id != "" {
			who = fmt.Sprintf("dropmesh node %s of another mesh", id)
		}
		return fmt.Errorf("local up: %s is already in use by %s: another local mesh is probably running from another directory; "+
			"stop it (dropmesh local down --dir THAT_DIR) or give this one other addresses (--ip-prefix, --base-port)", addr, who)
	}
	return nil
}

// pingNode returns the node id that answers GET /ping at addr, or "".
func pingNode(ctx context.Context, addr string) string {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/ping", nil)
	if err != nil {
		return ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var p struct {
		Node string `json:"node"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&p) != nil {
		return ""
	}
	return p.Node
}

// waitForMesh waits until a leader answers and nodes members are alive,
// each a voter (up to raft's five voters), printing each node as it joins.
func waitForMesh(ctx context.Context, dir string, c *apiclient.Client, nodes int, out io.Writer) error {
	seen := map[string]bool{}
	down := map[string]int{}
	for {
		// An agent that exits (a port taken, a bad data dir) fails the wait
		// at once, with its log, rather than at the timeout.
		if st, err := readState(dir); err == nil {
			for _, n := range st.Nodes {
				if n.Status == "active" && n.PID == 0 {
					down[n.ID]++
				} else {
					down[n.ID] = 0
				}
				if down[n.ID] >= 10 {
					return fmt.Errorf("%s exited: see %s%s", n.ID, filepath.Join(dir, n.ID+".log"), tailOf(filepath.Join(dir, n.ID+".log")))
				}
			}
		}
		info, err := c.Cluster(ctx)
		if err == nil && info.Leader.ID != "" {
			alive, voters := 0, 0
			for _, m := range info.Members {
				if m.Status != "alive" {
					continue
				}
				alive++
				if m.Raft == "voter" {
					voters++
				}
				if !seen[m.ID] && m.Raft != "none" {
					seen[m.ID] = true
					fmt.Fprintf(out, "  %s joined (raft %s, api %s)\n", m.ID, m.Raft, m.API)
				}
			}
			if alive >= nodes && voters >= min(nodes, 5) {
				fmt.Fprintf(out, "  mesh ready: %d nodes, leader %s\n", alive, info.Leader.ID)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d nodes: %w (last answer: %v)", nodes, ctx.Err(), err)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// deploySample builds local/sample:latest from this binary, deploys it and
// returns its service key once it is healthy and routed.
func deploySample(ctx context.Context, c *apiclient.Client, out io.Writer) (string, error) {
	bin, err := os.Executable()
	if err != nil {
		return "", err
	}
	rt, err := runtime.New(ctx, nil)
	if err != nil {
		return "", err
	}
	defer rt.Close()
	fmt.Fprintf(out, "  building %s from %s\n", SampleImage, bin)
	if _, err := rt.BuildFromBinary(ctx, bin, SampleImage, []string{"/dropmesh", "sample-app"}, 8080); err != nil {
		return "", fmt.Errorf("build the sample image (is this binary static? build it with CGO_ENABLED=0): %w", err)
	}
	res, err := c.DeploySpec(ctx, SampleSpec())
	if err != nil {
		return "", fmt.Errorf("deploy the sample: %w", err)
	}
	fmt.Fprintf(out, "  deploying %s (deploy %s)\n", res.Service, res.DeployID)
	last := map[string]string{}
	for {
		p, err := c.DeployProgress(ctx, res.DeployID)
		if err == nil {
			for _, in := range p.Instances {
				if in.Phase != "" && last[in.Instance] != in.Phase {
					last[in.Instance] = in.Phase
					fmt.Fprintf(out, "    %-8s %s\n", in.Node, in.Phase)
				}
			}
			if p.Done {
				if p.Deploy.Status != raftfsm.DeploySucceeded {
					return "", fmt.Errorf("the sample deploy %s: %s", p.Deploy.Status, p.Deploy.Reason)
				}
				fmt.Fprintln(out, "  sample deployed: healthy and routed")
				return res.Service, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for the sample deploy: %w", ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// printWelcome prints how to reach the mesh. The edges are where the nodes
// really listen: port 80 when this runs as root, else BasePort+100+N. A node's
// edge routes only to the instances on that node, so the sample's address is
// the edge of a node that serves it.
func printWelcome(ctx context.Context, dir string, out io.Writer, c *apiclient.Client, sample string) error {
	st, err := Status(ctx, dir)
	if err != nil {
		return err
	}
	pw, _ := os.ReadFile(filepath.Join(dir, AdminPasswordFile))
	var leader NodeStatus
	var edges []string
	for _, n := range st.Nodes {
		if n.Role == "leader" || leader.ID == "" {
			leader = n
		}
		edges = append(edges, n.Edge)
	}
	fmt.Fprintf(out, "\nThe local mesh is up.\n")
	fmt.Fprintf(out, "  web UI:   %s  (user admin, password %s; also in %s)\n", leader.UI, strings.TrimSpace(string(pw)), filepath.Join(dir, AdminPasswordFile))
	fmt.Fprintf(out, "  CLI:      . %s   then   dropmesh status\n", filepath.Join(dir, EnvFile))
	fmt.Fprintf(out, "  edges:    %s  (each answers by Host header for what runs on its node)\n", strings.Join(edges, ", "))
	if sample != "" {
		fmt.Fprintf(out, "  sample:   curl -H 'Host: sample.%s' http://%s/\n", Zone, servingEdge(ctx, c, st, leader, sample))
	}
	fmt.Fprintf(out, "  names:    %s\n", namesNote(os.Geteuid(), goruntime.GOOS))
	fmt.Fprintf(out, "  stop it:  dropmesh local down --dir %s\n", dir)
	return nil
}

// namesNote says whether containers reach each other by service name: the
// agents' service discovery needs root on Linux. Without it the injected
// addresses are the nodes' 127.0.x.y addresses, which inside a container
// are the container itself.
func namesNote(euid int, goos string) string {
	if euid == 0 && goos == "linux" {
		return "containers reach every service of their project/env by its Compose name, across nodes (service discovery)"
	}
	return "off: without root on Linux containers cannot reach other services by name or injected address (run `sudo dropmesh local up` for service discovery)"
}

// servingEdge is the edge of a node that serves service, the leader's if it
// is one; the leader's when the mesh cannot say.
func servingEdge(ctx context.Context, c *apiclient.Client, st State, leader NodeStatus, service string) string {
	ins, err := c.Instances(ctx, apiclient.InstanceFilter{})
	if err != nil {
		return leader.Edge
	}
	serving := map[string]bool{}
	for _, in := range ins {
		if in.Service == service && in.Phase == raftfsm.PhaseReady {
			serving[in.Node] = true
		}
	}
	if serving[leader.ID] {
		return leader.Edge
	}
	for _, n := range st.Nodes {
		if serving[n.ID] {
			return n.Edge
		}
	}
	return leader.Edge
}

// Status reads DIR/local.json and asks the mesh for each node's raft role.
func Status(ctx context.Context, dir string) (State, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return State{}, err
	}
	st, err := readState(dir)
	if err != nil {
		return st, fmt.Errorf("no local mesh in %s (run dropmesh local up): %w", dir, err)
	}
	c, err := Client(dir)
	if err != nil {
		return st, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := c.Cluster(cctx)
	if err != nil {
		return st, nil
	}
	roles := map[string]control.MemberInfo{}
	for _, m := range info.Members {
		roles[m.ID] = m
	}
	for i, n := range st.Nodes {
		m, ok := roles[n.ID]
		switch {
		case n.ID == info.Leader.ID:
			st.Nodes[i].Role = "leader"
		case ok && m.Raft == "voter":
			st.Nodes[i].Role = "follower"
		case ok:
			st.Nodes[i].Role = m.Raft
		}
	}
	return st, nil
}

// tailOf returns the last lines of a file, for an error message.
func tailOf(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return "\n" + strings.Join(lines[max(0, len(lines)-8):], "\n")
}

// withLogTail adds the end of the supervisor's and agents' logs to an error.
func withLogTail(dir string, err error) error {
	var b strings.Builder
	for _, name := range []string{SupervisorLog, "node-1.log"} {
		data, rerr := os.ReadFile(filepath.Join(dir, name))
		if rerr != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		fmt.Fprintf(&b, "\n--- last lines of %s ---\n%s", name, strings.Join(lines[max(0, len(lines)-15):], "\n"))
	}
	return fmt.Errorf("%w%s", err, b.String())
}
