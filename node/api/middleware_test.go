package api

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/api/apitest"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

func TestFailedAuthIsRateLimited(t *testing.T) {
	srv := newTestServer(t, apitest.NewFake("node-1"), nil)
	for i := range DefaultLimits().AuthFailures {
		resp, body := call(t, srv, http.MethodGet, "/v1/nodes", nil, "wrong")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401; %s", i+1, resp.StatusCode, body)
		}
	}
	resp, body := call(t, srv, http.MethodGet, "/v1/nodes", nil, "wrong")
	expect(t, resp, body, http.StatusTooManyRequests, nil)
	if errorOf(t, body).Error != control.CodeRateLimited {
		t.Fatalf("body %s", body)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	// The right key from the same address is served all the same; /ping answers.
	resp, body = call(t, srv, http.MethodGet, "/v1/nodes", nil, "")
	expect(t, resp, body, http.StatusOK, nil)
	resp, body = call(t, srv, http.MethodGet, "/v1/nodes", nil, "wrong")
	expect(t, resp, body, http.StatusTooManyRequests, nil)
	resp, body = call(t, srv, http.MethodGet, "/ping", nil, "-")
	expect(t, resp, body, http.StatusOK, nil)
}

func TestPingIsRateLimitedAndSaysLittle(t *testing.T) {
	srv := newTestServer(t, apitest.NewFake("node-7"), func(o *Options) { o.Limits.PingBurst = 3; o.Limits.PingRate = 0.01 })
	for range 3 {
		resp, body := call(t, srv, http.MethodGet, "/ping", nil, "-")
		var p map[string]string
		expect(t, resp, body, http.StatusOK, &p)
		if len(p) != 2 || p["node"] != "node-7" || p["version"] != "test" {
			t.Fatalf("ping = %v", p)
		}
	}
	resp, body := call(t, srv, http.MethodGet, "/ping", nil, "-")
	expect(t, resp, body, http.StatusTooManyRequests, nil)
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
}

func TestTrustedNetsSkipTheKeyOnlyWhenAllowed(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv := newTestServer(t, fake, func(o *Options) {
		o.RequireAuthAlways = true
		o.TrustedNets = append(o.TrustedNets, mustPrefix(t, "127.0.0.0/8"))
	})
	resp, body := call(t, srv, http.MethodGet, "/v1/nodes", nil, "-")
	expect(t, resp, body, http.StatusUnauthorized, nil)

	open := newTestServer(t, fake, func(o *Options) {
		o.RequireAuthAlways = false
		o.TrustedNets = append(o.TrustedNets, mustPrefix(t, "127.0.0.0/8"))
	})
	resp, body = call(t, open, http.MethodGet, "/v1/nodes", nil, "-")
	expect(t, resp, body, http.StatusOK, nil)

	// RequireAuthAlways false without trusted networks still needs the key.
	noNets := newTestServer(t, fake, func(o *Options) { o.RequireAuthAlways = false })
	resp, body = call(t, noNets, http.MethodGet, "/v1/nodes", nil, "-")
	expect(t, resp, body, http.StatusUnauthorized, nil)
}

func TestBlockingReadWaitsForAWrite(t *testing.T) {
	fake := apitest.NewFake("node-1")
	waiting := make(chan struct{}, 16)
	ctrl := &signalingController{Fake: fake, changedCalled: waiting}
	srv := newTestServer(t, ctrl, nil)

	resp, body := call(t, srv, http.MethodGet, "/v1/services", nil, "")
	expect(t, resp, body, http.StatusOK, nil)
	idx := resp.Header.Get(control.HeaderIndex)
	if idx != strconv.FormatUint(fake.Index(), 10) {
		t.Fatalf("X-Dropmesh-Index %q, state at %d", idx, fake.Index())
	}
	drain(waiting)

	done := make(chan answer, 1)
	go func() { done <- fetch(srv, http.MethodGet, "/v1/services?index="+idx+"&wait=30s", nil) }()
	// The server is waiting once it asked for the change channel.
	select {
	case <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the blocking read never waited")
	}
	select {
	case a := <-done:
		t.Fatalf("the blocking read answered before any write: %s", a.body)
	default:
	}
	if _, err := fake.Deploy(t.Context(), control.DeployRequest{Spec: mustSpec(t, webSpec)}); err != nil {
		t.Fatal(err)
	}
	var a answer
	select {
	case a = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the blocking read did not answer after the write")
	}
	if a.err != nil {
		t.Fatal(a.err)
	}

	var services []raftfsm.Service
	expect(t, a.resp, a.body, http.StatusOK, &services)
	if len(services) != 1 {
		t.Fatalf("services %+v", services)
	}
	newIdx, _ := strconv.ParseUint(a.resp.Header.Get(control.HeaderIndex), 10, 64)
	oldIdx, _ := strconv.ParseUint(idx, 10, 64)
	if newIdx <= oldIdx {
		t.Fatalf("index %d after the write, was %d", newIdx, oldIdx)
	}

	// With nothing written the wait ends and the same index comes back.
	resp, body = call(t, srv, http.MethodGet, "/v1/services?index="+a.resp.Header.Get(control.HeaderIndex)+"&wait=20ms", nil, "")
	expect(t, resp, body, http.StatusOK, nil)
	if resp.Header.Get(control.HeaderIndex) != a.resp.Header.Get(control.HeaderIndex) {
		t.Fatalf("index moved without a write: %s", resp.Header.Get(control.HeaderIndex))
	}
	// An index already passed answers at once.
	resp, body = call(t, srv, http.MethodGet, "/v1/services?index=0&wait=10m", nil, "")
	expect(t, resp, body, http.StatusOK, nil)
}

// signalingController reports each call of Changed: a blocking read is
// waiting once it took the channel.
type signalingController struct {
	*apitest.Fake
	changedCalled chan struct{}
}

func (c *signalingController) Changed() <-chan struct{} {
	ch := c.Fake.Changed()
	select {
	case c.changedCalled <- struct{}{}:
	default:
	}
	return ch
}

func drain(ch chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func TestTimeoutHeader(t *testing.T) {
	srv := newTestServer(t, apitest.NewFake("node-1"), nil)
	for _, v := range []string{"soon", "-1s", "0s"} {
		a := fetch(srv, http.MethodGet, "/v1/nodes", http.Header{control.HeaderTimeout: {v}})
		if a.err != nil || a.resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(a.body), control.HeaderTimeout) {
			t.Fatalf("%s: %v %v %s", v, a.err, a.resp, a.body)
		}
	}
	a := fetch(srv, http.MethodGet, "/v1/nodes", http.Header{control.HeaderTimeout: {"5s"}})
	if a.err != nil || a.resp.StatusCode != http.StatusOK {
		t.Fatalf("5s: %v %s", a.err, a.body)
	}
}
