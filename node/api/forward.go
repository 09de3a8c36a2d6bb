package api

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
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

// UnreachableError means the other agent gave no answer; nothing was written.
type UnreachableError struct {
	Target string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("agent %s: %v", e.Target, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// hopHeaders are per-connection headers a proxy must not pass on (RFC 9110 7.6.1).
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// baseURL turns an agent API address ("10.0.0.2:9999" or a URL) into a base URL.
func baseURL(api string) string {
	if strings.HasPrefix(api, "http://") || strings.HasPrefix(api, "https://") {
		return strings.TrimSuffix(api, "/")
	}
	return "http://" + api
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
func (f *forwarder) forward(w http.ResponseWriter, r *http.Request, target string) error {
	ctx := r.Context()
	var body io.Reader
	seen := &limitSeen{r: r.Body}
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
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
	out.Header.Set(HeaderForwarded, "1")
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := r.Header.Get("X-Forwarded-For"); prior != "" {
			host = prior + ", " + host
		}
		out.Header.Set("X-Forwarded-For", host)
	}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return &UnreachableError{Target: target, Err: ctx.Err()}
		}
		out.Header.Set(HeaderTimeout, left.String())
	}
	resp, err := f.client.Do(out)
	if seen.hit != nil {
		// The caller's body went over this node's limit: whatever the other
		// side made of the cut body, the answer is ours.
		if resp != nil {
			resp.Body.Close()
		}
		return fmt.Errorf("request body: %w", seen.hit)
	}
	if err != nil {
		return &UnreachableError{Target: target, Err: err}
	}
	defer resp.Body.Close()
	copyHeaders(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	if err := copyFlushing(w, resp.Body); err != nil && ctx.Err() == nil {
		f.logger.Warn("forwarded answer cut short", "target", target, "path", r.URL.Path, "err", err)
	}
	return nil
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
