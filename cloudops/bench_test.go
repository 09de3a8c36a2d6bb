package cloudops

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi/fakeapitest"
)

// benchEnv is newEnv for benchmarks.
func benchEnv(b *testing.B) *testEnv {
	fake, url := fakeapitest.Start(b, testOptions())
	retry := RetryPolicy{MaxAttempts: 4, BaseDelay: time.Millisecond}
	return &testEnv{fake: fake, url: url,
		do: NewDigitalOcean(DOConfig{Token: fakeapi.DefaultToken, BaseURL: url, Retry: retry, PollInterval: time.Millisecond}),
		cf: NewCloudflare(CFConfig{Token: fakeapi.DefaultToken, BaseURL: url + fakeapi.CloudflarePath, Retry: retry})}
}

// requests sums the fake's request counts.
func requests(f *fakeapi.Server) int {
	n := 0
	for _, c := range f.State().Requests {
		n += c
	}
	return n
}

// BenchmarkCreateDroplet: an idempotent create (lookup, then POST) against
// the fake, which holds a growing cluster.
func BenchmarkCreateDroplet(b *testing.B) {
	e := benchEnv(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		if _, err := e.do.CreateDroplet(ctx, spec(fmt.Sprintf("node-%d", i))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(requests(e.fake))/float64(i), "requests/op")
}

// BenchmarkEnsureARecordsUnchanged: the leader's steady state, a host whose
// records already match: one listing, no change.
func BenchmarkEnsureARecordsUnchanged(b *testing.B) {
	e := benchEnv(b)
	ctx := context.Background()
	z, err := e.cf.FindZone(ctx, "web.example.test")
	if err != nil {
		b.Fatal(err)
	}
	ips := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}
	if _, err := e.cf.EnsureARecords(ctx, z.ID, "web.example.test", ips, true); err != nil {
		b.Fatal(err)
	}
	e.fake.ResetRequests()
	for b.Loop() {
		if _, err := e.cf.EnsureARecords(ctx, z.ID, "web.example.test", ips, true); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(requests(e.fake))/float64(b.N), "requests/op")
}

// BenchmarkEnsureARecordsMove: a host moving one droplet ({a,b} -> {b,c}
// and back): list, create one, delete one.
func BenchmarkEnsureARecordsMove(b *testing.B) {
	e := benchEnv(b)
	ctx := context.Background()
	z, err := e.cf.FindZone(ctx, "web.example.test")
	if err != nil {
		b.Fatal(err)
	}
	sets := [][]string{{"192.0.2.1", "192.0.2.2"}, {"192.0.2.2", "192.0.2.3"}}
	if _, err := e.cf.EnsureARecords(ctx, z.ID, "web.example.test", sets[0], false); err != nil {
		b.Fatal(err)
	}
	e.fake.ResetRequests()
	i := 0
	for b.Loop() {
		i++
		if _, err := e.cf.EnsureARecords(ctx, z.ID, "web.example.test", sets[i%2], false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(requests(e.fake))/float64(i), "requests/op")
}

// BenchmarkRebootAndWait: a power cycle and the wait for its completion,
// as the healer does, with the fake's actions completing at once.
func BenchmarkRebootAndWait(b *testing.B) {
	e := benchEnv(b)
	ctx := context.Background()
	d, err := e.do.CreateDroplet(ctx, spec("node-1"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.do.WaitForDropletStatus(ctx, d.ID, StatusActive); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		a, err := e.do.DropletAction(ctx, d.ID, ActionPowerCycle)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.do.WaitForAction(ctx, a.ID); err != nil {
			b.Fatal(err)
		}
	}
}
