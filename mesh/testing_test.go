package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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
// joins them to n0 and waits until every one sees all n alive.
func startCluster(t testing.TB, subnet, n int, tweak func(*Config)) *cluster {
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
	for i, m := range c.meshes[1:] {
		// Join a random earlier node, so large clusters do not all load n0.
		if _, err := m.Join(ctx, []string{c.meshes[rand.IntN(i+1)].self}); err != nil {
			t.Fatalf("join %s: %v", m.cfg.NodeID, err)
		}
	}
	c.waitAllAlive(10*time.Second + time.Duration(n)*100*time.Millisecond)
	return c
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
	waitFor(t, timeout, func() bool { return allSee(ms, id, s) }, "%s to be %s everywhere (%s)", id, s, describe(ms, id))
}

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
