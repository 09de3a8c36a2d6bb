// Package contracttest checks the fake cloud against the providers' own
// OpenAPI documents. A Recorder wraps the fake's handler in tests and keeps
// every request and answer; a Checker routes each recorded answer to its
// operation in DigitalOcean's or Cloudflare's bundled spec
// (cloudops/testdata/openapi, made by cloudops/internal/specbundle) and
// validates it with kin-openapi: status, documented headers and body schema.
// Violations the providers' live APIs are known to share with the fake are
// listed, with evidence, in one allow-list file (allowlist.yaml there).
//
// Main runs a package's tests and then the check, so every test that starts
// the fake through a recorder is also a contract test. It is a test kit:
// only _test.go files import it.
package contracttest

import (
	"bytes"
	"io"
	"net/http"
	"sync"
)

// Exchange is one request the fake served and its answer.
type Exchange struct {
	Method     string
	Path       string // URL path
	RawQuery   string
	ReqHeader  http.Header
	ReqBody    []byte
	Status     int
	Header     http.Header
	Body       []byte
	Unfinished bool // the handler wrote nothing (the client gave up first)
}

// Recorder keeps every exchange served through Wrap. It is safe for
// concurrent use; the zero value is ready.
type Recorder struct {
	mu sync.Mutex
	ex []Exchange
}

// maxBody bounds what is kept of one body; the fake's answers are far
// smaller.
const maxBody = 4 << 20

// Wrap returns h recording into r.
func (r *Recorder) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var reqBody []byte
		if req.Body != nil && req.Body != http.NoBody {
			b, err := io.ReadAll(io.LimitReader(req.Body, maxBody))
			if err != nil {
				return // the client is gone before its request arrived
			}
			reqBody = b
			req.Body = io.NopCloser(bytes.NewReader(b))
		}
		cw := &captureWriter{ResponseWriter: w}
		h.ServeHTTP(cw, req)
		ex := Exchange{Method: req.Method, Path: req.URL.Path, RawQuery: req.URL.RawQuery, ReqHeader: req.Header.Clone(), ReqBody: reqBody,
			Status: cw.status, Header: w.Header().Clone(), Body: cw.body.Bytes(), Unfinished: cw.status == 0}
		r.mu.Lock()
		r.ex = append(r.ex, ex)
		r.mu.Unlock()
	})
}

// Exchanges returns a copy of what was recorded so far.
func (r *Recorder) Exchanges() []Exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Exchange(nil), r.ex...)
}

// captureWriter passes an answer through and keeps a copy of it.
type captureWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if c.body.Len() < maxBody {
		c.body.Write(b[:min(len(b), maxBody-c.body.Len())])
	}
	return c.ResponseWriter.Write(b)
}
