package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
)

// forwarder relays a request to another agent's API (the leader for writes,
// a container's node for local routes) and copies the answer back unchanged:
// status, headers and body, flushing as it goes so streams stay live. The
// request keeps its Authorization, its body and the caller's deadline, and is
// marked with X-Dropmesh-Forwarded so it is never forwarded again.
type forwarder struct {
	client *http.Client
	logger *slog.Logger
}

// UnreachableError means the other agent gave no answer. Sent tells whether
// the request may have reached it: when false (the connection was never
// made, or it was cut before the request was written), the other agent
// cannot have acted on it and the request may safely go elsewhere.
type UnreachableError struct {
	Target string
	Err    error
	Sent   bool
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("agent %s: %v", e.Target, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// errTargetChanged ends a forward whose target stopped being the right one
// (the leader changed) before its answer came.
var errTargetChanged = errors.New("it is no longer the leader")

// watchInterval is how often a forward checks that its target is still the
// right one while it waits for the connection and the answer's headers: a
// raft leader change is seen within this long.
const watchInterval = 20 * time.Millisecond

// hopHeaders are per-connection headers a proxy must not pass on (RFC 9110 7.6.1).
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// baseURL turns an agent API address ("10.0.0.2:9999" or a URL) into a
// base URL. Agents serve their API over TLS only, so a bare address is https.
func baseURL(api string) string {
	if strings.HasPrefix(api, "http://") || strings.HasPrefix(api, "https://") {
		return strings.TrimSuffix(api, "/")
	}
	return "https://" + api
}

func copyHeaders(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
	for _, h := range hopHeaders {
		dst.Del(h)
	}
	if c := src.Get("Connection"); c != "" {
		for _, f := range strings.Split(c, ",") {
			dst.Del(strings.TrimSpace(f))
		}
	}
}

// forward sends r to target and writes its answer to w. It returns an error
// only when no answer came (w is untouched then); a failure while copying
// the answer is logged, the status being already sent.
//
// still, when not nil, is asked every watchInterval until the answer's
// headers arrive whether target is still the right agent (the leader); when
// it is not, the forward ends with errTargetChanged: a dead leader's
// connection does not hold the caller until its deadline.
func (f *forwarder) forward(w http.ResponseWriter, r *http.Request, target string, still func() bool) error {
	ctx := r.Context()
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= 0 {
		return fmt.Errorf("forward to %s: %w", target, context.DeadlineExceeded)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var sent atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { sent.Store(true) }})

	var body io.Reader
	seen := &limitSeen{r: r.Body}
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		// limitSeen has no Close: the transport cannot close the caller's
		// body, which a retry elsewhere still needs when nothing was read.
		body = seen
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, baseURL(target)+r.URL.RequestURI(), body)
	if err != nil {
		return &UnreachableError{Target: target, Err: err}
	}
	copyHeaders(out.Header, r.Header)
	out.Header.Del("Host")
	if r.ContentLength > 0 {
		out.ContentLength = r.ContentLength
	}
	out.Header.Set(control.HeaderForwarded, "1")
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := r.Header.Get("X-Forwarded-For"); prior != "" {
			host = prior + ", " + host
		}
		out.Header.Set("X-Forwarded-For", host)
	}
	if dl, ok := ctx.Deadline(); ok {
		out.Header.Set(control.HeaderTimeout, time.Until(dl).String())
	}

	answered := make(chan struct{})
	if still != nil {
		go watchTarget(ctx, cancel, answered, still)
	}
	resp, err := f.client.Do(out)
	close(answered)
	if seen.hit != nil {
		// The caller's body went over this node's limit: whatever the other
		// side made of the cut body, the answer is ours.
		if resp != nil {
			resp.Body.Close()
		}
		return fmt.Errorf("request body: %w", seen.hit)
	}
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errTargetChanged) {
			err = cause
		} else if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("forward to %s: %w", target, context.DeadlineExceeded)
		}
		return &UnreachableError{Target: target, Err: err, Sent: sent.Load() || seen.n > 0}
	}
	defer resp.Body.Close()
	copyHeaders(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	if err := copyFlushing(w, resp.Body); err != nil && ctx.Err() == nil {
		f.logger.Warn("forwarded answer cut short", "target", target, "path", r.URL.Path, "err", err)
	}
	return nil
}

// watchTarget cancels a forward with errTargetChanged once still reports
// false, unless the answer came first.
func watchTarget(ctx context.Context, cancel context.CancelCauseFunc, answered <-chan struct{}, still func() bool) {
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	for {
		select {
		case <-answered:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			if !still() {
				cancel(errTargetChanged)
				return
			}
		}
	}
}

// copyFlushing copies src to w, flushing after every read so a streamed
// answer reaches the client as it comes.
func copyFlushing(w http.ResponseWriter, src io.Reader) error {
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			_ = rc.Flush()
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
