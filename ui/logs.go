package ui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// maxLogLine is the longest line sent as is; longer lines are cut.
const maxLogLine = 8 << 10

// sseLines turns a byte stream into server-sent events, one "data:" line
// per log line, one event per Write (so a burst costs one flush). Partial
// lines wait for their end. It is safe for a writer and a heartbeat at once.
type sseLines struct {
	mu      sync.Mutex
	w       io.Writer
	flusher http.Flusher
	partial []byte
	lines   int
}

func (l *sseLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	var out bytes.Buffer
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		writeDataLine(&out, l.partial[:i])
		l.partial = l.partial[i+1:]
	}
	if len(l.partial) > maxLogLine {
		writeDataLine(&out, l.partial)
		l.partial = l.partial[:0]
	}
	if out.Len() == 0 {
		return len(p), nil
	}
	out.WriteString("\n")
	if _, err := l.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	l.flusher.Flush()
	return len(p), nil
}

func writeDataLine(out *bytes.Buffer, line []byte) {
	line = bytes.TrimRight(line, "\r")
	if len(line) > maxLogLine {
		line = append(line[:maxLogLine:maxLogLine], "…"...)
	}
	// A log line never contains '\n' here; '\r' alone would end an SSE line.
	out.WriteString("data: ")
	out.Write(bytes.ReplaceAll(line, []byte{'\r'}, []byte{' '}))
	out.WriteString("\n")
}

// event sends a named event (end, error) after flushing a partial line.
func (l *sseLines) event(name, data string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out bytes.Buffer
	if len(l.partial) > 0 {
		writeDataLine(&out, l.partial)
		out.WriteString("\n")
		l.partial = nil
	}
	fmt.Fprintf(&out, "event: %s\ndata: %s\n\n", name, strings.ReplaceAll(data, "\n", " "))
	_, _ = l.w.Write(out.Bytes())
	l.flusher.Flush()
}

func (l *sseLines) ping() {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, ": ping\n\n")
	l.flusher.Flush()
}

// serviceLogs streams one container's log of a service as server-sent
// events: ?container=NAME (one of the service's instances), &follow=1 to keep
// streaming, &tail=N old lines first.
func (s *server) serviceLogs(c *gin.Context) {
	key := serviceKeyOf(c)
	name := c.Query("container")
	found := false
	s.node.View(func(st *raftfsm.State) {
		for _, in := range st.ServiceInstances(key) {
			if name != "" && in.Container == name {
				found = true
			}
		}
	})
	if !found {
		s.renderError(c, http.StatusNotFound, "Not found", fmt.Sprintf("%s has no container %q.", key, name))
		return
	}
	tail := s.cfg.LogTail
	if v, err := strconv.Atoi(c.Query("tail")); err == nil && v >= 0 && v <= 10000 {
		tail = v
	}
	follow := c.Query("follow") == "1"
	flusher, ok := startStream(c)
	if !ok {
		return
	}
	out := &sseLines{w: c.Writer, flusher: flusher}
	fmt.Fprint(c.Writer, "retry: 5000\n\n")
	flusher.Flush()

	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.StreamLifetime)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the heartbeat; stopped by cancel before the handler returns
		defer wg.Done()
		t := time.NewTicker(s.cfg.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				out.ping()
			}
		}
	}()
	err := s.node.ContainerLogs(ctx, name, control.LogOptions{Tail: tail, Follow: follow, MaxBytes: s.cfg.MaxLogBytes}, out)
	cancel()
	wg.Wait()
	switch {
	case c.Request.Context().Err() != nil:
		// The browser went away.
	case err == nil || errors.Is(err, context.DeadlineExceeded):
		out.event("end", "end of log")
	case errors.Is(err, control.ErrNotLocal):
		out.event("failure", "This node cannot reach that container's log: "+userMessage(err))
	default:
		s.logger.Warn("ui log stream failed", "container", name, "err", err)
		out.event("failure", userMessage(err))
	}
}
