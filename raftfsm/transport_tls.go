package raftfsm

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ErrNoTransportSecurity means a store was opened with neither TLS nor a
// test transport: raft never listens in plain TCP.
var ErrNoTransportSecurity = errors.New("raft transport: no TLS configured")

// ErrPeerRefused means a raft connection was refused after its TLS
// handshake: the certificate does not name the server the connection
// speaks for.
var ErrPeerRefused = errors.New("raft peer refused")

// RaftTLS is the mutual-TLS configuration of raft's transport. raftfsm
// knows nothing of the cluster CA: node builds these from its credentials
// (node/pki) and passes them in.
type RaftTLS struct {
	// Server is the configuration of accepted connections. It must require
	// and verify a client certificate (tls.RequireAndVerifyClientCert).
	Server *tls.Config
	// Client is the configuration of dialled connections; it presents this
	// node's certificate and verifies the server's.
	Client *tls.Config
	// PeerID checks a finished handshake, on both sides, and returns the
	// node id the peer's certificate names; an error refuses the
	// connection. remote is the peer's address (source of an accepted
	// connection, target of a dialled one). node passes
	// pki.Verifier.VerifyPeerFrom. Whatever PeerID does, the stream also
	// requires the certificate to name remote's IP address.
	PeerID func(remote net.Addr, state tls.ConnectionState) (nodeID string, err error)
	// HandshakeTimeout bounds an accepted connection's handshake (a
	// stranger cannot hold a connection open without one); 10 s when zero.
	HandshakeTimeout time.Duration
	// Admit, when set, names nodes outside this node's raft configuration
	// that may still connect and send requests: a node that missed the
	// configuration change adding today's leader would otherwise refuse
	// that leader until it steps down. node passes its alive gossip
	// members. Without it only servers of the configuration are admitted
	// (anyone with a valid certificate while the configuration is empty:
	// a fresh node learns it from the leader).
	Admit func(nodeID string) bool
}

func (c *RaftTLS) validate() error {
	switch {
	case c.Server == nil || c.Client == nil || c.PeerID == nil:
		return errors.New("raft TLS: Server, Client and PeerID are all required")
	case c.Server.ClientAuth != tls.RequireAndVerifyClientCert:
		return fmt.Errorf("raft TLS: the server must require and verify client certificates (ClientAuth is %v)", c.Server.ClientAuth)
	case c.Server.GetCertificate == nil && len(c.Server.Certificates) == 0:
		return errors.New("raft TLS: the server has no certificate")
	case c.Client.GetClientCertificate == nil && len(c.Client.Certificates) == 0:
		return errors.New("raft TLS: the client has no certificate")
	}
	return nil
}

// tlsStream is a raft.StreamLayer over mutual TLS 1.3. Each connection is
// bound to a node id: a dialled server must be the raft server configured
// at the dialled address, an accepted client must be a server of the
// configuration (any node of the cluster while this node has none yet: a
// fresh node learns its configuration from the leader).
type tlsStream struct {
	ln        net.Listener
	advertise net.Addr
	localIP   net.IP // dial from here, so peers see the address our certificate names
	server    *tls.Config
	client    *tls.Config
	peerID    func(net.Addr, tls.ConnectionState) (string, error)
	admitFn   func(string) bool
	timeout   time.Duration
	logger    *slog.Logger

	mu     sync.Mutex
	config func() raft.Configuration // set once raft runs
	ended  func(peer string)         // told when an accepted connection ends (Store.peerConnEnded)
	conns  map[string]map[*boundConn]struct{}
}

var _ raft.StreamLayer = (*tlsStream)(nil)

func newTLSStream(bind string, advertise string, cfg *RaftTLS, logger *slog.Logger) (*tlsStream, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("raft TLS listen %s: %w", bind, err)
	}
	adv := ln.Addr()
	if advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", advertise)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("raft advertise address %q: %w", advertise, err)
		}
		if a.Port == 0 {
			a.Port = ln.Addr().(*net.TCPAddr).Port
		}
		adv = a
	}
	if a := adv.(*net.TCPAddr); a.IP == nil || a.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft advertise address %v is not an address peers can dial", adv)
	}
	s := &tlsStream{ln: ln, advertise: adv, server: tls13(cfg.Server), client: tls13(cfg.Client), peerID: cfg.PeerID, admitFn: cfg.Admit,
		timeout: cfg.HandshakeTimeout, logger: logger, conns: map[string]map[*boundConn]struct{}{}}
	if s.timeout <= 0 {
		s.timeout = 10 * time.Second
	}
	// Dial from the address our certificate names: the bound one, or the
	// advertised one when it is this host's (peers check the source).
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsUnspecified() {
		s.localIP = ip
	} else if ip := adv.(*net.TCPAddr).IP; isLocalIP(ip) {
		s.localIP = ip
	}
	return s, nil
}

// tls13 is a copy of c that speaks TLS 1.3 only.
func tls13(c *tls.Config) *tls.Config {
	c = c.Clone()
	c.MinVersion, c.MaxVersion = tls.VersionTLS13, 0
	return c
}

// setConfiguration gives the stream raft's configuration (after NewRaft).
func (s *tlsStream) setConfiguration(f func() raft.Configuration) {
	s.mu.Lock()
	s.config = f
	s.mu.Unlock()
}

// onEnded has f told the node id of every accepted connection that ends.
func (s *tlsStream) onEnded(f func(peer string)) {
	s.mu.Lock()
	s.ended = f
	s.mu.Unlock()
}

func (s *tlsStream) connEnded(peer string) {
	s.mu.Lock()
	f := s.ended
	s.mu.Unlock()
	if f != nil {
		f(peer)
	}
}

func (s *tlsStream) configuration() raft.Configuration {
	s.mu.Lock()
	f := s.config
	s.mu.Unlock()
	if f == nil {
		return raft.Configuration{}
	}
	return f()
}

// Accept returns the next connection. The handshake and the identity check
// run on the connection's first read or write, in raft's goroutine for that
// connection, so a slow stranger never blocks the accept loop.
func (s *tlsStream) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	b := &boundConn{Conn: tls.Server(c, s.server), stream: s}
	b.check = func(ctx context.Context) error { return s.admit(ctx, b) }
	return b, nil
}

// admit runs the server side handshake and binds the connection.
func (s *tlsStream) admit(ctx context.Context, b *boundConn) error {
	if err := b.tls().HandshakeContext(ctx); err != nil {
		return fmt.Errorf("raft TLS handshake from %v: %w", b.RemoteAddr(), err)
	}
	id, err := s.identify(b.RemoteAddr(), b.tls().ConnectionState())
	if err != nil {
		return fmt.Errorf("%w: from %v: %w", ErrPeerRefused, b.RemoteAddr(), err)
	}
	if !s.member(s.configuration(), id) {
		return fmt.Errorf("%w: %s (from %v) is not a raft server", ErrPeerRefused, id, b.RemoteAddr())
	}
	s.track(id, b)
	b.guard = newRPCGuard(b.Conn, func(t uint8, h *rpcHead) error {
		cfg := s.configuration()
		if !s.member(cfg, id) { // removed since the connection was made
			return fmt.Errorf("%w: %s is no longer a raft server", ErrPeerRefused, id)
		}
		return checkHeader(id, cfg, t, h)
	})
	return nil
}

// Dial connects to the raft server at address and checks that it is the
// server raft's configuration has there.
func (s *tlsStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	want := ""
	for _, sv := range s.configuration().Servers {
		if sv.Address == address {
			want = string(sv.ID)
		}
	}
	if want == "" {
		return nil, fmt.Errorf("%w: no raft server is configured at %s", ErrPeerRefused, address)
	}
	d := &net.Dialer{Timeout: timeout}
	if s.localIP != nil {
		d.LocalAddr = &net.TCPAddr{IP: s.localIP}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	raw, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, s.client)
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("raft TLS handshake with %s at %s: %w", want, address, err)
	}
	got, err := s.identify(raw.RemoteAddr(), c.ConnectionState())
	if err == nil && got != want {
		err = fmt.Errorf("it names %s", got)
	}
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("%w: %s at %s: %w", ErrPeerRefused, want, address, err)
	}
	b := &boundConn{Conn: c, stream: s, peer: got}
	b.once.Do(func() {}) // checked above
	s.track(got, b)
	return b, nil
}

// identify is the caller's PeerID plus the address rule: the peer's
// certificate names the IP address the connection is with.
func (s *tlsStream) identify(remote net.Addr, st tls.ConnectionState) (string, error) {
	id, err := s.peerID(remote, st)
	if err != nil {
		return "", err
	}
	ta, ok := remote.(*net.TCPAddr)
	if !ok || len(st.PeerCertificates) == 0 || !slices.ContainsFunc(st.PeerCertificates[0].IPAddresses, ta.IP.Equal) {
		return "", fmt.Errorf("%s's certificate does not name the address %v", id, remote)
	}
	return id, nil
}

// Addr is the address peers dial (the advertised one).
func (s *tlsStream) Addr() net.Addr { return s.advertise }

// Close stops listening and closes every open connection, as the end of
// the process would: raft's transport keeps pooled connections it never
// closes, and peers must see this node go (Store.peerConnEnded).
func (s *tlsStream) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	var list []*boundConn
	for _, m := range s.conns {
		for b := range m {
			list = append(list, b)
		}
	}
	s.mu.Unlock()
	for _, b := range list {
		b.Close()
	}
	return err
}

func (s *tlsStream) track(id string, b *boundConn) {
	serial := ""
	if st := b.tls().ConnectionState(); len(st.PeerCertificates) > 0 {
		serial = st.PeerCertificates[0].SerialNumber.Text(16) // as node/pki's SerialOf
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b.peer, b.serial = id, serial
	if s.conns[id] == nil {
		s.conns[id] = map[*boundConn]struct{}{}
	}
	s.conns[id][b] = struct{}{}
}

func (s *tlsStream) untrack(b *boundConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.conns[b.peer]; m != nil {
		delete(m, b)
		if len(m) == 0 {
			delete(s.conns, b.peer)
		}
	}
}

// disconnect closes every open connection to or from node id (a removed or
// revoked node: its certificate was good when the connection was made).
func (s *tlsStream) disconnect(id string) int {
	s.mu.Lock()
	var list []*boundConn
	for b := range s.conns[id] {
		list = append(list, b)
	}
	s.mu.Unlock()
	for _, b := range list {
		b.Close()
	}
	return len(list)
}

// isLocalIP reports whether ip is one of this host's addresses.
func isLocalIP(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// disconnectWhere closes every open connection whose peer certificate's
// serial revoked reports, and says how many it closed.
func (s *tlsStream) disconnectWhere(revoked func(serial string) bool) int {
	s.mu.Lock()
	var list []*boundConn
	for _, m := range s.conns {
		for b := range m {
			if b.serial != "" && revoked(b.serial) {
				list = append(list, b)
			}
		}
	}
	s.mu.Unlock()
	for _, b := range list {
		b.Close()
	}
	return len(list)
}

// member reports whether node id may speak raft to this node: a server of
// cfg, or one the caller's Admit names, or anyone while cfg is empty.
func (s *tlsStream) member(cfg raft.Configuration, id string) bool {
	return len(cfg.Servers) == 0 || hasServer(cfg, id) || (s.admitFn != nil && s.admitFn(id))
}

func hasServer(cfg raft.Configuration, id string) bool {
	for _, sv := range cfg.Servers {
		if string(sv.ID) == id {
			return true
		}
	}
	return false
}

// boundConn is a TLS connection bound to the node id its peer's certificate
// names. An accepted one runs its handshake and check before its first byte
// is read or written.
type boundConn struct {
	net.Conn // *tls.Conn
	stream   *tlsStream
	peer     string
	serial   string // of the peer's certificate
	check    func(context.Context) error
	guard    *rpcGuard // accepted connections: requests are checked before raft reads them
	once     sync.Once
	err      error
	closed   sync.Once
	ended    sync.Once
}

func (b *boundConn) tls() *tls.Conn { return b.Conn.(*tls.Conn) }

func (b *boundConn) ready() error {
	b.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), b.stream.timeout)
		defer cancel()
		b.err = b.check(ctx)
		if b.err != nil {
			b.stream.logger.Warn("raft connection refused", "remote", b.RemoteAddr().String(), "err", b.err)
			b.Close()
		}
	})
	return b.err
}

func (b *boundConn) Read(p []byte) (int, error) {
	if err := b.ready(); err != nil {
		return 0, err
	}
	if b.guard != nil {
		n, err := b.guard.Read(p)
		if err != nil && errors.Is(err, ErrPeerRefused) {
			b.stream.logger.Warn("raft request refused", "peer", b.peer, "remote", b.RemoteAddr().String(), "err", err)
			b.Close()
		} else if err != nil {
			b.ended.Do(func() { b.stream.connEnded(b.peer) })
		}
		return n, err
	}
	return b.Conn.Read(p)
}

func (b *boundConn) Write(p []byte) (int, error) {
	if err := b.ready(); err != nil {
		return 0, err
	}
	return b.Conn.Write(p)
}

func (b *boundConn) Close() error {
	err := b.Conn.Close()
	b.closed.Do(func() { b.stream.untrack(b) })
	return err
}
