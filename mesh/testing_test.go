package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// Shared test helpers: real memberlist over UDP/TCP on 127.0.0.0/8, each node
// on its own loopback address with an ephemeral port.

// testKey returns a 32-byte gossip key filled with b.
func testKey(b byte) []byte {
	k := make([]byte, KeySize)
	for i := range k {
		k[i] = b
	}
	return k
}

// testLogger logs to t at MESH_TEST_LOG level (default warn) and drops
// anything logged after the test ends (memberlist timers may still fire).
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	switch strings.ToLower(os.Getenv("MESH_TEST_LOG")) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "error":
		level = slog.LevelError
	case "off":
		return slog.New(slog.DiscardHandler)
	}
	w := &testWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// nodeIP returns the loopback address of node i of a test cluster; subnet
// keeps concurrently running tests apart.
func nodeIP(subnet, i int) string { return fmt.Sprintf("127.0.%d.%d", subnet, i+1) }

// testConfig is DefaultConfig for node id on ip with an ephemeral port.
func testConfig(t testing.TB, id, ip string) Config {
	c := DefaultConfig()
	c.NodeID = id
	c.BindAddr, c.BindPort = ip, 0
	c.ClusterName = "test-cluster"
	c.Keys = [][]byte{testKey(1)}
	c.Meta = NodeMeta{ID: id, Region: "local", PrivateIP: ip, API: ip + ":9999", Raft: ip + ":7947", Version: "test", Proto: 3}
	c.Logger = testLogger(t)
	return c
}

// startMesh starts a Mesh and shuts it down at the end of the test.
func startMesh(t testing.TB, cfg Config) *Mesh {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.NodeID, err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

// cluster is a set of meshes started by startCluster.
type cluster struct {
	t      testing.TB
	subnet int
	meshes []*Mesh
	cfgs   []Config
}

// startCluster starts n meshes (ids n0, n1, ...) with cfg applied to each,
// joins each to n0, the seed, as agents join theirs, and waits until every
// one sees all n alive.
//
// Every joiner contacts n0 because n0 learns each joiner in the join itself
// and so hands the next one the whole table. A random earlier contact may
// not yet have heard of the members that joined just before (joins here
// come milliseconds apart, faster than gossip spreads them); the joiner then
// learns them only from gossip retransmissions that may already be spent,
// or from the next push/pull, up to a PushPullInterval later.
func startCluster(t testing.TB, subnet, n int, tweak func(*Config)) *cluster {
	t.Helper()
	c := joinCluster(t, subnet, n, tweak)
	c.waitAllAlive(c.convergeTimeout())
	return c
}

// joinCluster is startCluster without the final wait.
func joinCluster(t testing.TB, subnet, n int, tweak func(*Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, subnet: subnet}
	for i := range n {
		cfg := testConfig(t, fmt.Sprintf("n%d", i), nodeIP(subnet, i))
		if tweak != nil {
			tweak(&cfg)
		}
		c.cfgs = append(c.cfgs, cfg)
		c.meshes = append(c.meshes, startMesh(t, cfg))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, m := range c.meshes[1:] {
		if _, err := m.Join(ctx, []string{c.meshes[0].self}); err != nil {
			t.Fatalf("join %s: %v", m.cfg.NodeID, err)
		}
	}
	return c
}

// convergeTimeout bounds how long the cluster may take to see a change
// everywhere: gossip normally takes well under a second, but an alive
// message a member missed (or a false suspicion under CPU load) is only
// repaired by push/pull, so the bound covers one push/pull period beyond a
// generous gossip allowance.
func (c *cluster) convergeTimeout() time.Duration {
	n := len(c.meshes)
	return 10*time.Second + time.Duration(n)*100*time.Millisecond + pushPullPeriod(c.cfgs[0].PushPullInterval, n)
}

// pushPullPeriod is memberlist's push/pull period at n members: the
// configured interval, stretched beyond 32 members (memberlist's
// pushPullScale) so the cluster-wide rate of full exchanges stays bounded.
func pushPullPeriod(interval time.Duration, n int) time.Duration {
	const threshold = 32
	if n <= threshold {
		return interval
	}
	return time.Duration(math.Ceil(math.Log2(float64(n))-math.Log2(threshold))+1) * interval
}

// ids returns the node ids of the cluster.
func (c *cluster) ids() []string {
	out := make([]string, len(c.meshes))
	for i, m := range c.meshes {
		out[i] = m.cfg.NodeID
	}
	return out
}

// waitAllAlive waits until every mesh sees every mesh alive.
func (c *cluster) waitAllAlive(timeout time.Duration) {
	c.t.Helper()
	for _, id := range c.ids() {
		waitStatus(c.t, c.meshes, id, StatusAlive, timeout)
	}
}

// waitAllKnown waits until every mesh sees every mesh alive or suspect:
// for clusters so large for one process that their members are suspected
// now and then, which they refute on their own.
func (c *cluster) waitAllKnown(timeout time.Duration) {
	c.t.Helper()
	for _, id := range c.ids() {
		waitFor(c.t, timeout, func() bool {
			for _, m := range c.meshes {
				if mem, ok := m.Member(id); !ok || (mem.Status != StatusAlive && mem.Status != StatusSuspect) {
					return false
				}
			}
			return true
		}, "%s to be alive or suspect everywhere (%s)", id, lazy(func() string { return describe(c.meshes, id) }))
	}
}

// waitFor polls cond every 5 ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

// waitStatus waits until every mesh in ms sees member id with status s.
func waitStatus(t testing.TB, ms []*Mesh, id string, s Status, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, func() bool { return allSee(ms, id, s) }, "%s to be %s everywhere (%s)", id, s, lazy(func() string { return describe(ms, id) }))
}

// lazy formats as the string its function returns when formatted: failure
// messages then describe the state at the timeout, not at the start.
type lazy func() string

func (l lazy) String() string { return l() }

// allSee reports whether every mesh sees id with status s.
func allSee(ms []*Mesh, id string, s Status) bool {
	for _, m := range ms {
		if mem, ok := m.Member(id); !ok || mem.Status != s {
			return false
		}
	}
	return true
}

// describe lists how each mesh sees id, for failure messages.
func describe(ms []*Mesh, id string) string {
	var parts []string
	for _, m := range ms {
		mem, ok := m.Member(id)
		if !ok {
			parts = append(parts, m.cfg.NodeID+":unknown")
			continue
		}
		parts = append(parts, m.cfg.NodeID+":"+mem.Status.String())
	}
	return strings.Join(parts, " ")
}

// eventLog collects every event of one mesh in the background.
type eventLog struct {
	mu     sync.Mutex
	events []Event
	done   chan struct{}
}

// recordEvents drains m.Events until it is closed.
func recordEvents(m *Mesh) *eventLog {
	l := &eventLog{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for ev := range m.Events() {
			l.mu.Lock()
			l.events = append(l.events, ev)
			l.mu.Unlock()
		}
	}()
	return l
}

// has reports whether an event of type typ for member id was recorded and
// satisfies match (nil matches any).
func (l *eventLog) has(typ EventType, id string, match func(Event) bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range l.events {
		if ev.Type == typ && ev.Member.ID == id && (match == nil || match(ev)) {
			return true
		}
	}
	return false
}

// count counts recorded events of type typ for member id.
func (l *eventLog) count(typ EventType, id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ev := range l.events {
		if ev.Type == typ && ev.Member.ID == id {
			n++
		}
	}
	return n
}

// portOf returns the port of a host:port address.
func portOf(t testing.TB, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// stays checks that cond holds throughout d (polling every 10 ms): the
// negative counterpart of waitFor, for "nothing happens" assertions.
func stays(t testing.TB, d time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			t.Fatalf("condition broke: "+format, args...)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}

// knows reports whether m lists a member with the given id.
func knows(m *Mesh, id string) bool {
	_, ok := m.Member(id)
	return ok
}

// cutTransport is a real NetTransport that can be cut off: while cut, every
// packet and stream in or out is dropped, as if the node froze or its
// network failed, without stopping it.
type cutTransport struct {
	*memberlist.NetTransport
	cut      atomic.Bool
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	stop     chan struct{}
	wg       sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*cutTransport)(nil)

// newCutTransport binds ip on an ephemeral port and starts the forwarding
// goroutines, stopped by Shutdown.
func newCutTransport(t testing.TB, ip string) *cutTransport {
	t.Helper()
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{ip}, BindPort: 0,
		Logger: newMemberlistLogger(testLogger(t))})
	if err != nil {
		t.Fatal(err)
	}
	c := &cutTransport{NetTransport: nt, packetCh: make(chan *memberlist.Packet), streamCh: make(chan net.Conn), stop: make(chan struct{})}
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		for {
			select {
			case p := <-nt.PacketCh():
				if c.cut.Load() {
					continue
				}
				select {
				case c.packetCh <- p:
				case <-c.stop:
					return
				}
			case <-c.stop:
				return
			}
		}
	}()
	go func() {
		defer c.wg.Done()
		for {
			select {
			case conn := <-nt.StreamCh():
				if c.cut.Load() {
					_ = conn.Close()
					continue
				}
				select {
				case c.streamCh <- conn:
				case <-c.stop:
					_ = conn.Close()
					return
				}
			case <-c.stop:
				return
			}
		}
	}()
	return c
}

func (c *cutTransport) PacketCh() <-chan *memberlist.Packet { return c.packetCh }
func (c *cutTransport) StreamCh() <-chan net.Conn           { return c.streamCh }

func (c *cutTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if c.cut.Load() {
		return time.Now(), nil
	}
	return c.NetTransport.WriteTo(b, addr)
}

func (c *cutTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if c.cut.Load() {
		return time.Now(), nil
	}
	return c.NetTransport.WriteToAddress(b, a)
}

func (c *cutTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return c.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (c *cutTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if c.cut.Load() {
		return nil, errors.New("cut off")
	}
	return c.NetTransport.DialAddressTimeout(a, timeout)
}

func (c *cutTransport) Shutdown() error {
	err := c.NetTransport.Shutdown()
	close(c.stop)
	c.wg.Wait()
	return err
}

// memNetwork is an in-memory network for memberlists, for clusters too big
// for real sockets in one process on two cores (the 50- and 100-member
// benchmarks). It replaces memberlist.MockNetwork, whose unbuffered
// channels make a packet send wait for the receiver's packet handler, which
// itself sends (acks, indirect pings): two handlers sending to each other
// wait forever, and the stall spreads to every node that then sends to
// either, until gossip stops (see TUNING.md). Here, as with UDP, a packet
// send never waits: each node has a receive buffer, and a packet to a full
// buffer or a stopped node is dropped.
type memNetwork struct {
	mu    sync.Mutex
	nodes map[string]*memTransport // by address
}

// memRecvBuffer is each node's packet receive buffer, in packets.
const memRecvBuffer = 1024

// newTransport returns the transport of the node at addr (host:port).
func (n *memNetwork) newTransport(t testing.TB, addr string) *memTransport {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	ip, p := net.ParseIP(host), portOf(t, addr)
	if ip == nil {
		t.Fatalf("memNetwork: %q is not an IP address", host)
	}
	tr := &memTransport{net: n, addr: memAddr(net.JoinHostPort(host, port)), ip: ip, port: p,
		packetCh: make(chan *memberlist.Packet, memRecvBuffer), streamCh: make(chan net.Conn), stop: make(chan struct{})}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodes == nil {
		n.nodes = make(map[string]*memTransport)
	}
	n.nodes[string(tr.addr)] = tr
	return tr
}

func (n *memNetwork) peer(addr string) (*memTransport, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if tr, ok := n.nodes[addr]; ok {
		return tr, nil
	}
	return nil, fmt.Errorf("memNetwork: no route to %s", addr)
}

// memAddr is a node's address on a memNetwork.
type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }

// memTransport is one node's memberlist transport on a memNetwork.
type memTransport struct {
	net      *memNetwork
	addr     memAddr
	ip       net.IP
	port     int
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	stop     chan struct{}
	stopOnce sync.Once
}

var _ memberlist.NodeAwareTransport = (*memTransport)(nil)

func (t *memTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) { return t.ip, t.port, nil }

func (t *memTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress delivers a copy of b, or drops it when the receiver's
// buffer is full or the receiver has stopped.
func (t *memTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	dest, err := t.net.peer(a.Addr)
	if err != nil {
		return now, err
	}
	p := &memberlist.Packet{Buf: append([]byte(nil), b...), From: t.addr, Timestamp: now}
	select {
	case <-dest.stop:
	case dest.packetCh <- p:
	default:
	}
	return now, nil
}

func (t *memTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

func (t *memTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout hands one end of a pipe to the node at a.
func (t *memTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	dest, err := t.net.peer(a.Addr)
	if err != nil {
		return nil, err
	}
	local, remote := net.Pipe()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case dest.streamCh <- remote:
		return local, nil
	case <-dest.stop:
		err = fmt.Errorf("memNetwork: connection to %s refused", a.Addr)
	case <-timer.C:
		err = fmt.Errorf("memNetwork: dial %s: timeout %v", a.Addr, timeout)
	}
	_ = local.Close()
	_ = remote.Close()
	return nil, err
}

func (t *memTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown stops the node: packets to it are dropped, dials refused.
func (t *memTransport) Shutdown() error {
	t.stopOnce.Do(func() { close(t.stop) })
	return nil
}
