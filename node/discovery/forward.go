package discovery

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
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
// node's gateway.
type dialer struct {
	meshKey []byte
	timeout time.Duration
	now     func() time.Time
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
	nd := net.Dialer{Timeout: d.timeout}
	if ep.Local {
		return nd.DialContext(ctx, "tcp", netip.AddrPortFrom(ep.IP, uint16(port)).String())
	}
	c, err := nd.DialContext(ctx, "tcp", ep.Peer)
	if err != nil {
		return nil, err
	}
	hdr := encodeHeader(d.meshKey, target{Workspace: up.ws, Key: up.key, Port: port}, d.now())
	if _, err := io.WriteString(c, hdr); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
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
// forwarders connect to it with a signed header naming a service and port,
// and it connects them to a healthy local instance, never onwards.
type Gateway struct {
	ln      net.Listener
	meshKey []byte
	catalog func() *Catalog
	log     *slog.Logger
	timeout time.Duration
	now     func() time.Time
	wg      sync.WaitGroup
	next    atomic.Uint32
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
			time.Sleep(10 * time.Millisecond)
			continue
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.handle(c)
		}()
	}
}

func (g *Gateway) handle(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(g.timeout))
	br := bufio.NewReaderSize(c, maxHeaderLen)
	t, err := readHeader(br, g.meshKey, g.now())
	if err != nil {
		g.log.Warn("discovery: gateway refused a connection", "from", c.RemoteAddr(), "err", err)
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
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
	if len(local) == 0 {
		c.Close()
		return
	}
	start := int(g.next.Add(1))
	for i := range local {
		ep := local[(start+i)%len(local)]
		b, err := net.DialTimeout("tcp", net.JoinHostPort(ep.IP.String(), strconv.Itoa(t.Port)), g.timeout)
		if err == nil {
			spliceFrom(c, br, b)
			return
		}
	}
	c.Close()
}

// Addr is where the gateway listens.
func (g *Gateway) Addr() net.Addr { return g.ln.Addr() }
