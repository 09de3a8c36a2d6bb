package discovery

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/dropmesh/dropmesh/node/pki"
)

// upstream is one service's balancing state, shared by the listeners of
// all its ports on one network.
type upstream struct {
	ws, key   string
	endpoints atomic.Pointer[[]Endpoint]
	next      atomic.Uint32
}

// listener forwards one virtual address and port.
type listener struct {
	ln     net.Listener
	up     *upstream
	port   int
	subnet netip.Prefix
	done   chan struct{}
}

// dialer reaches instances: local ones directly, remote ones through their
// node's gateway, over mutual TLS (pool).
type dialer struct {
	pool    *meshPool // nil: this node has no gateway and reaches no remote instance
	timeout time.Duration
}

// dial connects to one endpoint of up on port, trying them in round-robin
// order from the next one until one answers.
func (d *dialer) dial(ctx context.Context, up *upstream, port int) (net.Conn, error) {
	eps := *up.endpoints.Load()
	if len(eps) == 0 {
		return nil, errors.New("no healthy instance")
	}
	start := int(up.next.Add(1))
	var last error
	for i := range eps {
		ep := eps[(start+i)%len(eps)]
		c, err := d.dialEndpoint(ctx, up, ep, port)
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

func (d *dialer) dialEndpoint(ctx context.Context, up *upstream, ep Endpoint, port int) (net.Conn, error) {
	if ep.Local {
		nd := net.Dialer{Timeout: d.timeout, KeepAlive: localKeepAlive}
		return nd.DialContext(ctx, "tcp", netip.AddrPortFrom(ep.IP, uint16(port)).String())
	}
	if d.pool == nil {
		return nil, fmt.Errorf("instance on %s: this node has no mesh gateway", ep.Node)
	}
	t := target{Workspace: up.ws, Key: up.key, Port: port}
	c, fresh, err := d.pool.open(ctx, ep.Node, ep.Peer)
	if err == nil {
		err = request(ctx, c, t, d.timeout)
	}
	if err != nil && !fresh && !errors.Is(err, errRefused) {
		// The connection to the gateway broke meanwhile (it restarted, or
		// it no longer accepts this node's certificate): once more on a
		// new one.
		d.pool.reset(ep.Node, ep.Peer)
		if c, _, err = d.pool.open(ctx, ep.Node, ep.Peer); err == nil {
			err = request(ctx, c, t, d.timeout)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", up.key, ep.Node, err)
	}
	return c, nil
}

// errRefused is a gateway's answer that it has no healthy instance of the target.
var errRefused = errors.New("the gateway has no healthy instance")

// request sends t's request line on stream c and reads the gateway's
// answer; on an error c is closed.
func request(ctx context.Context, c net.Conn, t target, timeout time.Duration) error {
	dl := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = c.SetDeadline(dl)
	if _, err := io.WriteString(c, encodeHeader(t)); err != nil {
		c.Close()
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		return err
	}
	if b[0] != replyOK {
		c.Close()
		return errRefused
	}
	_ = c.SetDeadline(time.Time{})
	return nil
}

// serve accepts connections until the listener closes; a caller outside
// the network's subnet (another workspace's container, another host) is
// closed at once.
func (l *listener) serve(d *dialer, log *slog.Logger, wg *sync.WaitGroup) {
	defer close(l.done)
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			log.Warn("discovery: accept", "addr", l.ln.Addr(), "err", err)
			time.Sleep(10 * time.Millisecond) // a transient accept error (EMFILE): do not spin
			continue
		}
		if !l.subnet.Contains(remoteAddr(c)) {
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
			b, err := d.dial(ctx, l.up, l.port)
			cancel()
			if err != nil {
				log.Debug("discovery: no instance answered", "service", l.up.key, "port", l.port, "err", err)
				c.Close()
				return
			}
			splice(c, b)
		}()
	}
}

// localKeepAlive is the TCP keep-alive of the legs between a forwarder
// or gateway and a container on the same host: none. Such a peer never
// vanishes silently (its network namespace closes its sockets), and the
// probes' set-up costs system calls on every forwarded connection; the
// hop between nodes has its own keep-alive (muxConfig).
const localKeepAlive = -1

// remoteAddr is the peer's address of c (unmapped), zero if unknown.
func remoteAddr(c net.Conn) netip.Addr {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// splice copies both ways until both sides are done, passing half-closes on.
func splice(a, b net.Conn) {
	spliceFrom(a, a, b)
}

// spliceFrom is splice with a's reads coming from src (a reader that may
// hold bytes read past a header).
func spliceFrom(a net.Conn, src io.Reader, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(b, src)
		closeWrite(b)
	}()
	_, _ = io.Copy(a, b)
	closeWrite(a)
	wg.Wait()
	a.Close()
	b.Close()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}

// Gateway is a node's mesh listener on its private address: other nodes'
// forwarders connect to it over mutual TLS with their node certificates
// and open one stream per forwarded connection, naming a service and
// port; it connects each stream to a healthy local instance, never
// onwards. A caller without a valid node certificate of the cluster is
// refused during the handshake.
type Gateway struct {
	ln      net.Listener
	tls     *MeshTLS
	catalog func() *Catalog
	log     *slog.Logger
	timeout time.Duration
	wg      sync.WaitGroup
	next    atomic.Uint32

	mu       sync.Mutex
	sessions map[*yamux.Session]string // the caller's certificate serial
	closed   bool
}

// serve accepts until the listener closes.
func (g *Gateway) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			g.log.Warn("discovery: gateway accept", "err", err)
			time.Sleep(10 * time.Millisecond) // a transient accept error (EMFILE): do not spin
			continue
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.handle(c)
		}()
	}
}

// handle runs one caller's connection: the handshake and check, then its
// streams until it closes.
func (g *Gateway) handle(raw net.Conn) {
	c := tls.Server(raw, g.tls.Server)
	_ = c.SetDeadline(time.Now().Add(g.timeout))
	if err := c.Handshake(); err != nil {
		g.log.Warn("discovery: gateway refused a connection", "from", raw.RemoteAddr(), "err", err)
		raw.Close()
		return
	}
	peer, err := g.tls.PeerID(raw.RemoteAddr(), c.ConnectionState())
	if err != nil {
		g.log.Warn("discovery: gateway refused a node", "from", raw.RemoteAddr(), "err", err)
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	sess, err := yamux.Server(&coalesceConn{Conn: c}, muxConfig(g.log))
	if err != nil {
		c.Close()
		return
	}
	serial := ""
	if cs := c.ConnectionState(); len(cs.PeerCertificates) > 0 {
		serial = pki.SerialOf(cs.PeerCertificates[0])
	}
	if !g.track(sess, serial, true) {
		sess.Close()
		return
	}
	defer g.track(sess, serial, false)
	defer sess.Close()
	var mu sync.Mutex
	checked := time.Now()
	// recheck checks the caller's certificate again when the last check is
	// older than recheckAfter; false closes the connection.
	recheck := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(checked) < recheckAfter {
			return true
		}
		if _, err := g.tls.PeerID(raw.RemoteAddr(), c.ConnectionState()); err != nil {
			g.log.Warn("discovery: gateway dropped a node", "node", peer, "err", err)
			sess.Close()
			return false
		}
		checked = time.Now()
		return true
	}
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.stream(st, peer, recheck)
		}()
	}
}

// track adds or removes a caller's session; adding fails once the gateway closed.
func (g *Gateway) track(s *yamux.Session, serial string, add bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !add {
		delete(g.sessions, s)
		return true
	}
	if g.closed {
		return false
	}
	if g.sessions == nil {
		g.sessions = map[*yamux.Session]string{}
	}
	g.sessions[s] = serial
	return true
}

// stream serves one forwarded connection.
func (g *Gateway) stream(st net.Conn, peer string, recheck func() bool) {
	_ = st.SetDeadline(time.Now().Add(g.timeout))
	br := bufio.NewReaderSize(st, maxHeaderLen)
	t, err := readHeader(br)
	if err != nil {
		g.log.Warn("discovery: gateway request", "node", peer, "err", err)
		st.Close()
		return
	}
	if !recheck() {
		st.Close()
		return
	}
	b := g.connect(t)
	if b == nil {
		_, _ = st.Write([]byte{replyRefused})
		st.Close()
		return
	}
	if _, err := st.Write([]byte{replyOK}); err != nil {
		b.Close()
		st.Close()
		return
	}
	_ = st.SetDeadline(time.Time{})
	spliceFrom(st, br, b)
}

// close stops the gateway: its listener and every caller's connection.
func (g *Gateway) close() {
	g.ln.Close()
	g.mu.Lock()
	g.closed = true
	for s := range g.sessions {
		s.Close()
	}
	g.mu.Unlock()
}

// connect dials a healthy local instance of t, nil if none answers.
func (g *Gateway) connect(t target) net.Conn {
	var local []Endpoint
	for _, s := range g.catalog().Services {
		if s.Workspace == t.Workspace && s.Key() == t.Key && slices.Contains(s.Ports, t.Port) {
			for _, ep := range s.Endpoints {
				if ep.Local {
					local = append(local, ep)
				}
			}
		}
	}
	start := int(g.next.Add(1))
	for i := range local {
		ep := local[(start+i)%len(local)]
		nd := net.Dialer{Timeout: g.timeout, KeepAlive: localKeepAlive}
		b, err := nd.Dial("tcp", net.JoinHostPort(ep.IP.String(), strconv.Itoa(t.Port)))
		if err == nil {
			return b
		}
	}
	return nil
}

// Addr is where the gateway listens.
func (g *Gateway) Addr() net.Addr { return g.ln.Addr() }
