package localmode

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/node/clusterconf"
	"github.com/dropmesh/dropmesh/scripts"
)

// Layout decides where local node n listens. On Linux every node has its own
// loopback address and keeps the standard ports; elsewhere all share
// 127.0.0.1 and the ports are offset from the base port.
type Layout struct {
	// IPPrefix is the first three octets of the nodes' addresses ("127.0.0.").
	IPPrefix string
	BasePort int
	// Shared is set where loopback aliases are not available.
	Shared bool
	// EdgeOnPort80 is set when this process may bind port 80.
	EdgeOnPort80 bool
}

// DefaultLayout is the layout for this platform.
func DefaultLayout(basePort int) Layout {
	return Layout{IPPrefix: "127.0.0.", BasePort: basePort, Shared: runtime.GOOS != "linux", EdgeOnPort80: os.Geteuid() == 0}
}

// Addrs are one local node's addresses.
type Addrs struct {
	IP                                   string
	API, Gossip, Raft, UI, Edge          int
	APIAddr, GossipAddr, RaftAddr, UIURL string
	// APIURL is the API's base URL (https: agents serve it over TLS only).
	APIURL   string
	EdgeAddr string
}

// For returns the addresses of a droplet: on Linux its own loopback IP (the
// fake cloud hands them out) with the standard ports; elsewhere 127.0.0.1 with
// ports offset by the node's number.
func (l Layout) For(d fakeapi.BackedDroplet, nodeSeq int) Addrs {
	if l.Shared || d.PrivateIP == "" {
		return l.Node(nodeSeq)
	}
	a := l.Node(nodeSeq)
	a.IP = d.PrivateIP
	if !l.EdgeOnPort80 {
		if ip := net.ParseIP(d.PrivateIP).To4(); ip != nil {
			a.Edge = l.BasePort + 100 + int(ip[3]) - 1
		}
	}
	return a.withAddrs()
}

// Node returns the addresses of node n (1-based; droplet n on Linux).
func (l Layout) Node(n int) Addrs {
	a := Addrs{IP: l.IPPrefix + strconv.Itoa(n+1), API: clusterconf.DefaultAPIPort, Gossip: clusterconf.DefaultGossipPort,
		Raft: clusterconf.DefaultRaftPort, UI: clusterconf.DefaultUIPort, Edge: l.BasePort + 100 + n}
	if l.EdgeOnPort80 {
		a.Edge = 80
	}
	if l.Shared {
		base := l.BasePort + 10*n
		a.IP, a.API, a.Gossip, a.Raft, a.UI, a.Edge = "127.0.0.1", base, base+1, base+2, base+3, base+4
	}
	return a.withAddrs()
}

func (a Addrs) withAddrs() Addrs {
	hp := func(p int) string { return net.JoinHostPort(a.IP, strconv.Itoa(p)) }
	a.APIAddr, a.GossipAddr, a.RaftAddr, a.EdgeAddr = hp(a.API), hp(a.Gossip), hp(a.Raft), hp(a.Edge)
	a.UIURL = "http://" + hp(a.UI)
	a.APIURL = "https://" + a.APIAddr
	return a
}

// processBackend backs the fake cloud's droplets with `dropmesh agent`
// processes: create and power-on start one from the droplet's user data,
// reboot and power-cycle restart it, delete and power-off stop it.
type processBackend struct {
	dir     string
	binary  string
	layout  Layout
	suffix  string
	logger  *slog.Logger
	onStart func(id int, name string, pid int)
	// edgeTLS opens every agent's edge TLS port (Layout.EdgeTLSPort).
	edgeTLS bool

	mu    sync.Mutex
	procs map[int]*agentProc
}

type agentProc struct {
	d    fakeapi.BackedDroplet
	cmd  *exec.Cmd
	done chan struct{}
}

var _ fakeapi.DropletBackend = (*processBackend)(nil)

// seqOf is the node's number, from its node id (node-3 -> 3).
func seqOf(env map[string]string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(env["DROPMESH_NODE_ID"], "node-"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

func (b *processBackend) Start(ctx context.Context, d fakeapi.BackedDroplet) error {
	env, err := scripts.ParseUserData(d.UserData)
	if err != nil {
		return fmt.Errorf("droplet %s: %w", d.Name, err)
	}
	addrs := b.layout.For(d, seqOf(env))
	nodeID := env["DROPMESH_NODE_ID"]
	overrides := map[string]string{
		"DROPMESH_BIND": addrs.IP, "DROPMESH_ADVERTISE": addrs.IP, "DROPMESH_PUBLIC_IP": addrs.IP, "DROPMESH_PUBLISH_IP": addrs.IP,
		"DROPMESH_DATA_DIR": filepath.Join(b.dir, nodeID), "DROPMESH_DROPLET_ID": strconv.Itoa(d.ID),
		"DROPMESH_REGION": d.Region, "DROPMESH_LOCAL_MODE": "true", "DROPMESH_CONTAINER_SUFFIX": b.suffix + nodeID,
		"DROPMESH_API_PORT": strconv.Itoa(addrs.API), "DROPMESH_GOSSIP_PORT": strconv.Itoa(addrs.Gossip),
		"DROPMESH_RAFT_PORT": strconv.Itoa(addrs.Raft), "DROPMESH_UI_PORT": strconv.Itoa(addrs.UI),
		"DROPMESH_EDGE_PORT": strconv.Itoa(addrs.Edge),
	}
	if b.edgeTLS {
		k, v := edgeTLSOverride(b.layout, addrs)
		overrides[k] = v
	}
	if env["DROPMESH_JOIN"] != "" && b.layout.Shared {
		// On a shared address the join list names the nodes' gossip ports as the leader saw them.
		overrides["DROPMESH_JOIN"] = env["DROPMESH_JOIN"]
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.procs[d.ID]; ok && p.running() {
		return nil
	}
	logFile, err := os.OpenFile(filepath.Join(b.dir, nodeID+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("droplet %s: log: %w", d.Name, err)
	}
	cmd := exec.Command(b.binary, "agent")
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	for k, v := range overrides {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("droplet %s: start agent: %w", d.Name, err)
	}
	p := &agentProc{d: d, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	b.procs[d.ID] = p
	b.logger.Info("droplet started", "droplet", d.Name, "node", nodeID, "pid", cmd.Process.Pid, "ip", addrs.IP)
	if b.onStart != nil {
		go b.onStart(d.ID, nodeID, cmd.Process.Pid) // it reads pids(): not under b.mu
	}
	return nil
}

func (p *agentProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Restart is a power-cycle: the process dies at once (SIGKILL, even when it
// is frozen with SIGSTOP) and a fresh one starts from the same user data.
func (b *processBackend) Restart(ctx context.Context, id int) error {
	b.mu.Lock()
	p, ok := b.procs[id]
	b.mu.Unlock()
	if !ok {
		return fmt.Errorf("droplet %d has no process", id)
	}
	b.kill(p, true)
	return b.Start(ctx, p.d)
}

// Stop shuts a droplet's agent down gracefully (SIGTERM, then SIGKILL).
func (b *processBackend) Stop(ctx context.Context, id int) error {
	b.mu.Lock()
	p, ok := b.procs[id]
	delete(b.procs, id)
	b.mu.Unlock()
	if ok {
		b.kill(p, false)
	}
	return nil
}

func (b *processBackend) kill(p *agentProc, hard bool) {
	if !p.running() {
		return
	}
	pid := p.cmd.Process.Pid
	if !hard {
		_ = syscall.Kill(pid, syscall.SIGCONT)
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-p.done:
			return
		case <-time.After(20 * time.Second):
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	<-p.done
}

// stopAll stops every agent, in parallel.
func (b *processBackend) stopAll() {
	b.mu.Lock()
	procs := make([]*agentProc, 0, len(b.procs))
	for _, p := range b.procs {
		procs = append(procs, p)
	}
	b.procs = map[int]*agentProc{}
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func(p *agentProc) {
			defer wg.Done()
			b.kill(p, false)
		}(p)
	}
	wg.Wait()
}

// pids returns the running agents' pids by droplet id.
func (b *processBackend) pids() map[int]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[int]int{}
	for id, p := range b.procs {
		if p.running() {
			out[id] = p.cmd.Process.Pid
		}
	}
	return out
}
