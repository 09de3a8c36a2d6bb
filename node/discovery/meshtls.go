package discovery

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

// MeshTLS is the mutual TLS of the hop between one node's forwarders and
// another node's gateway: both sides present their node certificates, the
// gateway refuses a caller without a valid one, and the caller refuses a
// gateway whose certificate does not name the node it meant to reach.
// discovery knows nothing of the cluster CA: the agent builds these with
// node/pki's ServerConfig and ClientConfig, exactly as for raft.
type MeshTLS struct {
	// Server is the gateway's configuration. It must require and verify a
	// client certificate (tls.RequireAndVerifyClientCert).
	Server *tls.Config
	// Client is the configuration for dialling the gateway of node nodeID:
	// it presents this node's certificate and accepts only a server
	// certificate naming nodeID.
	Client func(nodeID string) *tls.Config
	// PeerID checks a caller on the gateway (remote is its address) and
	// returns the node its certificate names; an error refuses it. It runs
	// after the handshake, and again on the request of a connection that
	// waited in a caller's pool, so a revocation or an expiry also holds
	// on connections opened before it. node passes
	// pki.Verifier.VerifyPeerFrom.
	PeerID func(remote net.Addr, cs tls.ConnectionState) (nodeID string, err error)
	// Serial, when set, is the serial of this node's current certificate:
	// after a renewal new streams go over a new connection, made with the
	// new certificate, while streams open on the old one finish there.
	Serial func() string
}

func (m *MeshTLS) validate() error {
	switch {
	case m == nil || m.Server == nil || m.Client == nil || m.PeerID == nil:
		return errors.New("discovery: a gateway needs MeshTLS with Server, Client and PeerID")
	case m.Server.ClientAuth != tls.RequireAndVerifyClientCert:
		return fmt.Errorf("discovery: the gateway must require and verify client certificates (ClientAuth is %v)", m.Server.ClientAuth)
	case m.Server.GetCertificate == nil && len(m.Server.Certificates) == 0:
		return errors.New("discovery: the gateway has no certificate")
	}
	return nil
}

// Connection reuse on the mesh hop. A TLS 1.3 handshake with certificate
// checks on both sides costs about a millisecond of CPU, far more than
// the 0.3 ms the cross-node path may add, so each node keeps one mutual-TLS
// connection to every gateway it uses and carries every forwarded
// connection as a stream of it (hashicorp/yamux, as Nomad and Consul do
// for their RPC): a new stream costs one frame each way, and each stream
// has its own flow-control window, so a slow one never holds up another.
const (
	// recheckAfter: a stream arriving this long after its connection's
	// last check has the caller's certificate checked again (revocation,
	// expiry), so a revocation holds on open connections within it.
	recheckAfter = time.Second
	// retireCheck is how often a retired connection (one made with a
	// renewed certificate) is looked at; it is closed once its last
	// stream ends.
	retireCheck = time.Second
)

// muxConfig is the yamux configuration of both ends of the mesh hop.
func muxConfig(log *slog.Logger) *yamux.Config {
	c := yamux.DefaultConfig()
	c.LogOutput = nil
	c.Logger = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	c.KeepAliveInterval = 15 * time.Second
	return c
}

// meshPool holds this node's connections to the gateways it uses.
type meshPool struct {
	tls     *MeshTLS
	local   *net.TCPAddr // dial from here: the address this node's certificate names
	timeout time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	peers   map[string]*peerConn // by node id and address
	closed  bool
	retired sync.WaitGroup
	stop    chan struct{} // closed by close: retired connections go at once
}

// peerConn is the connection to one gateway.
type peerConn struct {
	node, addr string
	cfg        *tls.Config

	mu       sync.Mutex
	sess     *yamux.Session
	serial   string
	failedAt time.Time // the last dial's failure: callers fail fast for a while
	failErr  error
}

// dialBackoff is how long after a failed dial callers fail at once rather
// than queue for another dial (they try the next instance instead).
const dialBackoff = time.Second

func newMeshPool(m *MeshTLS, local *net.TCPAddr, timeout time.Duration, log *slog.Logger) *meshPool {
	return &meshPool{tls: m, local: local, timeout: timeout, log: log, peers: map[string]*peerConn{}, stop: make(chan struct{})}
}

// peer is the connection state of one gateway (nil once the pool is closed).
func (mp *meshPool) peer(node, addr string) *peerConn {
	key := node + "@" + addr
	mp.mu.Lock()
	defer mp.mu.Unlock()
	if p, ok := mp.peers[key]; ok || mp.closed {
		return p
	}
	// No TLS session resumption: a node makes one connection per gateway
	// and keeps it, and a resumed session would carry the certificate of
	// the first handshake, not the renewed one.
	cfg := mp.tls.Client(node).Clone()
	cfg.ClientSessionCache = nil
	p := &peerConn{node: node, addr: addr, cfg: cfg}
	mp.peers[key] = p
	return p
}

// open opens a stream to node's gateway at addr, over the current
// connection, making one when there is none (or it broke, or this node's
// certificate was renewed). fresh is true when the connection is new.
func (mp *meshPool) open(ctx context.Context, node, addr string) (s net.Conn, fresh bool, err error) {
	p := mp.peer(node, addr)
	if p == nil {
		return nil, false, errors.New("discovery: closed")
	}
	serial := ""
	if mp.tls.Serial != nil {
		serial = mp.tls.Serial()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sess != nil && (p.sess.IsClosed() || p.serial != serial) {
		mp.retire(p.sess)
		p.sess = nil
	}
	if p.sess != nil {
		if s, err := p.sess.OpenStream(); err == nil {
			return s, false, nil
		}
		mp.retire(p.sess)
		p.sess = nil
	}
	if p.failErr != nil && time.Since(p.failedAt) < dialBackoff {
		return nil, true, p.failErr
	}
	sess, err := mp.dial(ctx, p)
	if err != nil {
		p.failedAt, p.failErr = time.Now(), err
		return nil, true, err
	}
	p.failErr = nil
	p.sess, p.serial = sess, serial
	st, err := sess.OpenStream()
	if err != nil {
		return nil, true, fmt.Errorf("gateway of %s at %s: %w", node, addr, err)
	}
	return st, true, nil
}

// reset drops node's connection (its gateway refused it: a restart, a
// revoked or expired certificate), so the next stream makes a new one.
func (mp *meshPool) reset(node, addr string) {
	p := mp.peer(node, addr)
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sess != nil {
		mp.retire(p.sess)
		p.sess = nil
	}
}

// dial makes the mutual-TLS connection to p's gateway and its session.
func (mp *meshPool) dial(ctx context.Context, p *peerConn) (*yamux.Session, error) {
	d := &net.Dialer{Timeout: mp.timeout, LocalAddr: mp.local}
	raw, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, fmt.Errorf("gateway of %s at %s: %w", p.node, p.addr, err)
	}
	c := tls.Client(raw, p.cfg)
	hctx, cancel := context.WithTimeout(ctx, mp.timeout)
	defer cancel()
	if err := c.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("gateway of %s at %s: TLS: %w", p.node, p.addr, err)
	}
	sess, err := yamux.Client(&coalesceConn{Conn: c}, muxConfig(mp.log))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("gateway of %s at %s: %w", p.node, p.addr, err)
	}
	return sess, nil
}

// retire closes sess once its last stream has ended (at once if the pool
// closes). Called with the peer's lock held.
func (mp *meshPool) retire(sess *yamux.Session) {
	if sess.IsClosed() || sess.NumStreams() == 0 {
		sess.Close()
		return
	}
	_ = sess.GoAway()
	mp.retired.Add(1)
	go func() {
		defer mp.retired.Done()
		defer sess.Close()
		tick := time.NewTicker(retireCheck)
		defer tick.Stop()
		for sess.NumStreams() > 0 {
			select {
			case <-mp.stop:
				return
			case <-sess.CloseChan():
				return
			case <-tick.C:
			}
		}
	}()
}

// keep closes the connections to gateways no longer in use (peers holds
// "node@addr").
func (mp *meshPool) keep(peers map[string]bool) {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	for k, p := range mp.peers {
		if peers[k] {
			continue
		}
		delete(mp.peers, k)
		p.mu.Lock()
		if p.sess != nil {
			mp.retire(p.sess)
			p.sess = nil
		}
		p.mu.Unlock()
	}
}

// close closes every connection, streams included.
func (mp *meshPool) close() {
	mp.mu.Lock()
	if mp.closed {
		mp.mu.Unlock()
		return
	}
	mp.closed = true
	peers := mp.peers
	mp.peers = map[string]*peerConn{}
	close(mp.stop)
	mp.mu.Unlock()
	for _, p := range peers {
		p.mu.Lock()
		if p.sess != nil {
			p.sess.Close()
		}
		p.mu.Unlock()
	}
	mp.retired.Wait()
}

// coalesceConn joins each yamux data frame's 12-byte header to its body
// in one write: yamux writes them separately, which over TLS is two
// records and two system calls per frame. Only yamux's send loop writes,
// so there is no concurrent Write.
type coalesceConn struct {
	net.Conn
	buf  []byte
	held bool
}

// yamux's frame header: version, type (0: data), flags, stream id, length.
const (
	muxHeaderLen = 12
	muxTypeData  = 0
)

// Write holds a data frame's header until its body comes.
func (c *coalesceConn) Write(b []byte) (int, error) {
	if !c.held && len(b) == muxHeaderLen && b[1] == muxTypeData && binary.BigEndian.Uint32(b[8:12]) > 0 {
		c.buf = append(c.buf[:0], b...)
		c.held = true
		return len(b), nil
	}
	if !c.held {
		return c.Conn.Write(b)
	}
	c.held = false
	c.buf = append(c.buf[:muxHeaderLen], b...)
	if _, err := c.Conn.Write(c.buf); err != nil {
		return 0, err
	}
	return len(b), nil
}
