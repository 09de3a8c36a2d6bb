package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// The read path. Every read route (RouteRead) is linearizable unless the
// caller asks otherwise:
//
//   - default (and ?consistent=true, kept for older clients): the leader
//     confirms its leadership with a quorum and names a read index (raft's
//     last index: every acknowledged write is at or below it); the serving
//     node, leader or follower, answers once its replica has applied it. A
//     follower asks the leader over GET /v1/internal/read-index: one round
//     trip, no state shipped.
//   - ?stale=true: the node's local replica, as it is; the answer says how
//     stale it may be (X-Dropmesh-Last-Contact, X-Dropmesh-Known-Leader).
//   - ?index=N (without ?wait): read your writes, on any node: the answer
//     comes once the serving node has applied index N (a write's
//     X-Dropmesh-Index). With ?wait it is a blocking read instead: the
//     answer comes once the state has moved past N, or the wait ends.
//
// No read, stale or not, is served before the node has caught up after it
// started (raftfsm.Store.CatchUp): 503 catching_up with a Retry-After.

// ReadIndexAnswer is the answer of GET /v1/internal/read-index.
type ReadIndexAnswer struct {
	// Index is the leader's read index: wait until it is applied.
	Index uint64 `json:"index"`
	// Leader is the id of the leader that confirmed it.
	Leader string `json:"leader"`
}

var (
	staleParam = Param{Name: "stale", Type: "boolean", Description: "answer from this node's replica as it is, without asking the leader (see X-Dropmesh-Last-Contact)"}
	// catchUpRetry is the Retry-After of a catching_up answer.
	catchUpRetry = time.Second
)

// catchingUp answers 503 catching_up.
func (s *server) catchingUp(c *gin.Context, err error) {
	c.Header("Retry-After", strconv.Itoa(int(catchUpRetry/time.Second)))
	abortWith(c, http.StatusServiceUnavailable, control.CodeCatchingUp, fmt.Sprintf("node %s: %v; retry shortly or ask another node", s.ctrl.NodeID(), err))
}

// read makes a read route's answer linearizable, or stale on request, and
// refuses every read while the node is catching up.
func (s *server) read(c *gin.Context) {
	q := s.query(c)
	stale, consistent := q.bool("stale"), q.bool("consistent")
	if !q.check() {
		return
	}
	if stale && consistent {
		invalid(c, "query parameters stale and consistent exclude each other")
		return
	}
	if err := s.ctrl.CatchUp(); err != nil {
		s.catchingUp(c, err)
		return
	}
	ctx := c.Request.Context()
	if stale {
		contact := s.ctrl.StaleContact(ctx)
		c.Header(control.HeaderKnownLeader, strconv.FormatBool(contact.Leader != ""))
		if contact.Known {
			c.Header(control.HeaderLastContact, strconv.FormatInt(contact.LastContact.Milliseconds(), 10))
		}
		return
	}
	idx, err := s.readIndex(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	wctx, cancel := context.WithTimeout(ctx, s.opts.Limits.ReadWait)
	defer cancel()
	if err := s.ctrl.WaitApplied(wctx, idx); err != nil {
		if ctx.Err() != nil {
			s.fail(c, err)
			return
		}
		s.catchingUp(c, fmt.Errorf("it has not applied the leader's read index %d within %s (it is at %d)", idx, s.opts.Limits.ReadWait, s.stateIndex()))
		return
	}
	c.Header(control.HeaderKnownLeader, "true")
	c.Header(control.HeaderLastContact, "0")
}

// readIndex gets a read index: from this node when it leads, else from
// the leader. Concurrent readers share one confirmation (readBatch).
func (s *server) readIndex(c *gin.Context) (uint64, error) {
	ctx := c.Request.Context()
	if s.ctrl.IsLeader() {
		idx, err := s.reads.leader.do(ctx, s.ctrl.ReadIndex)
		if !errors.Is(err, control.ErrNotLeader) {
			return idx, err
		}
		// It just lost the leadership: ask the new leader.
	}
	return s.reads.follower.do(ctx, s.fetchReadIndex)
}

// errNoLeaderToConfirm: no leader could confirm a linearizable read in time.
var errNoLeaderToConfirm = fmt.Errorf("%w to confirm a linearizable read; retry, or read with ?stale=true", control.ErrNoLeader)

// fetchReadIndex asks the leader for its read index, riding out a leader
// change (up to Limits.LeaderWait).
func (s *server) fetchReadIndex(ctx context.Context) (uint64, error) {
	giveUp := s.now().Add(s.opts.Limits.LeaderWait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(giveUp) {
		giveUp = dl
	}
	var failedID, failedAddr string
	var lastErr error
	for {
		id, addr := s.awaitLeader(ctx, giveUp, failedAddr)
		if addr == "" {
			if ctx.Err() != nil {
				return 0, fmt.Errorf("read index: %w", ctx.Err())
			}
			if failedAddr != "" {
				return 0, fmt.Errorf("%w (the leader %s at %s: %v)", errNoLeaderToConfirm, failedID, failedAddr, lastErr)
			}
			return 0, errNoLeaderToConfirm
		}
		if id == s.ctrl.NodeID() {
			// This node leads now.
			if idx, err := s.ctrl.ReadIndex(ctx); !errors.Is(err, control.ErrNotLeader) {
				return idx, err
			}
		} else if idx, err := s.askReadIndex(ctx, addr); err == nil {
			return idx, nil
		} else {
			lastErr = err
			s.logger.Debug("read index from the leader failed", "leader", id, "api", addr, "err", err)
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("read index: %w", ctx.Err())
		}
		if _, now := s.ctrl.Leader(); now != addr {
			// A new leader is known: ask it at once.
			failedAddr = ""
			continue
		}
		failedID, failedAddr = id, addr
	}
}

// askReadIndex asks the leader at addr for its read index, with the
// cluster's API key (the caller was authenticated here already).
//
// A leader that stops being the leader while the follower waits (it died
// with the connection open) is given up at once, as forwards are.
func (s *server) askReadIndex(ctx context.Context, addr string) (uint64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	answered := make(chan struct{})
	defer close(answered)
	go watchTarget(ctx, cancel, answered, func() bool { _, now := s.ctrl.Leader(); return now == addr })
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL(addr)+readIndexPath, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+s.opts.APIKey)
	req.Header.Set(control.HeaderForwarded, "1")
	if dl, ok := ctx.Deadline(); ok {
		req.Header.Set(control.HeaderTimeout, time.Until(dl).String())
	}
	resp, err := s.opts.HTTPClient.Do(req)
	if err != nil {
		return 0, &UnreachableError{Target: addr, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, fmt.Errorf("read index from %s: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e control.ErrorBody
		_ = json.Unmarshal(body, &e)
		return 0, fmt.Errorf("read index from %s: %d %s: %s", addr, resp.StatusCode, e.Error, e.Message)
	}
	var a ReadIndexAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return 0, fmt.Errorf("read index from %s: decode: %w", addr, err)
	}
	return a.Index, nil
}

// readBatch lets concurrent readers share one read-index confirmation. A
// reader joins the next confirmation to start, never one already under
// way: a confirmation that began after the read began is valid for it
// (it covers every write acknowledged before), an earlier one is not. So
// under load one round trip serves a whole group of readers, and alone a
// reader waits for exactly one.
type readBatch struct {
	// timeout bounds one shared confirmation (no single reader's
	// deadline is everyone's).
	timeout time.Duration

	mu      sync.Mutex
	running bool
	next    *indexCall
}

// indexCall is one shared confirmation.
type indexCall struct {
	done chan struct{}
	idx  uint64
	err  error
}

// readBatches are the server's two batches: confirmations this node makes
// as the leader, and read indexes it asks the leader for.
type readBatches struct{ leader, follower *readBatch }

func newReadBatches(timeout time.Duration) readBatches {
	return readBatches{leader: &readBatch{timeout: timeout}, follower: &readBatch{timeout: timeout}}
}

// do joins the next confirmation (starting it when none runs) and returns
// its result, or ctx's error when the caller stops waiting first.
func (b *readBatch) do(ctx context.Context, fetch func(context.Context) (uint64, error)) (uint64, error) {
	b.mu.Lock()
	if b.next == nil {
		b.next = &indexCall{done: make(chan struct{})}
	}
	call := b.next
	if !b.running {
		b.running, b.next = true, nil
		go b.run(call, fetch)
	}
	b.mu.Unlock()
	select {
	case <-call.done:
		return call.idx, call.err
	case <-ctx.Done():
		return 0, fmt.Errorf("read index: %w", ctx.Err())
	}
}

// run makes confirmations while readers are waiting for one.
func (b *readBatch) run(call *indexCall, fetch func(context.Context) (uint64, error)) {
	for call != nil {
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		call.idx, call.err = fetch(ctx)
		cancel()
		close(call.done)
		b.mu.Lock()
		call, b.next = b.next, nil
		if call == nil {
			b.running = false
		}
		b.mu.Unlock()
	}
}

const readIndexPath = "/v1/internal/read-index"

// readIndexRoute is GET /v1/internal/read-index: the leader confirms its
// leadership and names the index a linearizable read waits for. An
// internal route: followers call it on behalf of their readers.
func (s *server) readIndexRoute() Route {
	return Route{Method: http.MethodGet, Path: readIndexPath, Summary: "The leader's read index for a linearizable read on a follower (internal)",
		Kind: RouteWrite, Access: AccessNode, Role: raftfsm.RoleAdmin, Handler: s.readIndexHandler, Response: ReadIndexAnswer{}}
}

func (s *server) readIndexHandler(c *gin.Context) {
	idx, err := s.ctrl.ReadIndex(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	ok(c, ReadIndexAnswer{Index: idx, Leader: s.ctrl.NodeID()})
}

// stateIndex is the raft index of the local replica.
func (s *server) stateIndex() uint64 {
	var idx uint64
	s.ctrl.View(func(st *raftfsm.State) { idx = st.Index })
	return idx
}

// block handles ?index= and ?wait=. With ?index=N alone it answers once
// this node has applied index N (read your writes); with ?wait too it is a
// blocking read: it answers once the state's index is above N or the wait
// ends. It always sets X-Dropmesh-Index.
func (s *server) block(c *gin.Context) {
	rawIdx, rawWait := c.Query("index"), c.Query("wait")
	if rawIdx == "" {
		if rawWait != "" {
			invalid(c, "query parameter wait needs index (the X-Dropmesh-Index of the previous answer)")
			return
		}
		c.Header(control.HeaderIndex, strconv.FormatUint(s.stateIndex(), 10))
		return
	}
	idx, err := strconv.ParseUint(rawIdx, 10, 64)
	if err != nil {
		invalid(c, fmt.Sprintf("query parameter index=%q: want a raft index (a non-negative integer)", rawIdx))
		return
	}
	ctx := c.Request.Context()
	if rawWait == "" {
		wctx, cancel := context.WithTimeout(ctx, s.opts.Limits.ReadWait)
		defer cancel()
		if err := s.ctrl.WaitApplied(wctx, idx); err != nil {
			if ctx.Err() == nil {
				c.Header("Retry-After", "1")
				abortWith(c, http.StatusServiceUnavailable, control.CodeCatchingUp, fmt.Sprintf("node %s has not applied index %d within %s (it is at %d); retry, or ask another node", s.ctrl.NodeID(), idx, s.opts.Limits.ReadWait, s.stateIndex()))
			} else {
				s.fail(c, err)
			}
			return
		}
		c.Header(control.HeaderIndex, strconv.FormatUint(s.stateIndex(), 10))
		return
	}
	wait, err := time.ParseDuration(rawWait)
	if err != nil || wait <= 0 || wait > s.opts.Limits.MaxWait {
		invalid(c, fmt.Sprintf("query parameter wait=%q: want a duration from 1ms to %s, such as 30s", rawWait, s.opts.Limits.MaxWait))
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		changed := s.ctrl.Changed()
		cur := s.stateIndex()
		if cur > idx {
			break
		}
		select {
		case <-changed:
			continue
		case <-timer.C:
		case <-ctx.Done():
			// The caller left or its deadline passed: answer what there is;
			// a gone client never reads it.
		}
		break
	}
	c.Header(control.HeaderIndex, strconv.FormatUint(s.stateIndex(), 10))
}

// indexWriter stamps a write's answer with the raft index of the leader's
// state when the answer starts (X-Dropmesh-Index, 204s included): the
// write, applied by then, is at or below it, so ?index= with it reads the
// write on any node.
type indexWriter struct {
	gin.ResponseWriter
	s       *server
	stamped bool
}

func (w *indexWriter) stamp() {
	if w.stamped {
		return
	}
	w.stamped = true
	if w.Header().Get(control.HeaderIndex) == "" {
		w.Header().Set(control.HeaderIndex, strconv.FormatUint(w.s.stateIndex(), 10))
	}
}

func (w *indexWriter) WriteHeaderNow() { w.stamp(); w.ResponseWriter.WriteHeaderNow() }

func (w *indexWriter) Write(b []byte) (int, error) { w.stamp(); return w.ResponseWriter.Write(b) }

func (w *indexWriter) WriteString(str string) (int, error) {
	w.stamp()
	return w.ResponseWriter.WriteString(str)
}

// stampIndex makes the answer of a write run on this node carry
// X-Dropmesh-Index.
func (s *server) stampIndex(c *gin.Context) {
	c.Writer = &indexWriter{ResponseWriter: c.Writer, s: s}
}
