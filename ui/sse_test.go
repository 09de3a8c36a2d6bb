package ui

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	Name string
	Data string
}

// openStream opens an event stream and parses it on a goroutine that ends
// with the test (its context).
func (c *client) openStream(t *testing.T, path string) <-chan sseEvent { return c.openStreamB(t, path) }

// openStreamB is openStream for tests and benchmarks.
func (c *client) openStreamB(t testing.TB, path string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	hc := *c.hc
	hc.Timeout = 0
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		res.Body.Close()
		t.Fatalf("GET %s: %d %s", path, res.StatusCode, res.Header.Get("Content-Type"))
	}
	out := make(chan sseEvent, 1000)
	go func() {
		defer close(out)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var ev sseEvent
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data != nil || ev.Name != "" {
					ev.Data = strings.Join(data, "\n")
					if ev.Name == "" {
						ev.Name = "message"
					}
					select {
					case out <- ev:
					case <-ctx.Done():
						return
					}
				}
				ev, data = sseEvent{}, nil
			case strings.HasPrefix(line, "event: "):
				ev.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = append(data, strings.TrimPrefix(line, "data: "))
			}
		}
	}()
	return out
}

// next returns the next event other than those named in skip, failing after timeout.
func next(t *testing.T, ch <-chan sseEvent, timeout time.Duration) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("the stream ended")
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("no event within %s", timeout)
	}
	return sseEvent{}
}

func TestEventsCoalesceChanges(t *testing.T) {
	f := newFake(t, true)
	u := newTestUI(t, f, Config{EventInterval: 300 * time.Millisecond})
	c := u.client()
	c.mustLogin(adminName, adminPass)
	events := c.openStream(t, "/events")
	hello := next(t, events, testUITimout)
	if hello.Name != "hello" {
		t.Fatalf("first event %+v", hello)
	}
	// A burst of 40 changes.
	start := time.Now()
	for i := 0; i < 40; i++ {
		f.must(&raftfsm.AppendEvent{At: time.Now().UTC(), Event: raftfsm.Event{Kind: raftfsm.EventCluster, Message: "burst " + strconv.Itoa(i)}})
	}
	burst := time.Since(start)
	final := strconv.FormatUint(f.srv().stateIndex(), 10)
	var changes []string
	for len(changes) == 0 || changes[len(changes)-1] != final {
		ev := next(t, events, testUITimout)
		if ev.Name != "change" {
			t.Fatalf("unexpected event %+v", ev)
		}
		changes = append(changes, ev.Data)
	}
	// One event per interval at most: the burst took burst, and the first
	// event may come at once.
	if limit := int(burst/(300*time.Millisecond)) + 2; len(changes) > limit {
		t.Errorf("%d change events for a burst of 40 changes in %s, want at most %d", len(changes), burst, limit)
	}
	// Nothing more while nothing changes.
	select {
	case ev := <-events:
		t.Errorf("an event without a change: %+v", ev)
	case <-time.After(400 * time.Millisecond):
	}
}

// srv returns the server around the fake's state, for its stateIndex.
func (f *fakeNode) srv() *server { return &server{node: f} }

func TestEventsSayWhenLeadershipMoves(t *testing.T) {
	f := newFake(t, true)
	u := newTestUI(t, f, Config{})
	c := u.client()
	c.mustLogin(adminName, adminPass)
	events := c.openStream(t, "/events")
	if ev := next(t, events, testUITimout); ev.Name != "hello" {
		t.Fatalf("first event %+v", ev)
	}
	f.setLeader("node-2")
	if ev := next(t, events, testUITimout); ev.Name != "leader" {
		t.Fatalf("after the leader moved: %+v", ev)
	}
}

func TestEventsStreamEndsAfterItsLifetime(t *testing.T) {
	f := newFake(t, true)
	u := newTestUI(t, f, Config{Heartbeat: 50 * time.Millisecond, StreamLifetime: 300 * time.Millisecond})
	c := u.client()
	c.mustLogin(adminName, adminPass)
	events := c.openStream(t, "/events")
	next(t, events, testUITimout)
	// The stream ends by itself after its lifetime (the browser reconnects
	// and the session is checked again).
	deadline := time.After(testUITimout)
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the stream outlived its lifetime")
		}
	}
}
