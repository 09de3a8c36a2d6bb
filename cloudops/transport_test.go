package cloudops

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
)

// A hung answer fails each attempt after RequestTimeout, long before the
// caller's own deadline; idempotent requests are retried, every attempt
// bounded.
func TestRequestTimeoutBoundsAHungAnswer(t *testing.T) {
	e := newEnv(t, testOptions())
	const timeout = 150 * time.Millisecond
	do := NewDigitalOcean(DOConfig{Token: fakeapi.DefaultToken, BaseURL: e.url, Retry: e.do.retry, RequestTimeout: timeout})
	cf := NewCloudflare(CFConfig{Token: fakeapi.DefaultToken, BaseURL: e.url + fakeapi.CloudflarePath, Retry: e.do.retry, RequestTimeout: timeout})
	inject(t, e, fakeapi.Fault{Latency: time.Hour})

	start := time.Now()
	_, err := do.ListDroplets(ctx(t), "c1")
	var ne net.Error // the context has 20 s left: only the request timeout can end it this soon
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() ||
		!strings.Contains(err.Error(), `list droplets tagged "c1"`) {
		t.Fatalf("err = %v, want a timeout naming the listing", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %v to give up", took)
	}
	if n := e.fake.Requests("GET /v2/droplets"); n != 4 {
		t.Fatalf("%d attempts, want MaxAttempts=4, each cut off by the timeout", n)
	}
	start = time.Now()
	if _, err := cf.FindZone(ctx(t), "www.example.test"); err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("cloudflare: err = %v, want a timeout", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("cloudflare took %v to give up", took)
	}
}

// The timeout covers the wait for the headers, not the whole exchange: an
// answer that starts at once and streams slowly is read to the end.
func TestRequestTimeoutLetsASlowBodyFinish(t *testing.T) {
	const timeout = 100 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = fmt.Fprint(w, `{"droplet": {"id": 7, "name": "slow",`)
		w.(http.Flusher).Flush()
		time.Sleep(3 * timeout) // the slow server under test, not synchronisation
		_, _ = fmt.Fprint(w, ` "status": "active"}}`)
	}))
	t.Cleanup(srv.Close)
	do := NewDigitalOcean(DOConfig{Token: "x", BaseURL: srv.URL, RequestTimeout: timeout})
	d, err := do.GetDroplet(ctx(t), 7)
	if err != nil || d.Name != "slow" || d.Status != StatusActive {
		t.Fatalf("slow body: %+v %v", d, err)
	}
}

// A caller's own transport keeps its own timeouts; it is copied, not changed.
func TestBoundedTransportKeepsTheCallersTimeouts(t *testing.T) {
	own := &http.Transport{ResponseHeaderTimeout: time.Minute}
	got := boundedTransport(own, time.Second).(*http.Transport)
	if got == own || got.ResponseHeaderTimeout != time.Minute || got.TLSHandshakeTimeout != time.Second {
		t.Fatalf("got header timeout %v, handshake %v (same object: %v)", got.ResponseHeaderTimeout, got.TLSHandshakeTimeout, got == own)
	}
	if own.TLSHandshakeTimeout != 0 {
		t.Fatal("the caller's transport was modified")
	}
	shared := NewHTTPTransport(time.Second)
	if shared.ResponseHeaderTimeout != time.Second || boundedTransport(shared, time.Minute) != shared {
		t.Fatal("a transport that has its timeouts was copied or changed: its connections would not be shared")
	}
	rt := roundTripperFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("x") })
	if _, ok := boundedTransport(rt, time.Second).(roundTripperFunc); !ok {
		t.Fatal("a non-*http.Transport was replaced")
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
