package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/egress"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// t0 is the fixed clock of the tests: commands carry their time.
var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// cluster is a real FSM driven with commands; it is the notifier's Source.
type cluster struct {
	t   testing.TB
	fsm *raftfsm.FSM

	mu       sync.Mutex
	index    uint64
	applies  int
	applyErr error // when set, Apply refuses as a follower would
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	c := &cluster{t: t, fsm: raftfsm.NewFSM(nil)}
	c.must(&raftfsm.InitCluster{At: t0, ClusterID: "c0ffee", ClusterName: "prod-eu", AdminName: "admin",
		AdminPasswordHash: "$2a$10$abcdefghijklmnopqrstuuvwxyzabcdefghijklmnopqrstuvwxyz12", DefaultWorkspaceID: "9fe5e6"})
	for i := 1; i <= 2; i++ {
		c.must(&raftfsm.UpsertNode{At: t0, Node: raftfsm.Node{ID: fmt.Sprintf("node-%d", i), Region: "nyc3",
			PrivateIP: fmt.Sprintf("127.0.0.%d", i+1), API: fmt.Sprintf("127.0.0.%d:9999", i+1)}})
	}
	return c
}

func (c *cluster) View(fn func(s *raftfsm.State)) { c.fsm.View(fn) }
func (c *cluster) Changed() <-chan struct{}       { return c.fsm.Changed() }

// Apply commits cmd like the leader's raft store: in order, one index each.
func (c *cluster) Apply(ctx context.Context, cmd raftfsm.Command) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applies++
	if c.applyErr != nil {
		return nil, c.applyErr
	}
	c.index++
	return c.fsm.ApplyCommand(c.index, cmd)
}

func (c *cluster) must(cmd raftfsm.Command) any {
	c.t.Helper()
	v, err := c.Apply(context.Background(), cmd)
	if err != nil {
		c.t.Fatalf("apply %s: %v", cmd.Type(), err)
	}
	return v
}

func (c *cluster) setApplyErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applyErr = err
}

func (c *cluster) applyCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applies
}

// event records an event of kind at time at; it returns its sequence number.
func (c *cluster) event(at time.Time, kind, severity, msg string, set func(e *raftfsm.Event)) uint64 {
	c.t.Helper()
	e := raftfsm.Event{Kind: kind, Severity: severity, Message: msg}
	if set != nil {
		set(&e)
	}
	return c.must(&raftfsm.AppendEvent{At: at, Event: e}).(uint64)
}

func (c *cluster) webhook(at time.Time, id, url, format string, kinds ...string) {
	c.t.Helper()
	c.must(&raftfsm.PutWebhook{At: at, Webhook: raftfsm.Webhook{ID: id, URL: url, Format: format, Kinds: kinds}})
}

func (c *cluster) cursor() uint64 {
	var seq uint64
	c.fsm.View(func(s *raftfsm.State) { seq = s.Settings.NotifiedSeq })
	return seq
}

// request is one POST a receiver got.
type request struct {
	body []byte
	// cursor is the notifier cursor in the state when the request arrived.
	cursor uint64
}

// receiver is an httptest webhook endpoint. fail answers the nth request
// (1-based) with a status, 0 meaning 204.
type receiver struct {
	srv  *httptest.Server
	fail func(n int) int

	// arrived gets a value for each request recorded (dropped when full).
	arrived chan struct{}

	mu       sync.Mutex
	attempts int
	got      []request
}

func newReceiver(t testing.TB, c *cluster, fail func(n int) int) *receiver {
	t.Helper()
	r := &receiver{fail: fail, arrived: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.attempts++
		n := r.attempts
		r.mu.Unlock()
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want a JSON POST", http.StatusBadRequest)
			return
		}
		if r.fail != nil {
			if status := r.fail(n); status != 0 {
				http.Error(w, "failing on purpose", status)
				return
			}
		}
		r.mu.Lock()
		r.got = append(r.got, request{body: body, cursor: c.cursor()})
		r.mu.Unlock()
		select {
		case r.arrived <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) URL() string { return r.srv.URL + "/hook/secret-token" }

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.got...)
}

func (r *receiver) attemptCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts
}

// generic decodes the generic payloads received.
func (r *receiver) generic(t testing.TB) []GenericPayload {
	t.Helper()
	var out []GenericPayload
	for _, q := range r.requests() {
		var p GenericPayload
		if err := json.Unmarshal(q.body, &p); err != nil {
			t.Fatalf("generic payload %s: %v", q.body, err)
		}
		out = append(out, p)
	}
	return out
}

// deadURL is an address on 127.0.0.1 where nothing listens.
func deadURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/hook"
}

// testConfig is a fast configuration: tiny backoffs, short timeouts.
func testConfig(t testing.TB) Config {
	cfg := DefaultConfig()
	// Receivers run on loopback here: the egress check allows it for
	// these tests only (the default refuses loopback, see egress_test).
	cfg.HTTPClient = egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}.Client(2 * time.Second)
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.MaxAttempts = 3
	cfg.Backoff = 5 * time.Millisecond
	cfg.MaxBackoff = 20 * time.Millisecond
	cfg.Now = func() time.Time { return t0.Add(time.Hour) }
	return cfg
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// startRun runs the notifier until the test ends; stop ends it and waits.
func startRun(t testing.TB, src Source, cfg Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, src, cfg)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return 10 s after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
