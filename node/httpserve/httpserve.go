// Package httpserve builds the agent's HTTP servers with read, write and
// idle timeouts that long streams survive.
//
// A server-wide ReadTimeout or WriteTimeout would cut off what the agent
// serves on purpose for a long time: a 512 MiB build context upload, a
// followed container log, a blocking read waiting ten minutes for a change,
// the UI's server-sent events. So the timeouts here bound each operation
// instead, as nginx's client_body_timeout and send_timeout do: a client
// that stops sending its body, or stops reading the answer, for longer
// than the timeout is cut off, while one that keeps the data moving (or a
// stream that is merely quiet between writes) is not. The headers are
// bounded as a whole (slowloris) and a keep-alive connection between
// requests by the idle timeout.
package httpserve

import (
	"bufio"
	"io"
	"log"
	"net"
	"net/http"
	"time"
)

// Timeouts are a server's timeouts; DefaultTimeouts gives every one.
type Timeouts struct {
	// ReadHeader bounds reading a request's line and headers.
	ReadHeader time.Duration
	// Read bounds each read of a request body: longer lets slower links
	// upload, shorter frees a stalled upload's goroutine and disk sooner.
	Read time.Duration
	// Write bounds each write of an answer to a client that does not read
	// it: longer tolerates slower readers, shorter frees the stream sooner.
	Write time.Duration
	// Idle bounds a keep-alive connection between two requests.
	Idle time.Duration
}

// DefaultTimeouts are the agent's timeouts: nginx's defaults for reads and
// writes (60 s), 10 s for headers and 2 minutes idle.
func DefaultTimeouts() Timeouts {
	return Timeouts{ReadHeader: 10 * time.Second, Read: 60 * time.Second, Write: 60 * time.Second, Idle: 2 * time.Minute}
}

// withDefaults fills zero fields.
func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts()
	for _, f := range []struct{ v, def *time.Duration }{{&t.ReadHeader, &d.ReadHeader}, {&t.Read, &d.Read}, {&t.Write, &d.Write}, {&t.Idle, &d.Idle}} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return t
}

// Server returns a server of h with the timeouts t (zero fields take the
// defaults); errorLog may be nil.
func Server(h http.Handler, t Timeouts, errorLog *log.Logger) *http.Server {
	t = t.withDefaults()
	return &http.Server{Handler: Handler(h, t), ReadHeaderTimeout: t.ReadHeader, IdleTimeout: t.Idle, ErrorLog: errorLog}
}

// Handler wraps h so that each read of a request body and each write of its
// answer has its own deadline (t.Read, t.Write).
func Handler(h http.Handler, t Timeouts) http.Handler {
	t = t.withDefaults()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		dw := &writer{ResponseWriter: w, rc: rc, d: t.Write}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &body{ReadCloser: r.Body, rc: rc, d: t.Read}
		}
		h.ServeHTTP(dw, r)
		if !dw.hijacked {
			// The server flushes what is buffered once the handler returns.
			_ = rc.SetWriteDeadline(time.Now().Add(t.Write))
		}
	})
}

// body sets a read deadline before each read and clears it at the end of
// the body: the server then reads the connection in the background to see
// the client leave, and a deadline there would cancel a long answer.
type body struct {
	io.ReadCloser
	rc *http.ResponseController
	d  time.Duration
}

func (b *body) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(b.d))
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// writer sets a write deadline before each write and flush.
type writer struct {
	http.ResponseWriter
	rc       *http.ResponseController
	d        time.Duration
	hijacked bool
}

func (w *writer) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return w.ResponseWriter.Write(p)
}

// Flush sends what is buffered (server-sent events and log streams need it).
func (w *writer) Flush() {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	_ = w.rc.Flush()
}

// Hijack hands the connection over without deadlines: its new owner (a
// websocket proxy) sets its own.
func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := w.rc.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	_ = c.SetDeadline(time.Time{})
	return c, rw, nil
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
