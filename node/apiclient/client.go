// Package apiclient is the Go client of the agent API (node/api), used by
// the CLI, by agents (their reports to the leader go through
// POST /v1/internal/commands) and by tests.
//
// A Client knows several agent addresses and tries the next one when one is
// down. Reads are retried on any transport failure; writes only when the
// request certainly did not arrive (connection refused) or the agent said
// it changed nothing (503 not_leader or no_leader, 429), always with backoff
// and within the caller's context. Typed methods cover every route and
// return the control and raftfsm types; failures from the API are *APIError.
package apiclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
)

// Config configures a Client.
type Config struct {
	// Addrs are agent API addresses: "host:port" or a base URL.
	Addrs []string
	// APIKey is sent as "Authorization: Bearer <key>".
	APIKey string
	// HTTPClient makes the requests; the default dials in 5 s and has no
	// overall timeout (streams are long), Timeout bounds ordinary calls.
	// When it is given, CACert and TLS are not used: it has its own.
	HTTPClient *http.Client
	// CACert is the cluster CA's certificate (PEM, DROPMESH_CACERT): the
	// agents' API certificates are verified against it. Empty: the
	// system's roots (an API reached through the UI host's public name).
	CACert []byte
	// TLS is the whole client TLS config (agents: their node certificate as
	// client certificate); it overrides CACert.
	TLS *tls.Config
	// Timeout bounds one attempt of an ordinary call (default 30 s); a
	// blocking read gets its wait on top. Streams have none.
	Timeout time.Duration
	// RetryFor is how long a call keeps retrying while no agent can answer
	// (default 30 s); the caller's context can end it sooner. Longer rides
	// out a leader election; shorter fails faster when the cluster is down.
	// When every agent refuses the connection (nothing listens) the call
	// gives up after a few rounds, about a second, whatever RetryFor says.
	RetryFor time.Duration
	// Stale makes every read a stale one (Stale), unless it asks to be
	// consistent: faster and possibly behind, the client's own writes
	// still seen.
	Stale bool
}

// ErrNoAgent means no agent of the list could be reached.
var ErrNoAgent = errors.New("no agent could be reached")

// Backoff between retries: it starts at backoffStart, doubles, and stops
// growing at backoffMax; a Retry-After from the agent is honoured up to
// retryAfterMax.
const (
	backoffStart  = 100 * time.Millisecond
	backoffMax    = 2 * time.Second
	retryAfterMax = 5 * time.Second
	// maxDeadRounds ends the retries after this many rounds in which every
	// agent refused the connection (about a second with the backoff).
	maxDeadRounds = 3
)

// Client talks to the agent API.
type Client struct {
	bases    []string
	key      string
	http     *http.Client
	timeout  time.Duration
	retryFor time.Duration
	stale    bool

	mu        sync.Mutex
	preferred int // index of the address that answered last

	// written is the highest X-Dropmesh-Index of this client's writes:
	// its later reads pass it as ?index=, so they see those writes on
	// whichever agent answers, stale reads included.
	written atomic.Uint64
}

// WrittenIndex is the highest raft index this client's writes committed at
// (0 before any write).
func (c *Client) WrittenIndex() uint64 { return c.written.Load() }

func (c *Client) noteWrite(idx uint64) {
	for {
		cur := c.written.Load()
		if idx <= cur || c.written.CompareAndSwap(cur, idx) {
			return
		}
	}
}

// maxIdlePerAgent is how many idle connections a client keeps to each agent.
const maxIdlePerAgent = 32

// New returns a client for the given agents.
func New(cfg Config) (*Client, error) {
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("apiclient: no agent address")
	}
	c := &Client{key: cfg.APIKey, http: cfg.HTTPClient, timeout: cfg.Timeout, retryFor: cfg.RetryFor, stale: cfg.Stale}
	for _, a := range cfg.Addrs {
		base, err := normalizeAddr(a)
		if err != nil {
			return nil, err
		}
		c.bases = append(c.bases, base)
	}
	if c.http == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		// Keep a connection per concurrent caller (the UI's page loads, a
		// script's parallel calls): past the default 2 idle per host, each
		// request beyond them would pay a new TLS handshake.
		tr.MaxIdleConnsPerHost = maxIdlePerAgent
		switch {
		case cfg.TLS != nil:
			tr.TLSClientConfig = cfg.TLS.Clone()
		case len(cfg.CACert) > 0:
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(cfg.CACert) {
				return nil, errors.New("apiclient: the CA certificate (DROPMESH_CACERT) holds no PEM certificate")
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		c.http = &http.Client{Transport: tr}
	}
	if c.timeout <= 0 {
		c.timeout = 30 * time.Second
	}
	if c.retryFor <= 0 {
		c.retryFor = 30 * time.Second
	}
	return c, nil
}

// normalizeAddr turns "host:port" or a URL into a base URL without a
// trailing slash. A bare address is https: agents serve their API over TLS
// only.
func normalizeAddr(a string) (string, error) {
	a = strings.TrimSpace(a)
	if !strings.Contains(a, "://") {
		a = "https://" + a
	}
	u, err := url.Parse(a)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" {
		return "", fmt.Errorf("apiclient: agent address %q: want host:port or http(s)://host:port", a)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// Addrs returns the agents' base URLs.
func (c *Client) Addrs() []string { return append([]string(nil), c.bases...) }

// APIError is an error answer of the API.
type APIError struct {
	Status  int
	Code    string
	Message string
	// RetryAfter is the agent's Retry-After, if it sent one.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%d %s", e.Status, e.Code)
	}
	return e.Message
}

// Retryable reports whether the same request may be tried again.
func (e *APIError) Retryable() bool { return control.Retryable(e.Code) }

// Code returns the API error code of err ("" when err is not an *APIError).
func Code(err error) string {
	var e *APIError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// IsNotFound reports whether err is a 404 of the API.
func IsNotFound(err error) bool { return Code(err) == control.CodeNotFound }

// Meta describes a read's answer.
type Meta struct {
	// Index is the raft index of the state the answer came from (of a
	// write: the index it committed at); pass it to WaitIndex to block until
	// the state moves past it, or to AtIndex to read at least it.
	Index uint64
	// LastContact is how long before the answer its agent last heard from
	// the leader (0 for a linearizable read); KnownLeader whether it knew
	// one. LastContact is -1 when the agent never heard from a leader.
	LastContact time.Duration
	KnownLeader bool
}

// ReadOption changes a read.
type ReadOption func(*readOptions)

type readOptions struct {
	index      uint64
	wait       time.Duration
	blocking   bool
	consistent bool
	stale      bool
	atIndex    uint64
	meta       *Meta
}

// WaitIndex makes a blocking read: the answer comes once the state's index
// is above index, or after wait (0: the agent's default of 5 minutes).
func WaitIndex(index uint64, wait time.Duration) ReadOption {
	return func(o *readOptions) { o.index, o.wait, o.blocking = index, wait, true }
}

// Consistent asks for a linearizable read, which is the default; it is
// kept for callers that say so explicitly.
func Consistent() ReadOption { return func(o *readOptions) { o.consistent = true } }

// Stale reads the answering agent's replica as it is, without a round trip
// to the leader: faster, and possibly behind (by up to Meta.LastContact).
// The client's own writes are still seen (see AtIndex).
func Stale() ReadOption { return func(o *readOptions) { o.stale = true } }

// AtIndex makes the answer reflect at least raft index idx (a write's
// Meta.Index), on whichever agent answers. The client does this by itself
// for its own writes.
func AtIndex(idx uint64) ReadOption { return func(o *readOptions) { o.atIndex = max(o.atIndex, idx) } }

// StoreMeta stores the answer's Meta in m.
func StoreMeta(m *Meta) ReadOption { return func(o *readOptions) { o.meta = m } }

// request is one API call.
type request struct {
	method string
	path   string
	query  url.Values
	// body is a JSON or byte body; upload a seekable one (re-read on retry).
	body        []byte
	upload      io.ReadSeeker
	contentType string
	// write requests are retried only when they certainly changed nothing.
	write bool
	// stream answers have no attempt timeout; the caller reads the body.
	stream bool
	// anonymous requests carry no API key (POST /v1/join: the token is the credential).
	anonymous bool
	// extra time for one attempt (a blocking read's wait).
	extra time.Duration
}

// do runs a request with failover and retries, and returns a 2xx answer
// with its body open.
func (c *Client) do(ctx context.Context, r request) (*http.Response, context.CancelFunc, error) {
	giveUp := time.Now().Add(c.retryFor)
	backoff := backoffStart
	c.mu.Lock()
	start := c.preferred
	c.mu.Unlock()
	var (
		lastErr error
		// deadRounds counts rounds in which no agent even took the
		// connection: nothing listens, so there is no point in waiting long.
		deadRounds int
		allDead    = true
	)
	for attempt := 0; ; attempt++ {
		i := (start + attempt) % len(c.bases)
		resp, cancel, err := c.once(ctx, c.bases[i], r)
		if err == nil {
			c.mu.Lock()
			c.preferred = i
			c.mu.Unlock()
			return resp, cancel, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			return nil, nil, err
		}
		endOfRound := (attempt+1)%len(c.bases) == 0
		var apiErr *APIError
		wait := time.Duration(0)
		switch {
		case errors.As(err, &apiErr):
			if !apiErr.Retryable() {
				return nil, nil, err
			}
			allDead = false
			// Another agent may lead or know the leader: ask it at once,
			// and honour Retry-After at the end of the round.
			if endOfRound {
				wait = max(backoff, min(apiErr.RetryAfter, retryAfterMax))
			}
		case isDialError(err), !r.write:
			if !isDialError(err) {
				allDead = false
			}
			// Another agent may answer; pause only after a full round.
			if endOfRound {
				wait = backoff
			}
		default:
			return nil, nil, err
		}
		if endOfRound {
			if allDead {
				deadRounds++
			}
			allDead = true
		}
		// Every agent is asked at least once, however long the first ones
		// took to answer (a follower waits a while for a leader).
		firstRound := attempt+1 < len(c.bases)
		if deadRounds >= maxDeadRounds || !firstRound && time.Now().Add(wait).After(giveUp) {
			break
		}
		if wait > 0 {
			backoff = min(backoff*2, backoffMax)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, nil, lastErr
			case <-t.C:
			}
		}
	}
	var apiErr *APIError
	if errors.As(lastErr, &apiErr) {
		return nil, nil, lastErr
	}
	return nil, nil, fmt.Errorf("%w (tried %s): %w", ErrNoAgent, strings.Join(c.bases, ", "), lastErr)
}

// isDialError reports whether err happened before the request left: the
// agent cannot have acted on it.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// once makes one attempt against one agent.
func (c *Client) once(ctx context.Context, base string, r request) (*http.Response, context.CancelFunc, error) {
	cancel := context.CancelFunc(func() {})
	if !r.stream {
		ctx, cancel = context.WithTimeout(ctx, c.timeout+r.extra)
	}
	u := base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var (
		body io.Reader
		size int64 = -1
	)
	switch {
	case r.upload != nil:
		// Every attempt sends the whole upload from its start.
		n, err := r.upload.Seek(0, io.SeekEnd)
		if err == nil {
			_, err = r.upload.Seek(0, io.SeekStart)
		}
		if err != nil {
			cancel()
			return nil, nil, fmt.Errorf("%s %s: rewind the upload: %w", r.method, r.path, err)
		}
		body, size = io.NopCloser(r.upload), n
	case r.body != nil:
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	if size >= 0 {
		req.ContentLength = size
	}
	if !r.anonymous {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	req.Header.Set("User-Agent", "dropmesh-apiclient")
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left > 0 {
			req.Header.Set(control.HeaderTimeout, left.Round(time.Millisecond).String())
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // its text repeats the method and URL
		}
		return nil, nil, fmt.Errorf("%s %s%s: %w", r.method, base, r.path, err)
	}
	if resp.StatusCode >= 300 {
		defer cancel()
		defer resp.Body.Close()
		return nil, nil, readAPIError(resp)
	}
	return resp, cancel, nil
}

func readAPIError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &APIError{Status: resp.StatusCode}
	var body control.ErrorBody
	if json.Unmarshal(data, &body) == nil && body.Error != "" {
		e.Code, e.Message = body.Error, body.Message
	} else {
		e.Code = "http_" + strconv.Itoa(resp.StatusCode)
		e.Message = strings.TrimSpace(string(data))
		if e.Message == "" {
			e.Message = resp.Status
		}
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && ra > 0 {
		e.RetryAfter = time.Duration(ra) * time.Second
	}
	return e
}

// call runs a request and decodes a JSON answer into out (nil: discard).
func (c *Client) call(ctx context.Context, r request, out any) (Meta, error) {
	resp, cancel, err := c.do(ctx, r)
	if err != nil {
		return Meta{}, err
	}
	defer cancel()
	defer resp.Body.Close()
	var m Meta
	if v := resp.Header.Get(control.HeaderIndex); v != "" {
		m.Index, _ = strconv.ParseUint(v, 10, 64)
	}
	m.KnownLeader = resp.Header.Get(control.HeaderKnownLeader) == "true"
	m.LastContact = -1
	if ms, err := strconv.ParseInt(resp.Header.Get(control.HeaderLastContact), 10, 64); err == nil {
		m.LastContact = time.Duration(ms) * time.Millisecond
	}
	if r.write && m.Index > 0 {
		c.noteWrite(m.Index)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return m, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return m, fmt.Errorf("%s %s: decode the answer: %w", r.method, r.path, err)
	}
	return m, nil
}

// Get reads path (with query) into out, for any read route; typed methods
// are built on it.
func (c *Client) Get(ctx context.Context, path string, query url.Values, out any, opts ...ReadOption) error {
	var o readOptions
	for _, opt := range opts {
		opt(&o)
	}
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	var extra time.Duration
	if o.blocking {
		wait := o.wait
		if wait <= 0 {
			wait = control.DefaultBlockingWait
		}
		q.Set("index", strconv.FormatUint(o.index, 10))
		q.Set("wait", wait.String())
		extra = wait
	} else if idx := max(o.atIndex, c.written.Load()); idx > 0 {
		q.Set("index", strconv.FormatUint(idx, 10))
	}
	switch {
	case o.consistent:
		q.Set("consistent", "true")
	case o.stale || c.stale:
		q.Set("stale", "true")
	}
	m, err := c.call(ctx, request{method: http.MethodGet, path: path, query: q, extra: extra}, out)
	if o.meta != nil {
		*o.meta = m
	}
	return err
}

// send makes a write with a JSON body (nil: none) and decodes the answer.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, in, out any) error {
	r := request{method: method, path: path, query: query, write: true}
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		r.body, r.contentType = data, "application/json"
	}
	_, err := c.call(ctx, r, out)
	return err
}
