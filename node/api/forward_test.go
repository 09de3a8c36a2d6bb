package api

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

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
	leader, follower       *Fake
	leaderSrv, followerSrv *httptest.Server
	leaderTap              *tap
}

func newPair(t *testing.T) *pair {
	t.Helper()
	p := &pair{leader: NewFake("node-1"), follower: NewFake("node-2")}
	p.leaderTap = &tap{next: newHandler(t, p.leader, nil)}
	p.leaderSrv = httptest.NewServer(p.leaderTap)
	t.Cleanup(p.leaderSrv.Close)
	p.follower.SetLeader(false, "node-1", hostPort(p.leaderSrv))
	p.followerSrv = newTestServer(t, p.follower, nil)
	return p
}

func TestWriteOnFollowerLandsOnLeaderUnchanged(t *testing.T) {
	p := newPair(t)
	followerBefore := p.follower.StateJSON()

	req, _ := http.NewRequest(http.MethodPost, p.followerSrv.URL+"/v1/services", strings.NewReader(webSpec))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/yaml")
	req.Header.Set(HeaderTimeout, "20s")
	resp, err := http.DefaultClient.Do(req)
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
	if seen.Get(HeaderForwarded) != "1" || seen.Get("Content-Type") != "application/yaml" {
		t.Fatalf("leader saw headers %v", seen)
	}
	if d, err := time.ParseDuration(seen.Get(HeaderTimeout)); err != nil || d <= 0 || d > 20*time.Second {
		t.Fatalf("leader saw %s %q, want the rest of 20s", HeaderTimeout, seen.Get(HeaderTimeout))
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
	req.Header.Set(HeaderForwarded, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	expect(t, resp, body, http.StatusServiceUnavailable, nil)
	if e := errorOf(t, body); e.Error != CodeNotLeader || resp.Header.Get("Retry-After") != "1" {
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
	p := newPair(t)
	leaderBefore, followerBefore := p.leader.StateJSON(), p.follower.StateJSON()
	p.leaderSrv.Close()
	resp, body := call(t, p.followerSrv, http.MethodPost, "/v1/services", webSpec, "")
	expect(t, resp, body, http.StatusServiceUnavailable, nil)
	if e := errorOf(t, body); e.Error != CodeNoLeader || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("answer %+v, Retry-After %q", e, resp.Header.Get("Retry-After"))
	}
	if p.follower.StateJSON() != followerBefore || p.leader.StateJSON() != leaderBefore {
		t.Fatal("a write whose leader was down changed a state")
	}

	// No leader known at all.
	p.follower.SetLeader(false, "", "")
	resp, body = call(t, p.followerSrv, http.MethodDelete, "/v1/services/default/shop/prod/web", nil, "")
	expect(t, resp, body, http.StatusServiceUnavailable, nil)
	if e := errorOf(t, body); e.Error != CodeNoLeader {
		t.Fatalf("answer %+v", e)
	}
	// Reads still answer from the local replica.
	resp, body = call(t, p.followerSrv, http.MethodGet, "/v1/nodes", nil, "")
	expect(t, resp, body, http.StatusOK, nil)
}

func TestConsistentReadGoesToTheLeader(t *testing.T) {
	p := newPair(t)
	if _, err := p.leader.Deploy(t.Context(), controlDeploy(t, webSpec)); err != nil {
		t.Fatal(err)
	}
	var services []raftfsm.Service
	resp, body := call(t, p.followerSrv, http.MethodGet, "/v1/services", nil, "")
	expect(t, resp, body, http.StatusOK, &services)
	if len(services) != 0 {
		t.Fatalf("the follower's replica has %d services", len(services))
	}
	resp, body = call(t, p.followerSrv, http.MethodGet, "/v1/services?consistent=true", nil, "")
	expect(t, resp, body, http.StatusOK, &services)
	if len(services) != 1 {
		t.Fatalf("consistent read gave %d services", len(services))
	}
	if p.leader.CallCount("Consistent") != 1 || p.follower.CallCount("Consistent") != 0 {
		t.Fatalf("Consistent calls: leader %d, follower %d", p.leader.CallCount("Consistent"), p.follower.CallCount("Consistent"))
	}
	if resp.Header.Get(HeaderIndex) != itoa(p.leader.Index()) {
		t.Fatalf("index %s, leader at %d", resp.Header.Get(HeaderIndex), p.leader.Index())
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
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || errorOf(t, answer).Error != CodeTooLarge {
		t.Fatalf("status %d: %s", resp.StatusCode, answer)
	}
	if p.leader.StateJSON() != leaderBefore || p.follower.StateJSON() != followerBefore {
		t.Fatal("an oversized write changed a state")
	}
	if _, leaderAnswer := p.leaderTap.last(); bytes.Contains(leaderAnswer, []byte(CodeInternal)) {
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
	if baseURL("10.0.0.2:9999") != "http://10.0.0.2:9999" || baseURL("https://a.example:1/") != "https://a.example:1" {
		t.Fatal("baseURL")
	}
}
