package api

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/api/apitest"
	"github.com/dropmesh/dropmesh/node/logring"
	"github.com/dropmesh/dropmesh/node/testkit"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// jsonLog collects the JSON lines of a logring handler.
type jsonLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *jsonLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// lines returns the logged records with message msg.
func (l *jsonLog) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// count is the number of records with message msg so far.
func (l *jsonLog) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), `"msg":`+strconv.Quote(msg))
}

func (l *jsonLog) logger(t *testing.T, node string) *slog.Logger {
	h, err := logring.NewHandler(l, logring.FormatJSON, slog.LevelDebug, nil)
	if err != nil {
		t.Fatal(err)
	}
	return slog.New(h).With("node", node)
}

func TestRequestIDFollowsAForwardedDeployIntoBothLogs(t *testing.T) {
	var leaderLog, followerLog jsonLog
	leader, follower := apitest.NewFake("node-1"), apitest.NewFake("node-2")
	lt := &tap{next: newHandler(t, leader, func(o *Options) { o.Logger = leaderLog.logger(t, "node-1") })}
	leaderSrv := newTLSServer(t, lt, "node-1")
	follower.SetLeader(false, "node-1", hostPort(leaderSrv))
	followerSrv := newTestServer(t, follower, func(o *Options) { o.Logger = followerLog.logger(t, "node-2") })

	resp, body := call(t, followerSrv, http.MethodPost, "/v1/services", webSpec, "")
	var res raftfsm.DeployResult
	expect(t, resp, body, http.StatusAccepted, &res)
	id := resp.Header.Get(HeaderRequestID)
	if !strings.HasPrefix(id, "req-") {
		t.Fatalf("answer's %s = %q, want one the agent made", HeaderRequestID, id)
	}
	if seen, _ := lt.last(); seen.Get(HeaderRequestID) != id {
		t.Fatalf("the leader got request id %q, the caller %q", seen.Get(HeaderRequestID), id)
	}
	accepted := leaderLog.lines(t, "deploy accepted")
	if len(accepted) != 1 || accepted[0]["request"] != id || accepted[0]["deploy"] != res.DeployID || accepted[0]["node"] != "node-1" {
		t.Fatalf("leader's deploy line %v, want request %s deploy %s", accepted, id, res.DeployID)
	}
	for name, l := range map[string]*jsonLog{"leader": &leaderLog, "follower": &followerLog} {
		// The request line is written once the answer has gone out, so it
		// may come just after the caller has read it.
		testkit.WaitFor(t, 5*time.Second, name+"'s request line", func() bool { return l.count("api request") > 0 })
		reqs := l.lines(t, "api request")
		if len(reqs) != 1 || reqs[0]["request"] != id || reqs[0]["status"] != float64(http.StatusAccepted) || reqs[0]["level"] != "INFO" {
			t.Errorf("%s's request lines %v", name, reqs)
		}
	}
}

func TestRequestIDOfTheCallerIsKeptWhenUsable(t *testing.T) {
	srv := newTestServer(t, apitest.NewFake("node-1"), nil)
	for _, c := range []struct {
		sent string
		kept bool
	}{
		{"ci-build-42:step.3", true},
		{"has space", false},
		{strings.Repeat("x", maxRequestIDLen+1), false},
		{"", false},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/cluster", nil)
		req.Header.Set("Authorization", "Bearer "+testKey)
		if c.sent != "" {
			req.Header.Set(HeaderRequestID, c.sent)
		}
		resp, err := cli().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got := resp.Header.Get(HeaderRequestID)
		if c.kept && got != c.sent || !c.kept && (got == c.sent || !strings.HasPrefix(got, "req-")) {
			t.Errorf("sent %q, answered %q (kept: %v)", c.sent, got, c.kept)
		}
	}
}
