package mesh

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Reading memberlist's state table.
//
// memberlist v0.7.0 keeps each node's state (alive, suspect, dead, left) in an
// unexported table; Members() and the event delegate never say "suspect" and
// never tell dead from left (Node.State is not filled in). The one public
// path that carries the table is push/pull: during a join, the merge
// delegate receives the remote side's node list with each node's state.
//
// So each Mesh owns a private observer memberlist (the stateReader) that is
// never scheduled (no probes, gossip or push/pull of its own), has no
// listeners (its transport can only dial), shares the Mesh's keyring and
// label, and has a name no node id can take. A read is observer.Join(self):
// the Mesh's memberlist sends its full table, the observer captures it in its
// merge delegate and refuses the merge, and the Mesh's merge delegate refuses
// the observer in turn. Nothing is merged on either side, so a read never
// alters membership or suspicion. It costs one loopback TCP exchange of the
// encrypted table (see BenchmarkStateRead).

// stateReadMarker is in every error a state read produces on purpose, so the
// log adapter can demote the lines memberlist logs about them.
const stateReadMarker = "mesh state read"

// errStateRead is returned by both merge delegates to stop the merge.
var errStateRead = errors.New(stateReadMarker + " (merge refused on purpose)")

// nodeState is one row of memberlist's table.
type nodeState struct {
	name  string
	addr  string
	meta  []byte
	state memberlist.NodeStateType
}

// stateReader reads the local memberlist's table (see above).
type stateReader struct {
	name string
	ml   *memberlist.Memberlist

	readMu sync.Mutex // one read at a time

	capMu    sync.Mutex
	captured []nodeState
	got      bool
}

// newReaderName returns a name that is never a valid node id ('~').
func newReaderName() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("mesh: state reader name: %w", err)
	}
	return "~state-reader-" + hex.EncodeToString(b[:]), nil
}

// newStateReader creates the observer. dial opens a stream to the Mesh's
// memberlist (through the test transport when there is one).
func newStateReader(name, label string, keyring *memberlist.Keyring, tcpTimeout time.Duration,
	dial func(memberlist.Address, time.Duration) (net.Conn, error), logger *slog.Logger) (*stateReader, error) {
	r := &stateReader{name: name}
	c := memberlist.DefaultLANConfig()
	c.Name = name
	c.Label = label
	c.Keyring = keyring
	c.GossipVerifyIncoming, c.GossipVerifyOutgoing = true, true
	c.TCPTimeout = tcpTimeout
	// Never scheduled: no probing, gossip or push/pull of its own.
	c.ProbeInterval, c.GossipInterval, c.PushPullInterval = 0, 0, 0
	c.QueueCheckInterval = time.Hour
	c.Transport = newDialTransport(dial)
	c.Merge = r
	c.Logger = newMemberlistLogger(logger.With("part", "state-reader"))
	ml, err := memberlist.Create(c)
	if err != nil {
		return nil, fmt.Errorf("mesh: start state reader: %w", err)
	}
	r.ml = ml
	return r, nil
}

// NotifyMerge captures the table the Mesh's memberlist sent and refuses the
// merge.
func (r *stateReader) NotifyMerge(peers []*memberlist.Node) error {
	rows := make([]nodeState, 0, len(peers))
	for _, p := range peers {
		rows = append(rows, nodeState{name: p.Name, addr: p.Address(), meta: append([]byte(nil), p.Meta...), state: p.State})
	}
	r.capMu.Lock()
	r.captured, r.got = rows, true
	r.capMu.Unlock()
	return errStateRead
}

// read returns the table of the memberlist at target (host:port).
func (r *stateReader) read(target string) ([]nodeState, error) {
	r.readMu.Lock()
	defer r.readMu.Unlock()
	r.capMu.Lock()
	r.captured, r.got = nil, false
	r.capMu.Unlock()

	_, joinErr := r.ml.Join([]string{target})

	r.capMu.Lock()
	defer r.capMu.Unlock()
	if !r.got {
		return nil, fmt.Errorf("mesh: read state table from %s: %w", target, joinErr)
	}
	return r.captured, nil
}

// shutdown stops the observer.
func (r *stateReader) shutdown() error { return r.ml.Shutdown() }

var _ memberlist.NodeAwareTransport = (*dialTransport)(nil)

// dialTransport is the observer's transport: it can dial streams and does
// nothing else (no listener, packets discarded).
type dialTransport struct {
	dial     func(memberlist.Address, time.Duration) (net.Conn, error)
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
}

func newDialTransport(dial func(memberlist.Address, time.Duration) (net.Conn, error)) *dialTransport {
	return &dialTransport{dial: dial, packetCh: make(chan *memberlist.Packet), streamCh: make(chan net.Conn)}
}

// FinalAdvertiseAddr returns a placeholder; nobody ever dials the observer.
func (t *dialTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return net.IPv4(127, 0, 0, 1), 1, nil
}

// WriteTo discards the packet.
func (t *dialTransport) WriteTo(b []byte, addr string) (time.Time, error) { return time.Now(), nil }

// WriteToAddress discards the packet.
func (t *dialTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return time.Now(), nil
}

// PacketCh never delivers.
func (t *dialTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// DialTimeout dials addr.
func (t *dialTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.dial(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout dials a.
func (t *dialTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.dial(a, timeout)
}

// StreamCh never delivers.
func (t *dialTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown has nothing to release.
func (t *dialTransport) Shutdown() error { return nil }

// dialerFor returns how the state reader reaches the Mesh's memberlist: via
// the configured transport if any (tests), else plain TCP.
func dialerFor(tr memberlist.Transport) func(memberlist.Address, time.Duration) (net.Conn, error) {
	switch t := tr.(type) {
	case nil:
		return func(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
			d := net.Dialer{Timeout: timeout}
			return d.Dial("tcp", a.Addr)
		}
	case memberlist.NodeAwareTransport:
		return t.DialAddressTimeout
	default:
		return func(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
			return tr.DialTimeout(a.Addr, timeout)
		}
	}
}

// statusOf maps memberlist's state to Status.
func statusOf(s memberlist.NodeStateType) Status {
	switch s {
	case memberlist.StateSuspect:
		return StatusSuspect
	case memberlist.StateDead:
		return StatusDead
	case memberlist.StateLeft:
		return StatusLeft
	default:
		return StatusAlive
	}
}
