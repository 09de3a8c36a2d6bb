package ui

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// startStream sets a response up as a server-sent event stream.
func startStream(c *gin.Context) (http.Flusher, bool) {
	f, ok := c.Writer.(http.Flusher)
	if !ok {
		c.String(http.StatusInternalServerError, "streaming unsupported")
		return nil, false
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	return f, true
}

// events streams "change" whenever the state changes, at most one event per
// EventInterval (changes in between are coalesced), a heartbeat comment when
// idle, and "leader" when this node stops leading (the page then reloads and
// follows the redirect to the new leader). The stream ends after
// StreamLifetime; the browser reconnects at once and the session is checked
// again.
func (s *server) events(c *gin.Context) {
	flusher, ok := startStream(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	w := c.Writer
	changed := s.node.Changed()
	index := s.stateIndex()
	fmt.Fprintf(w, "retry: 2000\nevent: hello\ndata: %d\n\n", index)
	flusher.Flush()

	heartbeat := time.NewTicker(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	lifetime := time.NewTimer(s.cfg.StreamLifetime)
	defer lifetime.Stop()
	leaderCheck := time.NewTicker(time.Second)
	defer leaderCheck.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-lifetime.C:
			return
		case <-heartbeat.C:
			fmt.Fprint(w, ": ping\n\n")
			flusher.Flush()
		case <-leaderCheck.C:
			if !s.node.IsLeader() {
				fmt.Fprint(w, "event: leader\ndata: moved\n\n")
				flusher.Flush()
				return
			}
		case <-changed:
			// Coalesce: wait out the rest of the interval, then take the
			// channel again before reading, so no change is missed.
			if wait := s.cfg.EventInterval - time.Since(last); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
			changed = s.node.Changed()
			if idx := s.stateIndex(); idx != index {
				index = idx
				fmt.Fprintf(w, "event: change\ndata: %d\n\n", index)
				flusher.Flush()
				last = time.Now()
			}
		}
	}
}

// stateIndex is the raft index the local replica reflects.
func (s *server) stateIndex() uint64 {
	var idx uint64
	s.node.View(func(st *raftfsm.State) { idx = st.Index })
	return idx
}
