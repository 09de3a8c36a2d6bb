package httpserve

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

const tick = 200 * time.Millisecond

// serve runs h behind Server on 127.0.0.1 with short timeouts.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := Server(h, Timeouts{ReadHeader: tick, Read: tick, Write: tick, Idle: tick}, nil)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// within waits for a value on ch or fails after d.
func within[T any](t *testing.T, d time.Duration, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s: nothing after %s", what, d)
	}
	var zero T
	return zero
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestStalledBodyIsCutOff(t *testing.T) {
	got := make(chan error, 1)
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		got <- err
	}))
	c := dial(t, addr)
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
	if err := within(t, 10*time.Second, "the stalled upload", got); !isTimeout(err) {
		t.Fatalf("reading a stalled body: %v, want a timeout", err)
	}
}

func TestFlowingBodyTakesAsLongAsItNeeds(t *testing.T) {
	got := make(chan string, 1)
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(r.Body)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(data)
	}))
	c := dial(t, addr)
	const n = 10 // 10 pieces, tick/4 apart: 2.5 ticks in all, each gap well inside one
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", n)
	pace := time.NewTicker(tick / 4)
	defer pace.Stop()
	for range n {
		<-pace.C
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if body := within(t, 10*time.Second, "the paced upload", got); body != strings.Repeat("x", n) {
		t.Fatalf("body %q", body)
	}
}

func TestClientThatStopsReadingIsCutOff(t *testing.T) {
	got := make(chan error, 1)
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 1<<20)
		for range 1024 {
			if _, err := w.Write(chunk); err != nil {
				got <- err
				return
			}
		}
		got <- nil
	}))
	c := dial(t, addr)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	// Read nothing: the socket buffers fill and the server's write blocks.
	if err := within(t, 20*time.Second, "the write to a reader that stopped", got); err == nil {
		t.Fatal("1 GiB written to a client that reads nothing")
	}
}

// TestQuietStreamsSurvive: an answer that starts after several timeouts
// (a blocking read), a stream quiet between flushes (events, a followed
// log) and a request whose body was read all reach the client, and the
// request's context is not cancelled by a deadline.
func TestQuietStreamsSurvive(t *testing.T) {
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f, ok := w.(http.Flusher)
		if !ok {
			http.Error(w, "no flusher", http.StatusInternalServerError)
			return
		}
		for i := range 3 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(2 * tick):
			}
			fmt.Fprintf(w, "event %d\n", i)
			f.Flush()
		}
	}))
	resp, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || string(data) != "event 0\nevent 1\nevent 2\n" {
		t.Fatalf("status %d, body %q, err %v", resp.StatusCode, data, err)
	}
}

func TestIdleConnectionIsClosed(t *testing.T) {
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	c := dial(t, addr)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("an idle keep-alive connection: %v, want it closed by the server", err)
	}
}

func TestSlowHeadersAreCutOff(t *testing.T) {
	addr := serve(t, http.NotFoundHandler())
	c := dial(t, addr)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n") // never ends the headers
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); isTimeout(err) {
		t.Fatalf("the server kept a connection with unfinished headers: %v", err)
	}
}

func TestHijackedConnectionHasNoDeadline(t *testing.T) {
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer conn.Close()
		fmt.Fprint(rw, "HTTP/1.1 101 Switching Protocols\r\n\r\n")
		_ = rw.Flush()
		<-time.After(3 * tick)
		fmt.Fprint(rw, "late\n")
		_ = rw.Flush()
		line, _ := rw.ReadString('\n') // long after the read timeout
		fmt.Fprint(rw, "echo "+line)
		_ = rw.Flush()
	}))
	c := dial(t, addr)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	var lines []string
	for len(lines) < 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", lines, err)
		}
		lines = append(lines, line)
		if line == "late\n" {
			<-time.After(2 * tick)
			fmt.Fprint(c, "ping\n")
		}
	}
	if lines[2] != "late\n" || !strings.Contains(strings.Join(lines, ""), "101") {
		t.Fatalf("lines %q", lines)
	}
	if line, err := br.ReadString('\n'); err != nil || line != "echo ping\n" {
		t.Fatalf("echo: %q %v", line, err)
	}
}
