package cloudops

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
)

func inject(t *testing.T, e *testEnv, f fakeapi.Fault) {
	t.Helper()
	if err := e.fake.InjectFault(f); err != nil {
		t.Fatal(err)
	}
}

func TestRetry429HonoursRetryAfter(t *testing.T) {
	e := newEnv(t, testOptions())
	c := ctx(t)
	d, err := e.do.CreateDroplet(c, spec("c1-node-1"))
	if err != nil {
		t.Fatal(err)
	}
	inject(t, e, fakeapi.Fault{Method: "GET", PathPrefix: "/v2/droplets/", Status: 429, RetryAfter: 3 * time.Second, Times: 1})
	got, err := e.do.GetDroplet(c, d.ID)
	if err != nil || got.ID != d.ID {
		t.Fatalf("get after a 429: %+v %v", got, err)
	}
	if n := e.fake.Requests("GET /v2/droplets/{id}"); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
	if w := e.sleep.Waits(); len(w) != 1 || w[0] != 3*time.Second {
		t.Fatalf("waits %v, want [3s] from Retry-After", w)
	}
}

func TestRetry429OnPOSTResendsTheBody(t *testing.T) {
	e := newEnv(t, testOptions())
	c := ctx(t)
	inject(t, e, fakeapi.Fault{Method: "POST", PathPrefix: "/v2/droplets", Status: 429, Times: 1})
	d, err := e.do.CreateDroplet(c, spec("c1-node-1"))
	if err != nil || d.Name != "c1-node-1" {
		t.Fatalf("create after a 429: %+v %v", d, err)
	}
	if n := e.fake.Requests("POST /v2/droplets"); n != 2 {
		t.Fatalf("%d creates, want 2", n)
	}
	// DigitalOcean's 429 carries no Retry-After: the wait is until
	// ratelimit-reset, a second or two ahead.
	if w := e.sleep.Waits(); len(w) != 1 || w[0] < 500*time.Millisecond || w[0] > 2*time.Second {
		t.Fatalf("waits %v, want one until ratelimit-reset (0.5-2s)", w)
	}
	// Cloudflare: a rate-limited record create is re-sent with its body.
	z, err := e.cf.FindZone(c, "www.example.test")
	if err != nil {
		t.Fatal(err)
	}
	inject(t, e, fakeapi.Fault{Method: "POST", PathPrefix: "/client/v4/zones/", Status: 429, Times: 1})
	recs, err := e.cf.EnsureARecords(c, z.ID, "www.example.test", []string{"192.0.2.7"}, false)
	if err != nil || len(recs) != 1 || recs[0].Content != "192.0.2.7" {
		t.Fatalf("ensure after a 429: %+v %v", recs, err)
	}
	if n := e.fake.Requests("POST /client/v4/zones/{zid}/dns_records"); n != 2 {
		t.Fatalf("%d record creates, want 2", n)
	}
}

func TestRetry429HonoursRateLimitReset(t *testing.T) {
	// The fake enforces a budget of 3 requests an hour: the 4th is refused
	// until the hour is over, and ratelimit-reset says so.
	opts := testOptions()
	opts.RateLimit = 3
	e := newEnv(t, opts)
	c := ctx(t)
	for range 3 {
		if _, err := e.do.ListDroplets(c, ""); err != nil {
			t.Fatal(err)
		}
	}
	if w := e.sleep.Waits(); len(w) != 0 {
		t.Fatalf("waited %v within the budget", w)
	}
	_, err := e.do.ListDroplets(c, "")
	if StatusCode(err) != 429 {
		t.Fatalf("err = %v, want the 429 once the attempts are spent", err)
	}
	// Every wait is the time to the reset (about an hour), capped at
	// MaxDelay: not the 10 ms backoff a 429 without a hint gets.
	w := e.sleep.Waits()
	if len(w) != 3 {
		t.Fatalf("waits %v, want 3 (4 attempts)", w)
	}
	for _, d := range w {
		if d != 5*time.Second {
			t.Fatalf("waits %v, want MaxDelay (5s) each: the reset is an hour away", w)
		}
	}
}

func TestRateResetParsing(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	h := func(rem, reset string) http.Header {
		return http.Header{"Ratelimit-Remaining": {rem}, "Ratelimit-Reset": {reset}}
	}
	if d, ok := rateReset(h("0", "1800000007"), now); !ok || d != 7*time.Second {
		t.Fatalf("got %v %v, want 7s", d, ok)
	}
	for name, hd := range map[string]http.Header{
		"requests left": h("12", "1800000007"),
		"reset past":    h("0", "1799999990"),
		"no headers":    {},
		"garbage":       h("0", "soon"),
	} {
		if d, ok := rateReset(hd, now); ok {
			t.Errorf("%s: waits %v", name, d)
		}
	}
}

func TestRetry5xxTwiceThenSuccess(t *testing.T) {
	e := newEnv(t, testOptions())
	c := ctx(t)
	d, err := e.do.CreateDroplet(c, spec("c1-node-1"))
	if err != nil {
		t.Fatal(err)
	}
	inject(t, e, fakeapi.Fault{Method: "GET", PathPrefix: "/v2/droplets/", Status: 503, Times: 2})
	if _, err := e.do.GetDroplet(c, d.ID); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Requests("GET /v2/droplets/{id}"); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
	w := e.sleep.Waits()
	if len(w) != 2 || w[0] < 5*time.Millisecond || w[0] > 10*time.Millisecond || w[1] < 10*time.Millisecond || w[1] > 20*time.Millisecond {
		t.Fatalf("waits %v, want backoff in [5ms,10ms] then [10ms,20ms]", w)
	}

	// A PUT is idempotent too: the firewall update is retried with its body.
	fw := ClusterFirewall("fw", "c1", Ports{})
	if _, err := e.do.EnsureFirewall(c, fw); err != nil {
		t.Fatal(err)
	}
	inject(t, e, fakeapi.Fault{Method: "PUT", PathPrefix: "/v2/firewalls/", Status: 502, Times: 2})
	if _, err := e.do.EnsureFirewall(c, WithSSH(fw, nil)); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Requests("PUT /v2/firewalls/{id}"); n != 3 {
		t.Fatalf("%d updates, want 3", n)
	}
	if got, _ := e.do.GetFirewallByName(c, "fw"); len(got.Inbound) != len(fw.Inbound)+1 {
		t.Fatalf("update not applied: %+v", got.Inbound)
	}
}

func TestCreateDropletRetries5xxByLookingAgain(t *testing.T) {
	e := newEnv(t, testOptions())
	c := ctx(t)
	inject(t, e, fakeapi.Fault{Method: "POST", PathPrefix: "/v2/droplets", Status: 500, Times: 2})
	d, err := e.do.CreateDroplet(c, spec("c1-node-1"))
	if err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Requests("POST /v2/droplets"); n != 3 {
		t.Fatalf("%d creates, want 3", n)
	}
	if n := e.fake.Requests("GET /v2/droplets"); n != 3 {
		t.Fatalf("%d lookups, want 3 (one before each create)", n)
	}
	if st := e.fake.State(); len(st.Droplets) != 1 || st.Droplets[0].ID != d.ID {
		t.Fatalf("fake holds %d droplets", len(st.Droplets))
	}
}

// lyingTransport forwards requests but answers the first POST with a 500
// after the server has acted on it: the create happened, the client cannot
// know.
type lyingTransport struct {
	base http.RoundTripper
	lied atomic.Bool
}

func (l *lyingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(r)
	if err != nil || r.Method != http.MethodPost || l.lied.Swap(true) {
		return resp, err
	}
	drain(resp)
	return &http.Response{StatusCode: 500, Status: "500 Internal Server Error", Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"id":"server_error","message":"lost answer"}`)), Request: r}, nil
}

func TestCreateDropletAfterALostAnswerDoesNotDuplicate(t *testing.T) {
	e := newEnv(t, testOptions())
	do := NewDigitalOcean(DOConfig{Token: fakeapi.DefaultToken, BaseURL: e.url, Retry: e.do.retry,
		HTTPClient: &http.Client{Transport: &lyingTransport{base: http.DefaultTransport}}})
	d, err := do.CreateDroplet(ctx(t), spec("c1-node-1"))
	if err != nil {
		t.Fatal(err)
	}
	if st := e.fake.State(); len(st.Droplets) != 1 || st.Droplets[0].ID != d.ID {
		t.Fatalf("fake holds %d droplets, want the one created before the lost answer", len(st.Droplets))
	}
	if n := e.fake.Requests("POST /v2/droplets"); n != 1 {
		t.Fatalf("%d creates, want 1", n)
	}

	// The same for a DNS record: the retry lists, finds it, creates nothing.
	cf := NewCloudflare(CFConfig{Token: fakeapi.DefaultToken, BaseURL: e.url + fakeapi.CloudflarePath, Retry: e.do.retry,
		HTTPClient: &http.Client{Transport: &lyingTransport{base: http.DefaultTransport}}})
	z, err := cf.FindZone(ctx(t), "lost.example.test")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cf.EnsureARecords(ctx(t), z.ID, "lost.example.test", []string{"192.0.2.1"}, false)
	if err != nil || len(recs) != 1 {
		t.Fatalf("ensure after a lost answer: %+v %v", recs, err)
	}
	if got := fakeARecords(e.fake, "lost.example.test"); len(got) != 1 {
		t.Fatalf("fake holds %d records", len(got))
	}
}

func TestPermanent5xxNamesTheResource(t *testing.T) {
	e := newEnv(t, testOptions())
	c := ctx(t)
	d, err := e.do.CreateDroplet(c, spec("c1-node-1"))
	if err != nil {
		t.Fatal(err)
	}
	inject(t, e, fakeapi.Fault{PathPrefix: "/v2/droplets", Status: 500})
	_, err = e.do.GetDroplet(c, d.ID)
	if err == nil || !strings.Contains(err.Error(), "get droplet") || StatusCode(err) != 500 {
		t.Fatalf("err = %v, want a 500 naming the droplet", err)
	}
	if n := e.fake.Requests("GET /v2/droplets/{id}"); n != 4 {
		t.Fatalf("%d attempts, want MaxAttempts=4", n)
	}
	e.fake.ResetRequests()
	_, err = e.do.CreateDroplet(c, spec("c1-node-9"))
	if err == nil || !strings.Contains(err.Error(), `create droplet "c1-node-9"`) || StatusCode(err) != 500 {
		t.Fatalf("err = %v, want a 500 naming the droplet", err)
	}
	if n := e.fake.Requests("GET /v2/droplets"); n != 4 {
		t.Fatalf("%d lookups, want 4 (the list is retried by the transport and fails)", n)
	}
	e.fake.ClearFaults()
	inject(t, e, fakeapi.Fault{Method: "POST", PathPrefix: "/v2/droplets", Status: 500})
	e.fake.ResetRequests()
	_, err = e.do.CreateDroplet(c, spec("c1-node-9"))
	if err == nil || !strings.Contains(err.Error(), `create droplet "c1-node-9"`) || StatusCode(err) != 500 {
		t.Fatalf("err = %v", err)
	}
	if n := e.fake.Requests("POST /v2/droplets"); n != 4 {
		t.Fatalf("%d creates, want 4", n)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Provider != "digitalocean" {
		t.Fatalf("no APIError in %v", err)
	}
}

func TestLatencyBeyondDeadlineFailsPromptly(t *testing.T) {
	e := newEnv(t, testOptions())
	inject(t, e, fakeapi.Fault{Method: "GET", PathPrefix: "/v2/droplets", Latency: 30 * time.Second})
	c, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.do.ListDroplets(c, "c1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("took %v to give up", took)
	}
	inject(t, e, fakeapi.Fault{PathPrefix: "/client/v4/", Latency: 30 * time.Second})
	c2, cancel2 := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel2()
	if _, err := e.cf.FindZone(c2, "www.example.test"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cloudflare: err = %v, want a deadline error", err)
	}
}

func TestRetryWaitIsCancellable(t *testing.T) {
	e := newEnv(t, testOptions())
	do := NewDigitalOcean(DOConfig{Token: fakeapi.DefaultToken, BaseURL: e.url,
		Retry: RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Minute}}) // real sleeps
	inject(t, e, fakeapi.Fault{Method: "GET", Status: 429, RetryAfter: 50 * time.Second})
	c, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { _, err := do.ListDroplets(c, ""); done <- err }()
	waitFor(t, 5*time.Second, "the first request", func() bool { return e.fake.Requests("GET /v2/droplets") == 1 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the wait for Retry-After was not cancelled")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %v", took)
	}
}

func TestRetryGivesUpWhenTheWaitOutlivesTheDeadline(t *testing.T) {
	e := newEnv(t, testOptions())
	inject(t, e, fakeapi.Fault{Method: "GET", Status: 429, RetryAfter: 4 * time.Second})
	c, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err := e.do.ListDroplets(c, "")
	if StatusCode(err) != 429 {
		t.Fatalf("err = %v, want the 429 at once", err)
	}
	if w := e.sleep.Waits(); len(w) != 0 {
		t.Fatalf("waited %v past the deadline", w)
	}
}

func TestRetryAfterIsCapped(t *testing.T) {
	e := newEnv(t, testOptions())
	inject(t, e, fakeapi.Fault{Method: "GET", Status: 429, RetryAfter: time.Hour, Times: 1})
	if _, err := e.do.ListDroplets(ctx(t), ""); err != nil {
		t.Fatal(err)
	}
	if w := e.sleep.Waits(); len(w) != 1 || w[0] != 5*time.Second {
		t.Fatalf("waits %v, want [5s] (MaxDelay)", w)
	}
}

// flakyTransport fails the next round trips (of one method, if set) with a
// connection reset.
type flakyTransport struct {
	base   http.RoundTripper
	method string
	fails  atomic.Int32
}

func (f *flakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if (f.method == "" || f.method == r.Method) && f.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	}
	return f.base.RoundTrip(r)
}

func TestNetworkErrors(t *testing.T) {
	e := newEnv(t, testOptions())
	ft := &flakyTransport{base: http.DefaultTransport}
	ft.fails.Store(2)
	do := NewDigitalOcean(DOConfig{Token: fakeapi.DefaultToken, BaseURL: e.url, Retry: e.do.retry, HTTPClient: &http.Client{Transport: ft}})
	if _, err := do.ListDroplets(ctx(t), ""); err != nil {
		t.Fatalf("GET after two resets: %v", err)
	}
	if n := e.fake.Requests("GET /v2/droplets"); n != 1 {
		t.Fatalf("%d requests reached the fake, want 1", n)
	}
	// A reset POST may have been acted on: it is not re-sent blindly;
	// CreateDroplet looks again before creating again.
	ft.method = http.MethodPost
	ft.fails.Store(1)
	e.fake.ResetRequests()
	if _, err := do.CreateDroplet(ctx(t), spec("c1-node-1")); err != nil {
		t.Fatal(err)
	}
	if g, p := e.fake.Requests("GET /v2/droplets"), e.fake.Requests("POST /v2/droplets"); g != 2 || p != 1 {
		t.Fatalf("lookups %d, creates %d reaching the fake; want 2 and 1", g, p)
	}
	if n := len(e.fake.State().Droplets); n != 1 {
		t.Fatalf("%d droplets", n)
	}
	// Below the operations, the transport alone does not retry a reset POST.
	ft.fails.Store(1)
	if _, err := do.DropletAction(ctx(t), e.fake.State().Droplets[0].ID, ActionReboot); err == nil {
		t.Fatal("a reset POST action was retried by the transport")
	}
	if n := e.fake.Requests("POST /v2/droplets/{id}/actions"); n != 0 {
		t.Fatalf("the reset action was re-sent %d times", n)
	}

	// Nothing listens: every attempt is a dial error, retried up to
	// MaxAttempts, for any method.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	rec := &sleepRecorder{}
	dead := NewDigitalOcean(DOConfig{Token: "x", BaseURL: "http://" + addr, Retry: RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, Sleep: rec.Sleep}})
	if _, err := dead.DropletAction(ctx(t), 1, ActionReboot); err == nil || !strings.Contains(err.Error(), "reboot droplet 1") {
		t.Fatalf("err = %v", err)
	}
	if n := len(rec.Waits()); n != 2 {
		t.Fatalf("%d waits, want 2 (3 attempts)", n)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"3":                             3 * time.Second,
		"0.5":                           500 * time.Millisecond,
		"Sun, 01 Nov 2026 12:00:10 GMT": 10 * time.Second,
		"Sun, 01 Nov 2026 11:00:00 GMT": 0,
	} {
		got, ok := retryAfter(v, now)
		if !ok || got != want {
			t.Errorf("%q: %v %v, want %v", v, got, ok, want)
		}
	}
	for _, bad := range []string{"", "-1", "soon", "NaN", "1e12"} {
		if _, ok := retryAfter(bad, now); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	p := RetryPolicy{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}.withDefaults()
	for range 200 {
		for n, lim := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 5: time.Second, 30: time.Second} {
			if d := p.backoff(n); d < lim/2 || d > lim {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, lim/2, lim)
			}
		}
	}
}

func TestDefaultRetryPolicy(t *testing.T) {
	p := DefaultRetryPolicy()
	if p.MaxAttempts < 2 || p.BaseDelay <= 0 || p.MaxDelay < p.BaseDelay {
		t.Fatalf("default policy %+v", p)
	}
	z := RetryPolicy{}.withDefaults()
	if z.MaxAttempts != p.MaxAttempts || z.Sleep == nil {
		t.Fatalf("zero policy not defaulted: %+v", z)
	}
}
