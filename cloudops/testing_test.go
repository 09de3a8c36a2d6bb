package cloudops

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi/fakeapitest"
)

// testEnv is a fake cloud with both clients pointed at it.
type testEnv struct {
	fake  *fakeapi.Server
	url   string
	do    *DigitalOcean
	cf    *Cloudflare
	sleep *sleepRecorder
}

// testOptions are the fake's options for most tests: no action delay.
func testOptions() fakeapi.Options {
	return fakeapi.Options{Zones: []string{"example.test", "sub.example.test", "other.test"}}
}

// newEnv starts a fake with opts and clients whose retry waits are recorded,
// not spent.
func newEnv(t *testing.T, opts fakeapi.Options) *testEnv {
	t.Helper()
	fake, url := fakeapitest.StartWrapped(t, opts, contract.Wrap)
	rec := &sleepRecorder{}
	retry := RetryPolicy{MaxAttempts: 4, BaseDelay: 10 * time.Millisecond, MaxDelay: 5 * time.Second, Sleep: rec.Sleep}
	token := opts.Token
	if token == "" {
		token = fakeapi.DefaultToken
	}
	return &testEnv{
		fake: fake, url: url, sleep: rec,
		do: NewDigitalOcean(DOConfig{Token: token, BaseURL: url, Retry: retry, PollInterval: 5 * time.Millisecond}),
		cf: NewCloudflare(CFConfig{Token: token, BaseURL: url + fakeapi.CloudflarePath, Retry: retry}),
	}
}

// sleepRecorder is an injectable RetryPolicy.Sleep that records each wait
// and returns at once (unless ctx is done).
type sleepRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (r *sleepRecorder) Sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	r.waits = append(r.waits, d)
	r.mu.Unlock()
	return ctx.Err()
}

func (r *sleepRecorder) Waits() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.waits...)
}

// ctx is a test context that ends with the test or after 20 s.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond) // polling interval, not synchronisation
	}
}

// spec is a valid droplet spec for the cluster tag "c1".
func spec(name string) DropletSpec {
	return DropletSpec{Name: name, Region: "nyc3", Size: "s-1vcpu-2gb", ImageSlug: "debian-12-x64", Tags: []string{"c1", "dropmesh"}, UserData: "#cloud-config\n"}
}
