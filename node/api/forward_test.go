package api

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/api/apitest"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// tap records what a handler received and wrote, byte for byte.
type tap struct {
	next http.Handler

	mu      sync.Mutex
	headers []http.Header
	bodies  [][]byte
}

func (tp *tap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	tp.next.ServeHTTP(rec, r)
	tp.mu.Lock()
	tp.headers = append(tp.headers, r.Header.Clone())
	tp.bodies = append(tp.bodies, rec.Body.Bytes())
	tp.mu.Unlock()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

func (tp *tap) last() (http.Header, []byte) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if len(tp.headers) == 0 {
		return nil, nil
	}
	return tp.headers[len(tp.headers)-1], tp.bodies[len(tp.bodies)-1]
}

// pair is a leader and a follower API, each over its own fake.
type pair struct {
	leader, follower       *apitest.Fake
	leaderSrv, followerSrv *httptest.Server
	leaderTap              *tap
}

func newPair(t *testing.T) *pair { return newPairWith(t, nil) }

// newPairWith is newPair with the follower's options changed by mod.
func newPairWith(t *testing.T, mod func(o *Options)) *pair {
	t.Helper()
	p := &pair{leader: apitest.NewFake("node-1"), follower: apitest.NewFake("node-2")}
	p.leaderTap = &tap{next: newHandler(t, p.leader, nil)}
	p.leaderSrv = newTLSServer(t, p.leaderTap, "node-1")
	p.follower.SetLeader(false, "node-1", hostPort(p.leaderSrv))
	p.followerSrv = newTestServer(t, p.follower, mod)
	return p
}

func TestWriteOnFollowerLandsOnLeaderUnchanged(t *testing.T) {
	p := newPair(t)
	followerBefore := p.follower.StateJSON()

	req, _ := http.NewRequest(http.MethodPost, p.followerSrv.URL+"/v1/services", strings.NewReader(webSpec))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/yaml")
	req.Header.Set(control.HeaderTimeout, "20s")
	resp, err := cli().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var res raftfsm.DeployResult
	expect(t, resp, body, http.StatusAccepted, &res)

	seen, leaderBody := p.leaderTap.last()
	if seen == nil {
		t.Fatal("the leader got nothing")
	}
	if !bytes.Equal(body, leaderBody) {
		t.Fatalf("answer through the follower differs from the leader's:\n%s\n%s", body, leaderBody)
	}
	if got := seen.Get("Authorization"); got != "Bearer "+testKey {
		t.Fatalf("leader saw Authorization %q", got)
	}
	if seen.Get(control.HeaderForwarded) != "1" || seen.Get("Content-Type") != "application/yaml" {
		t.Fatalf("leader saw headers %v", seen)
	}
	if d, err := time.ParseDuration(seen.Get(control.HeaderTimeout)); err != nil || d <= 0 || d > 20*time.Second {
		t.Fatalf("leader saw %s %q, want the rest of 20s", control.HeaderTimeout, seen.Get(control.HeaderTimeout))
	}
	if resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	var found bool
	p.leader.View(func(s *raftfsm.State) { _, found = s.Services[res.Service] })
	if !found {
		t.Fatal("the leader's state lacks the service")
	}
	if p.follower.StateJSON() != followerBefore || p.follower.CallCount("Deploy") != 0 {
		t.Fatal("the follower wrote something itself")
	}

	// An error answer of the leader comes back as it is too.
	resp2, body2 := call(t, p.followerSrv, http.MethodPost, "/v1/services", webSpec+"colour: red\n", "")
	_, leaderBody = p.leaderTap.last()
	expect(t, resp2, body2, http.StatusBadRequest, nil)
	if !bytes.Equal(body2, leaderBody) {
		t.Fatalf("error answer differs: %s vs %s", body2, leaderBody)
	}
}

func TestForwardedWriteOnANonLeaderIsRefused(t *testing.T) {
	p := newPair(t)
	before := p.follower.StateJSON()
	req, _ := http.NewRequest(http.MethodDelete, p.followerSrv.URL+"/v1/users/admin", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set(control.HeaderForwarded, "1")
	resp, err := cli().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	expect(t, resp, body, http.StatusServiceUnavailable, nil)
	if e := errorOf(t, body); e.Error != control.CodeNotLeader || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("answer %+v, Retry-After %q", e, resp.Header.Get("Retry-After"))
	}
	if _, b := p.leaderTap.last(); b != nil {
		t.Fatal("a forwarded request was forwarded again")
	}
	if p.follower.StateJSON() != before {
		t.Fatal("state changed")
	}
}

func TestLeaderDownMeansNoLeaderAndNoHalfWrite(t *testing.T) {
	p := newPairWith(t, func(o *Options) { o.Limits.LeaderWait = 300 * time.Millisecond })
	leaderBefore, followerBefore := p.leader.StateJSON(), p.follower.StateJSON()
	p.leaderSrv.Close()
	resp, body := call(t, p.followerSrv, http.MethodPost, "/v1/services", webSpec, "")
	expect(t, resp, body, http.StatusServiceUnavailable, nil)
	if e := errorOf(t, body); e.Error != control.CodeNoLeader || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("answer %+v, Retry-After %q", e, resp.Header.Get("Retry-After"))
	}
	if p.follower.StateJSON() != followerBefore || p.leader.StateJSON() != leaderBefore {
		t.Fatal("a write whose leader was down changed a state")
	}

	// No leader known at all.
	p.follower.SetLeader(false, "", "")
	resp, body = call(t, p.followerSrv, http.MethodDelete, "/v1/services/default/shop/prod/web", nil, "")
	expect(t, resp, body, http.StatusServiceUnavailable, nil)
	if e := errorOf(t, body); e.Error != control.CodeNoLeader {
		t.Fatalf("answer %+v", e)
	}
	// A linearizable read needs a leader; a stale one answers from the
	// local replica and says there is none.
	resp, body = call(t, p.followerSrv, http.MethodGet, "/v1/nodes", nil, "")
	expect(t, resp, body, http.StatusServiceUnavailable, nil)
	if e := errorOf(t, body); e.Error != control.CodeNoLeader {
		t.Fatalf("answer %+v", e)
	}
	resp, body = call(t, p.followerSrv, http.MethodGet, "/v1/nodes?stale=true", nil, "")
	expect(t, resp, body, http.StatusOK, nil)
	if resp.Header.Get(control.HeaderKnownLeader) != "false" {
		t.Fatalf("%s %q on a follower that knows no leader", control.HeaderKnownLeader, resp.Header.Get(control.HeaderKnownLeader))
	}
	// The node's own view of the cluster needs no leader.
	resp, body = call(t, p.followerSrv, http.MethodGet, "/v1/cluster", nil, "")
	expect(t, resp, body, http.StatusOK, nil)
}

// A read on a follower is linearizable by default: it asks the leader for
// its read index and answers once its own replica has applied it.
func TestDefaultReadOnFollowerWaitsForTheLeadersIndex(t *testing.T) {
	p := newPairWith(t, func(o *Options) { o.Limits.ReadWait = 300 * time.Millisecond })
	deploy := func(f *apitest.Fake) {
		t.Helper()
		if _, err := f.Deploy(t.Context(), controlDeploy(t, webSpec)); err != nil {
			t.Fatal(err)
		}
	}
	deploy(p.leader)
	var services []raftfsm.Service
	// Stale: the follower's replica as it is, with how stale it may be.
	p.follower.SetContact(&raftfsm.Contact{Leader: "node-1", LastContact: 1500 * time.Millisecond, Known: true})
	resp, body := call(t, p.followerSrv, http.MethodGet, "/v1/services?stale=true", nil, "")
	expect(t, resp, body, http.StatusOK, &services)
	if len(services) != 0 || resp.Header.Get(control.HeaderLastContact) != "1500" || resp.Header.Get(control.HeaderKnownLeader) != "true" {
		t.Fatalf("stale read: %d services, last contact %q, known leader %q", len(services), resp.Header.Get(control.HeaderLastContact), resp.Header.Get(control.HeaderKnownLeader))
	}
	// Default: the replica has not applied the leader's index in time.
	resp, body = call(t, p.followerSrv, http.MethodGet, "/v1/services", nil, "")
	expect(t, resp, body, http.StatusServiceUnavailable, nil)
	if e := errorOf(t, body); e.Error != control.CodeCatchingUp || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("lagging follower: %+v, Retry-After %q", e, resp.Header.Get("Retry-After"))
	}
	// Once it applies it (replication, here by hand), the read answers.
	for _, q := range []string{"", "?consistent=true"} {
		done := make(chan struct{})
		var resp *http.Response
		var body []byte
		go func() {
			defer close(done)
			resp, body = call(t, p.followerSrv, http.MethodGet, "/v1/services"+q, nil, "")
		}()
		if q == "" {
			p.follower.ReplicateFrom(p.leader)
		}
		<-done
		expect(t, resp, body, http.StatusOK, &services)
		if len(services) != 1 || resp.Header.Get(control.HeaderLastContact) != "0" {
			t.Fatalf("read %q: %d services, last contact %q", q, len(services), resp.Header.Get(control.HeaderLastContact))
		}
		if resp.Header.Get(control.HeaderIndex) != itoa(p.leader.Index()) {
			t.Fatalf("index %s, leader at %d", resp.Header.Get(control.HeaderIndex), p.leader.Index())
		}
	}
	resp, body = call(t, p.followerSrv, http.MethodGet, "/v1/services?stale=true&consistent=true", nil, "")
	expect(t, resp, body, http.StatusBadRequest, nil)
}

// No read, stale or not, is served while the node catches up.
func TestCatchingUpNodeServesNoRead(t *testing.T) {
	fake := apitest.NewFake("node-1")
	fake.SetCatchingUp(fmt.Errorf("%w: it has applied 3 of at least 90 entries", raftfsm.ErrCatchingUp))
	srv := newTestServer(t, fake, nil)
	for _, q := range []string{"", "?stale=true", "?consistent=true"} {
		resp, body := call(t, srv, http.MethodGet, "/v1/services"+q, nil, "")
		expect(t, resp, body, http.StatusServiceUnavailable, nil)
		if e := errorOf(t, body); e.Error != control.CodeCatchingUp || !strings.Contains(e.Message, "catching up") || resp.Header.Get("Retry-After") != "1" {
			t.Fatalf("read %q while catching up: %+v, Retry-After %q", q, e, resp.Header.Get("Retry-After"))
		}
	}
	fake.SetCatchingUp(nil)
	resp, body := call(t, srv, http.MethodGet, "/v1/services", nil, "")
	expect(t, resp, body, http.StatusOK, nil)
}

// Every write answers with its index, 204s included, and ?index= with it
// reads the write on a node that applies it later.
func TestWritesAnswerTheirIndexAndIndexReadsWaitForIt(t *testing.T) {
	p := newPairWith(t, func(o *Options) { o.Limits.ReadWait = 300 * time.Millisecond })
	resp, body := call(t, p.followerSrv, http.MethodPatch, "/v1/settings", map[string]any{"ui_host": "ui.example.com"}, "")
	expect(t, resp, body, http.StatusNoContent, nil)
	if resp.Header.Get(control.HeaderIndex) != itoa(p.leader.Index()) {
		t.Fatalf("204 through the follower: index %q, leader at %d", resp.Header.Get(control.HeaderIndex), p.leader.Index())
	}
	resp, body = call(t, p.followerSrv, http.MethodPost, "/v1/services", webSpec, "")
	expect(t, resp, body, http.StatusAccepted, nil)
	idx := resp.Header.Get(control.HeaderIndex)
	if idx != itoa(p.leader.Index()) {
		t.Fatalf("deploy: index %q, leader at %d", idx, p.leader.Index())
	}
	// The follower has applied neither: a stale read at that index waits,
	// then says it is behind.
	resp, body = call(t, p.followerSrv, http.MethodGet, "/v1/services?stale=true&index="+idx, nil, "")
	expect(t, resp, body, http.StatusServiceUnavailable, nil)
	if e := errorOf(t, body); e.Error != control.CodeCatchingUp {
		t.Fatalf("index read on a lagging node: %+v", e)
	}
	done := make(chan struct{})
	var services []raftfsm.Service
	go func() {
		defer close(done)
		resp, body = call(t, p.followerSrv, http.MethodGet, "/v1/services?stale=true&index="+idx, nil, "")
	}()
	p.follower.ReplicateFrom(p.leader)
	<-done
	expect(t, resp, body, http.StatusOK, &services)
	if len(services) != 1 {
		t.Fatalf("index read gave %d services", len(services))
	}
}

func TestOversizedBodyThroughFollower(t *testing.T) {
	p := newPair(t)
	leaderBefore, followerBefore := p.leader.StateJSON(), p.follower.StateJSON()
	// No Content-Length: the limit trips while the body is being forwarded.
	// The excess is small enough for the server to drain, so the client
	// reads the answer instead of a reset.
	body := io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("x"), DefaultMaxBodyBytes+64<<10)))
	req, _ := http.NewRequest(http.MethodPost, p.followerSrv.URL+"/v1/services", body)
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := cli().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || errorOf(t, answer).Error != control.CodeTooLarge {
		t.Fatalf("status %d: %s", resp.StatusCode, answer)
	}
	if p.leader.StateJSON() != leaderBefore || p.follower.StateJSON() != followerBefore {
		t.Fatal("an oversized write changed a state")
	}
	if _, leaderAnswer := p.leaderTap.last(); bytes.Contains(leaderAnswer, []byte(control.CodeInternal)) {
		t.Fatalf("the leader answered the cut body with %s", leaderAnswer)
	}
}

func TestCopyHeadersDropsHopByHop(t *testing.T) {
	src := http.Header{"Connection": {"close, X-Private"}, "X-Private": {"1"}, "Keep-Alive": {"x"}, "Transfer-Encoding": {"chunked"},
		"Content-Type": {"text/plain"}, "Authorization": {"Bearer k"}}
	dst := http.Header{}
	copyHeaders(dst, src)
	for _, h := range []string{"Connection", "X-Private", "Keep-Alive", "Transfer-Encoding"} {
		if dst.Get(h) != "" {
			t.Errorf("%s passed on", h)
		}
	}
	if dst.Get("Content-Type") != "text/plain" || dst.Get("Authorization") != "Bearer k" {
		t.Fatalf("end-to-end headers lost: %v", dst)
	}
	if baseURL("10.0.0.2:9999") != "https://10.0.0.2:9999" || baseURL("https://a.example:1/") != "https://a.example:1" {
		t.Fatal("baseURL")
	}
}

// movingLeader is a follower whose idea of the leader the test moves: the
// first n answers of Leader come from the embedded Fake, the rest name next.
type movingLeader struct {
	*apitest.Fake
	mu      sync.Mutex
	calls   int
	n       int
	nextID  string
	nextAPI string
}

func (m *movingLeader) Leader() (string, string) {
	m.mu.Lock()
	m.calls++
	moved := m.calls > m.n
	id, api := m.nextID, m.nextAPI
	m.mu.Unlock()
	if moved {
		return id, api
	}
	return m.Fake.Leader()
}

// moveTo makes every later Leader answer name id at api.
func (m *movingLeader) moveTo(id, api string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n, m.nextID, m.nextAPI = m.calls, id, api
}

// deadAddr is an address nothing listens on: a dial there is refused.
func deadAddr(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := hostPort(srv)
	srv.Close()
	return addr
}

func TestWriteRidesOutALeaderThatCannotBeReached(t *testing.T) {
	leader := apitest.NewFake("node-3")
	leaderSrv := newTestServer(t, leader, nil)
	follower := &movingLeader{Fake: apitest.NewFake("node-2"), n: 1, nextID: "node-3", nextAPI: hostPort(leaderSrv)}
	// The follower still names the old leader, which is gone: its dial is
	// refused, and the next answer of Leader names the new one.
	follower.SetLeader(false, "node-1", deadAddr(t))
	srv := newTestServer(t, follower, nil)

	resp, body := call(t, srv, http.MethodPost, "/v1/services", webSpec, "")
	expect(t, resp, body, http.StatusAccepted, nil)
	if n := leader.CallCount("Deploy"); n != 1 {
		t.Fatalf("the new leader got %d deploys, want exactly 1", n)
	}
}

func TestWriteWaitsForALeaderToBeElected(t *testing.T) {
	leader := apitest.NewFake("node-3")
	leaderSrv := newTestServer(t, leader, nil)
	follower := &movingLeader{Fake: apitest.NewFake("node-2"), n: 3, nextID: "node-3", nextAPI: hostPort(leaderSrv)}
	follower.SetLeader(false, "", "") // no leader for the first three looks
	srv := newTestServer(t, follower, nil)

	resp, body := call(t, srv, http.MethodPost, "/v1/services", webSpec, "")
	expect(t, resp, body, http.StatusAccepted, nil)
	if n := leader.CallCount("Deploy"); n != 1 {
		t.Fatalf("the leader got %d deploys, want exactly 1", n)
	}
}

// TestLeaderLostMidRequest: the leader takes the request and never answers
// (its droplet died with the connection open). Once the follower sees a new
// leader it answers at once instead of holding the caller until its
// deadline: a write is not repeated (it may have been applied), a read is
// confirmed by the new leader.
func TestLeaderLostMidRequest(t *testing.T) {
	arrived := make(chan struct{}, 4)
	release := make(chan struct{})
	hung := newTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		arrived <- struct{}{}
		<-release
	}), "node-1")
	t.Cleanup(func() { close(release) })
	next := apitest.NewFake("node-3")
	if _, err := next.Deploy(t.Context(), controlDeploy(t, webSpec)); err != nil {
		t.Fatal(err)
	}
	nextSrv := newTestServer(t, next, nil)
	follower := &movingLeader{Fake: apitest.NewFake("node-2"), n: 1 << 30}
	follower.SetLeader(false, "node-1", hostPort(hung))
	srv := newTestServer(t, follower, nil)

	type answer struct {
		resp *http.Response
		body []byte
	}
	send := func(method, path string, body any) <-chan answer {
		ch := make(chan answer, 1)
		go func() {
			req, _ := http.NewRequest(method, srv.URL+path, nil)
			if body != nil {
				req, _ = http.NewRequest(method, srv.URL+path, strings.NewReader(body.(string)))
			}
			req.Header.Set("Authorization", "Bearer "+testKey)
			req.Header.Set(control.HeaderTimeout, "30s")
			resp, err := cli().Do(req)
			if err != nil {
				t.Error(err)
				ch <- answer{}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			ch <- answer{resp, b}
		}()
		return ch
	}
	waitArrived := func() {
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("the request never reached the old leader")
		}
	}

	start := time.Now()
	write := send(http.MethodPost, "/v1/services", webSpec)
	waitArrived()
	follower.moveTo("node-3", hostPort(nextSrv))
	a := <-write
	if a.resp == nil {
		t.FailNow()
	}
	expect(t, a.resp, a.body, http.StatusBadGateway, nil)
	if e := errorOf(t, a.body); e.Error != control.CodeOutcomeUnknown || control.Retryable(e.Error) {
		t.Fatalf("answer %+v: want %s, not retryable", e, control.CodeOutcomeUnknown)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the caller was held %v", took)
	}
	if n := next.CallCount("Deploy"); n != 1 { // the one made by the test
		t.Fatalf("the write was repeated on the new leader (%d deploys)", n)
	}

	follower.ReplicateFrom(next)
	follower.moveTo("node-1", hostPort(hung))
	read := send(http.MethodGet, "/v1/services?consistent=true", nil)
	waitArrived()
	follower.moveTo("node-3", hostPort(nextSrv))
	a = <-read
	if a.resp == nil {
		t.FailNow()
	}
	var services []raftfsm.Service
	expect(t, a.resp, a.body, http.StatusOK, &services)
	if len(services) != 1 {
		t.Fatalf("the read answered %d services, want the new leader's 1", len(services))
	}
}

// TestRepeatedWriteLostEverywhereIsUnknown: an idempotent write (a DELETE)
// reaches the leader, which drops the connection before answering, and no
// repeat gets through before the deadline. The answer is "outcome
// unknown", never "no leader; retry" (which says nothing changed): the
// first attempt may have been applied.
func TestRepeatedWriteLostEverywhereIsUnknown(t *testing.T) {
	arrived := make(chan struct{}, 64)
	dropping := newTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		arrived <- struct{}{}
		panic(http.ErrAbortHandler) // the connection ends without an answer
	}), "node-1")
	follower := apitest.NewFake("node-2")
	follower.SetLeader(false, "node-1", hostPort(dropping))
	srv := newTestServer(t, follower, nil)
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/v1/registries/registry.example.test", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set(control.HeaderTimeout, "2s")
	resp, err := cli().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(arrived) == 0 {
		t.Fatal("the request never reached the leader: the test proves nothing")
	}
	expect(t, resp, body, http.StatusBadGateway, nil)
	if e := errorOf(t, body); e.Error != control.CodeOutcomeUnknown {
		t.Fatalf("answer %+v: want %s", e, control.CodeOutcomeUnknown)
	}
}
