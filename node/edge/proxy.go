package edge

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dropmesh/dropmesh/node/httpserve"
)

// ProxyOptions configure the built-in proxy edge.
type ProxyOptions struct {
	// Listen is the plain HTTP address ("127.0.0.1:0" picks a port; see
	// Addr).
	Listen string
	// ListenTLS is the TLS address (optional); certificates come from the
	// applied Config, chosen by SNI.
	ListenTLS string
	// Logger receives the edge's own log lines (nil: discard).
	Logger *slog.Logger
	// AccessLog receives one line per request at Info, with the service
	// name. Nil sends them to Logger at Debug, so an agent's own log is not
	// flooded by default.
	AccessLog *slog.Logger
	// ClientMaxBodySize is the largest request body in bytes (0:
	// DefaultClientMaxBodySize); larger gets 413.
	ClientMaxBodySize int64
	// Timings are the timeouts; zero fields take DefaultTimings.
	Timings Timings
}

// Proxy is the built-in edge: a net/http server and an
// httputil.ReverseProxy with nginx's routing semantics (Host header,
// case-insensitive, port stripped; unknown host 404; round-robin across
// upstreams, the next one tried when a connection fails; websockets;
// X-Forwarded-* headers; 413 over the body cap). The route table is swapped
// atomically by Apply; a request finishes on the table it started with.
type Proxy struct {
	o           ProxyOptions
	log         *slog.Logger
	access      *slog.Logger
	accessLevel slog.Level
	maxBody     int64

	table     atomic.Pointer[table]
	srv       *http.Server
	ln, lnTLS net.Listener
	transport *http.Transport
	rp        *httputil.ReverseProxy
	cancel    context.CancelFunc // ends every request's context (hijacked websockets too)
	serving   sync.WaitGroup     // the Serve goroutines

	mu      sync.Mutex // Apply, Close and the fields below
	closed  bool
	retired []*table
}

var _ Edge = (*Proxy)(nil)

// NewProxy binds the listeners and starts serving with no routes (404 for
// every host) until the first Apply. Close stops it.
func NewProxy(ctx context.Context, o ProxyOptions) (*Proxy, error) {
	o.Timings = o.Timings.withDefaults()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	accessLevel := slog.LevelInfo
	if o.AccessLog == nil {
		o.AccessLog, accessLevel = o.Logger, slog.LevelDebug
	}
	if o.Listen == "" {
		return nil, errors.New("proxy edge: no listen address")
	}
	if o.ClientMaxBodySize < 0 {
		return nil, fmt.Errorf("proxy edge: client max body size %d: negative", o.ClientMaxBodySize)
	}
	p := &Proxy{o: o, log: o.Logger.With("edge", "proxy"), access: o.AccessLog, accessLevel: accessLevel, maxBody: o.ClientMaxBodySize}
	if p.maxBody == 0 {
		p.maxBody = DefaultClientMaxBodySize
	}
	var lc net.ListenConfig
	var err error
	if p.ln, err = lc.Listen(ctx, "tcp", o.Listen); err != nil {
		return nil, fmt.Errorf("proxy edge: listen %s: %w", o.Listen, err)
	}
	if o.ListenTLS != "" {
		if p.lnTLS, err = lc.Listen(ctx, "tcp", o.ListenTLS); err != nil {
			p.ln.Close()
			return nil, fmt.Errorf("proxy edge: listen TLS %s: %w", o.ListenTLS, err)
		}
	}
	empty, _ := newTable(Config{}, p.httpsSuffix())
	p.table.Store(empty)
	p.transport = newUpstreamTransport(o.Timings)
	p.rp = &httputil.ReverseProxy{
		Rewrite:      p.rewrite,
		Transport:    roundTripFunc(p.roundTrip),
		ErrorHandler: p.proxyError,
		ErrorLog:     slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		BufferPool:   newProxyBuffers(),
	}
	base, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.srv = &http.Server{
		// Each read of a client's body and each write to it is bounded as
		// nginx's client_body_timeout and send_timeout are (httpserve).
		Handler:           httpserve.Handler(p, httpserve.Timeouts{Read: o.Timings.HeaderTimeout, Write: o.Timings.SendTimeout}),
		ReadHeaderTimeout: o.Timings.HeaderTimeout,
		IdleTimeout:       o.Timings.IdleTimeout,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: p.certificate,
		},
		// HTTP/1.1 only, as nginx here: websockets need it.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	p.serve(func() error { return p.srv.Serve(p.ln) })
	if p.lnTLS != nil {
		p.serve(func() error { return p.srv.ServeTLS(p.lnTLS, "", "") })
	}
	p.log.Info("proxy edge serving", "addr", p.Addr(), "tls", p.AddrTLS())
	return p, nil
}

// newUpstreamTransport is the one transport the proxy shares across every
// route: keep-alive connections to each container, enough of them idle per
// upstream that a busy service reuses connections instead of opening one per
// request (the default of 2 idle per host makes a proxy under 32 clients
// connect anew for most requests). Idle ones close after
// upstreamIdleTimeout, before common servers close theirs.
func newUpstreamTransport(t Timings) *http.Transport {
	return &http.Transport{
		Proxy: nil, // never an environment proxy between the edge and containers
		DialContext: (&net.Dialer{
			Timeout:   t.ConnectTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       upstreamIdleTimeout,
		ResponseHeaderTimeout: t.ReadTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // pass encodings through untouched
		WriteBufferSize:       16 << 10,
		ReadBufferSize:        16 << 10,
	}
}

// proxyBuffers pools one proxy's copy buffers (32 KiB each), so a response
// body does not allocate one per request.
type proxyBuffers struct{ pool *sync.Pool }

const proxyBufferSize = 32 << 10

func newProxyBuffers() proxyBuffers {
	return proxyBuffers{pool: &sync.Pool{New: func() any { b := make([]byte, proxyBufferSize); return &b }}}
}

func (p proxyBuffers) Get() []byte { return *p.pool.Get().(*[]byte) }
func (p proxyBuffers) Put(b []byte) {
	if cap(b) == proxyBufferSize {
		b = b[:proxyBufferSize]
		p.pool.Put(&b)
	}
}

// serve runs one Serve loop until Close.
func (p *Proxy) serve(run func() error) {
	p.serving.Add(1)
	go func() {
		defer p.serving.Done()
		if err := run(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("proxy edge stopped serving", "err", err)
		}
	}()
}

// Addr is the plain HTTP listen address (the bound one when Listen asked
// for port 0).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// AddrTLS is the TLS listen address, or "".
func (p *Proxy) AddrTLS() string {
	if p.lnTLS == nil {
		return ""
	}
	return p.lnTLS.Addr().String()
}

// httpsSuffix is what follows the host in a redirect to this proxy's TLS
// listener (see newTable).
func (p *Proxy) httpsSuffix() string {
	if p.lnTLS == nil {
		return noHTTPS
	}
	return httpsPortSuffix(p.lnTLS.Addr().String())
}

// Apply validates cfg and swaps the route table in; requests in flight
// finish on the table they started with (see Drain).
func (p *Proxy) Apply(_ context.Context, cfg Config) error {
	if err := Validate(cfg); err != nil {
		return err
	}
	t, err := newTable(cfg, p.httpsSuffix())
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	old := p.table.Swap(t)
	old.retire()
	p.retired = append(p.retired, old)
	p.log.Info("edge config applied", "routes", len(cfg.Routes))
	return nil
}

// Drain waits until no request that started under an earlier config is
// still in flight (websockets included), or ctx ends: the safe moment to
// stop a container the edge switched away from.
func (p *Proxy) Drain(ctx context.Context) error {
	p.mu.Lock()
	tables := append([]*table(nil), p.retired...)
	p.mu.Unlock()
	for _, t := range tables {
		select {
		case <-t.idle:
		case <-ctx.Done():
			return fmt.Errorf("proxy edge: drain: requests of an earlier config still in flight: %w", ctx.Err())
		}
	}
	p.mu.Lock()
	keep := p.retired[:0]
	for _, t := range p.retired {
		select {
		case <-t.idle:
		default:
			keep = append(keep, t)
		}
	}
	p.retired = keep
	p.mu.Unlock()
	return nil
}

// Close stops accepting, lets requests in flight finish until ctx ends,
// then cuts the rest (websockets included) and waits for them.
func (p *Proxy) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	err := p.srv.Shutdown(ctx)
	p.cancel()
	if err != nil {
		_ = p.srv.Close()
	}
	p.serving.Wait()
	last, _ := newTable(Config{}, noHTTPS)
	old := p.table.Swap(last)
	old.retire()
	p.mu.Lock()
	p.retired = append(p.retired, old)
	p.mu.Unlock()
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	derr := p.Drain(dctx)
	p.transport.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("proxy edge: close: %w", err)
	}
	return derr
}

// acquire returns the current table, counted as in use by one request. The
// count is taken before checking the table is still current, so a table
// Drain saw idle is never used afterwards.
func (p *Proxy) acquire() *table {
	for {
		t := p.table.Load()
		t.inflight.Add(1)
		if p.table.Load() == t {
			return t
		}
		t.release()
	}
}

// certificate picks the certificate for a TLS handshake by SNI.
func (p *Proxy) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := normalizeHost(hello.ServerName)
	if c := p.table.Load().certFor(name); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("no certificate for server name %q", hello.ServerName)
}

// reqState is what one proxied request carries to the rewrite, the
// transport and the error handler.
type reqState struct {
	route *route
	host  string
	body  *guardedBody
}

type reqStateKey struct{}

func stateOf(r *http.Request) *reqState {
	s, _ := r.Context().Value(reqStateKey{}).(*reqState)
	return s
}

// ServeHTTP routes one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	t := p.acquire()
	defer t.release()
	lw := &logWriter{ResponseWriter: w}
	host := normalizeHost(r.Host)
	rt := t.lookup(host)
	service := "-"
	switch {
	case rt == nil || (r.TLS != nil && !rt.tls):
		http.Error(lw, "404 no such site", http.StatusNotFound)
	case r.TLS == nil && rt.https:
		service = rt.service
		http.Redirect(lw, r, "https://"+host+t.httpsSuffix+r.URL.RequestURI(), http.StatusPermanentRedirect)
	case r.ContentLength > p.maxBody:
		service = rt.service
		// Read (and drop) a bounded part of the body first, as nginx's
		// lingering close does: a client still sending when the answer
		// and the close come would get a reset instead of the 413.
		_, _ = io.CopyN(io.Discard, r.Body, min(r.ContentLength, refusedBodyDrain))
		lw.Header().Set("Connection", "close")
		http.Error(lw, "413 request body too large", http.StatusRequestEntityTooLarge)
	default:
		service = rt.service
		st := &reqState{route: rt, host: host}
		if r.Body != nil && r.Body != http.NoBody {
			st.body = &guardedBody{r: http.MaxBytesReader(lw, r.Body, p.maxBody)}
			r.Body = st.body
		}
		p.rp.ServeHTTP(lw, r.WithContext(context.WithValue(r.Context(), reqStateKey{}, st)))
	}
	// Checked first: the arguments alone (boxed into interfaces, the URI
	// rebuilt) cost allocations on every request when nothing logs them.
	if p.access.Enabled(r.Context(), p.accessLevel) {
		p.access.Log(r.Context(), p.accessLevel, "edge request", "service", service, "host", host, "method", r.Method,
			"uri", r.URL.RequestURI(), "status", lw.code(), "bytes", lw.bytes,
			"remote", r.RemoteAddr, "duration", time.Since(start))
	}
}

// rewrite prepares the outgoing request: Host kept, X-Forwarded-For
// appended, X-Forwarded-Proto/Host and X-Real-IP set, as nginx does. The
// upstream address is chosen by roundTrip.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	st := stateOf(pr.In)
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = st.route.upstreams[0].addr
	pr.Out.Host = st.host
	pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
	pr.SetXForwarded()
	pr.Out.Header.Set("X-Forwarded-Host", st.host)
	if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
		pr.Out.Header.Set("X-Real-IP", ip)
	}
}

// roundTrip sends the request to the route's upstreams in round-robin
// order, moving on to the next when connecting fails (nothing was sent
// yet) and marking the failed one down for Timings.FailTimeout.
func (p *Proxy) roundTrip(req *http.Request) (*http.Response, error) {
	st := stateOf(req)
	var lastErr error
	for _, u := range st.route.order(time.Now()) {
		out := *req
		url := *req.URL
		url.Host = u.addr
		out.URL = &url
		resp, err := p.transport.RoundTrip(&out)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if !isDialError(err) || req.Context().Err() != nil || (st.body != nil && st.body.touched.Load()) {
			return nil, err
		}
		u.downUntil.Store(time.Now().Add(p.o.Timings.FailTimeout).UnixNano())
		p.log.Warn("upstream refused the connection; trying the next", "service", st.route.service, "upstream", u.addr, "err", err)
	}
	return nil, lastErr
}

// refusedBodyDrain bounds how much of a refused, oversized body the proxy
// reads before it answers 413 and closes the connection.
const refusedBodyDrain = 8 << 20

// proxyError answers when no upstream could serve: 413 over the body cap,
// 504 on a timeout, else 502.
func (p *Proxy) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateOf(r)
	status := http.StatusBadGateway
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe) || (st.body != nil && st.body.exceeded.Load()):
		status = http.StatusRequestEntityTooLarge
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		status = http.StatusGatewayTimeout
	case errors.Is(err, context.Canceled):
		p.log.Debug("client went away", "service", st.route.service, "err", err)
	}
	if status != http.StatusRequestEntityTooLarge && !errors.Is(err, context.Canceled) {
		p.log.Warn("upstream failed", "service", st.route.service, "host", st.host, "status", status, "err", err)
	}
	w.WriteHeader(status)
}

// isDialError reports whether err happened while connecting, before any
// byte of the request was sent.
func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// guardedBody wraps a request body so a failed connection attempt does not
// consume or close it: touched says whether any byte was read (then a retry
// is unsafe), exceeded whether the body cap was hit. The server closes the
// real body.
type guardedBody struct {
	r        io.ReadCloser
	touched  atomic.Bool
	exceeded atomic.Bool
}

func (b *guardedBody) Read(p []byte) (int, error) {
	b.touched.Store(true)
	n, err := b.r.Read(p)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		b.exceeded.Store(true)
	}
	return n, err
}

func (b *guardedBody) Close() error { return nil }

// logWriter records the status and size of a response for the access log.
type logWriter struct {
	http.ResponseWriter
	status   int
	bytes    int64
	hijacked bool
}

func (w *logWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Hijack hands the connection to the reverse proxy's websocket pump.
func (w *logWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, rw, err
}

// Unwrap lets http.ResponseController reach the server's writer (Flush).
func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *logWriter) code() int {
	switch {
	case w.status != 0:
		return w.status
	case w.hijacked:
		return http.StatusSwitchingProtocols
	}
	return http.StatusOK
}
