package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Local routes: containers, the agent itself, build contexts, probes.

// proxyTo relays the request to node's API, for a route that must run there.
func (s *server) proxyTo(c *gin.Context, node, what string) {
	defer c.Abort()
	if c.GetHeader(control.HeaderForwarded) != "" {
		abortWith(c, http.StatusNotFound, control.CodeNotFound, fmt.Sprintf("%s is not on node %s", what, s.ctrl.NodeID()))
		return
	}
	if node == s.ctrl.NodeID() {
		abortWith(c, http.StatusNotFound, control.CodeNotFound, fmt.Sprintf("%s should be on this node (%s) but is not", what, node))
		return
	}
	var addr string
	s.ctrl.View(func(st *raftfsm.State) {
		if n, ok := st.Nodes[node]; ok {
			addr = n.API
		}
	})
	if addr == "" {
		abortWith(c, http.StatusServiceUnavailable, control.CodeUnavailable, fmt.Sprintf("node %s (where %s is) has no known API address", node, what))
		return
	}
	if err := s.fwd.forward(c.Writer, c.Request, addr, nil); err != nil {
		s.logger.Warn("proxy to node failed", "node", node, "api", addr, "path", c.Request.URL.Path, "err", err)
		if s.answerLost(c, err, fmt.Sprintf("node %s (%s), where %s is", node, addr, what)) {
			return
		}
		abortWith(c, http.StatusServiceUnavailable, control.CodeUnavailable, fmt.Sprintf("node %s (%s), where %s is, cannot be reached", node, addr, what))
	}
}

// containerNode finds the node of a container in the state ("" if unknown).
func (s *server) containerNode(name string) string {
	var node string
	s.ctrl.View(func(st *raftfsm.State) {
		for _, id := range raftfsm.SortedKeys(st.Instances) {
			if in := st.Instances[id]; in.Container == name {
				node = in.Node
				return
			}
		}
	})
	return node
}

// notLocal sends a container request to the container's node.
func (s *server) notLocal(c *gin.Context, name string) {
	node := s.containerNode(name)
	if node == "" {
		abortWith(c, http.StatusNotFound, control.CodeNotFound, fmt.Sprintf("container %s is not known in the cluster", name))
		return
	}
	s.proxyTo(c, node, "container "+name)
}

func (s *server) containerParam(c *gin.Context) (string, bool) {
	name := c.Param("name")
	if err := validateContainerName(name); err != nil {
		s.fail(c, err)
		return "", false
	}
	return name, true
}

func (s *server) containerHealth(c *gin.Context) {
	name, good := s.containerParam(c)
	if !good {
		return
	}
	q := s.query(c)
	port := q.int("port", 0, 1, 65535)
	since := q.time("since")
	if !q.check() {
		return
	}
	ans, err := s.ctrl.ContainerHealth(c.Request.Context(), name, int(port), since)
	if errors.Is(err, control.ErrNotLocal) {
		s.notLocal(c, name)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	ok(c, ans)
}

// errStreamCapped ends a log stream that reached its byte cap.
var errStreamCapped = errors.New("log stream reached its byte cap")

// streamWriter sends a text stream: the status goes out with the first
// bytes (so an error before them can still be answered properly), every
// write is flushed, and the stream stops at max bytes.
type streamWriter struct {
	c       *gin.Context
	started bool
	n, max  int64
}

func (w *streamWriter) start() {
	if w.started {
		return
	}
	w.started = true
	h := w.c.Writer.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.c.Status(http.StatusOK)
	w.c.Writer.WriteHeaderNow()
}

func (w *streamWriter) Write(p []byte) (int, error) {
	if w.n >= w.max {
		return 0, errStreamCapped
	}
	w.start()
	capped := false
	if int64(len(p)) > w.max-w.n {
		p, capped = p[:w.max-w.n], true
	}
	n, err := w.c.Writer.Write(p)
	w.n += int64(n)
	w.c.Writer.Flush()
	if err != nil {
		return n, err
	}
	if capped {
		return n, errStreamCapped
	}
	return n, nil
}

func (s *server) containerLogs(c *gin.Context) {
	name, good := s.containerParam(c)
	if !good {
		return
	}
	q := s.query(c)
	opts := control.LogOptions{Since: q.time("since"), Tail: int(q.int("tail", 0, 0, 1_000_000)), Follow: q.bool("follow"), MaxBytes: s.opts.Limits.MaxLogBytes}
	if !q.check() {
		return
	}
	w := &streamWriter{c: c, max: opts.MaxBytes}
	ctx := c.Request.Context()
	err := s.ctrl.ContainerLogs(ctx, name, opts, w)
	switch {
	case w.started:
		if errors.Is(err, errStreamCapped) {
			fmt.Fprintf(c.Writer, "\n[dropmesh: the stream stopped at its cap of %d bytes]\n", opts.MaxBytes)
		} else if err != nil && ctx.Err() == nil {
			s.logger.Warn("log stream ended with an error", "container", name, "err", err)
		}
	case errors.Is(err, control.ErrNotLocal):
		s.notLocal(c, name)
	case err != nil && !errors.Is(err, context.Canceled):
		s.fail(c, err)
	default:
		w.start()
	}
}

// nodeOption handles ?node=: true when the request went to that node.
func (s *server) nodeOption(c *gin.Context, what string) bool {
	node := c.Query("node")
	if node == "" || node == s.ctrl.NodeID() {
		return false
	}
	if err := raftfsm.ValidateNodeID(node); err != nil {
		s.fail(c, err)
		return true
	}
	s.proxyTo(c, node, what+" of node "+node)
	return true
}

func (s *server) agentLogs(c *gin.Context) {
	if s.nodeOption(c, "the agent log") {
		return
	}
	q := s.query(c)
	since := q.time("since")
	limit := q.int("limit", 500, 1, 100_000)
	if !q.check() {
		return
	}
	out := s.ctrl.AgentLogs(since, int(limit))
	if out == nil {
		out = []control.LogEntry{}
	}
	ok(c, out)
}

func (s *server) agentStats(c *gin.Context) {
	if s.nodeOption(c, "the stats") {
		return
	}
	st, err := s.ctrl.Stats(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	ok(c, st)
}

func (s *server) probe(c *gin.Context) {
	addr, path := c.Query("addr"), c.Query("path")
	if addr == "" {
		invalid(c, "query parameter addr is required (host:port)")
		return
	}
	if len(addr) > 300 || len(path) > 1024 {
		invalid(c, "query parameters addr or path are too long")
		return
	}
	if err := s.ctrl.ProbeAddress(c.Request.Context(), addr, path); err != nil {
		if !errors.Is(err, raftfsm.ErrInvalid) && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w: %s: %v", errProbeFailed, addr, err)
		}
		s.fail(c, err)
		return
	}
	ok(c, control.ProbeResult{OK: true})
}

// limitSeen remembers whether a body reader hit its size limit, for callers
// that wrap its error without %w.
type limitSeen struct {
	r   io.Reader
	hit error
	n   int64 // bytes read so far
}

func (l *limitSeen) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n += int64(n)
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		l.hit = maxErr
	}
	return n, err
}

func (s *server) uploadContext(c *gin.Context) {
	body := &limitSeen{r: c.Request.Body}
	info, err := s.ctrl.StoreContext(c.Request.Context(), body)
	if body.hit != nil {
		s.fail(c, fmt.Errorf("build context: %w", body.hit))
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusCreated, info)
}

func (s *server) getContext(c *gin.Context) {
	digest := c.Param("digest")
	if err := raftfsm.ValidateContextDigest(digest); err != nil {
		s.fail(c, err)
		return
	}
	rc, size, err := s.ctrl.OpenContext(digest)
	if errors.Is(err, raftfsm.ErrNotFound) {
		var holders []string
		s.ctrl.View(func(st *raftfsm.State) {
			if bc, ok := st.Contexts[digest]; ok {
				holders = slices.Clone(bc.Holders)
			}
		})
		holders = slices.DeleteFunc(holders, func(n string) bool { return n == s.ctrl.NodeID() })
		if len(holders) == 0 {
			s.fail(c, err)
			return
		}
		s.proxyTo(c, holders[0], "build context "+digest)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	defer rc.Close()
	c.Header("Content-Type", "application/x-tar")
	if size > 0 {
		c.Header("Content-Length", strconv.FormatInt(size, 10))
	}
	c.Status(http.StatusOK)
	if _, err := io.Copy(c.Writer, rc); err != nil && c.Request.Context().Err() == nil {
		s.logger.Warn("build context download cut short", "digest", digest, "err", err)
	}
}
