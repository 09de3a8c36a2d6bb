package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Probe errors callers branch on.
var (
	// ErrNoAnswer: the port refused the connection, reset it or did not
	// answer within the timeout.
	ErrNoAnswer = errors.New("no answer")
	// ErrServerError: the HTTP health path answered with a 5xx status.
	ErrServerError = errors.New("server error")
)

// maxProbeBody is how much of a probe's response body is read (and thrown
// away) so the server is not cut off mid-write; the rest is not waited for.
const maxProbeBody = 4 << 10

// ProbeHTTP sends GET path to addr (host:port) over plain HTTP and waits at
// most timeout for the status line. A 5xx status is ErrServerError, no
// answer is ErrNoAnswer; any other status (redirects are not followed) is an
// answer and returns nil. Proxies from the environment are not used: the
// probe must reach the container itself.
func ProbeHTTP(ctx context.Context, addr, path string, timeout time.Duration) error {
	if err := checkProbeArgs(addr, timeout); err != nil {
		return err
	}
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t\r\n#") {
		return fmt.Errorf("%w: health path %q: want an absolute path such as /health", ErrInvalid, path)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := "http://" + addr + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("%w: probe %s: %v", ErrInvalid, url, err)
	}
	req.Header.Set("User-Agent", "dropmesh-health")
	// A fresh transport without keep-alives: a probe leaves no idle
	// connection (nor goroutine) behind and always tests a new connect.
	client := &http.Client{
		Transport: &http.Transport{
			Proxy:             nil,
			DialContext:       (&net.Dialer{Timeout: timeout}).DialContext,
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%w: GET %s: no response within %v", ErrNoAnswer, url, timeout)
		}
		return fmt.Errorf("%w: GET %s: %w", ErrNoAnswer, url, trimURLError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProbeBody))
	if resp.StatusCode >= 500 {
		return fmt.Errorf("%w: GET %s answered %s", ErrServerError, url, resp.Status)
	}
	return nil
}

// ProbeTCP connects to addr (host:port) and closes the connection at once.
// A refused connection or no connection within timeout is ErrNoAnswer.
func ProbeTCP(ctx context.Context, addr string, timeout time.Duration) error {
	if err := checkProbeArgs(addr, timeout); err != nil {
		return err
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("%w: connect %s: %w", ErrNoAnswer, addr, trimOpError(err))
	}
	_ = conn.Close()
	return nil
}

func checkProbeArgs(addr string, timeout time.Duration) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" || strings.ContainsAny(addr, "/?#@ \t\r\n") {
		return fmt.Errorf("%w: probe address %q: want host:port", ErrInvalid, addr)
	}
	if timeout <= 0 {
		return fmt.Errorf("%w: probe timeout %v: must be positive", ErrInvalid, timeout)
	}
	return nil
}

// trimURLError drops the "Get "http://...": " prefix url.Error adds, since
// the caller names the URL already.
func trimURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return trimOpError(inner)
		}
	}
	return err
}

// trimOpError reduces "dial tcp 127.0.0.1:1: connect: connection refused" to
// "connection refused" while keeping the error chain.
func trimOpError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}
