package cloudops

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
)

// duty is one of dropmesh's idempotent cloud duties, with how to count
// the resources it makes.
type duty struct {
	name string
	// create is the path prefix of the request that makes the resource.
	create string
	run    func(ctx context.Context, do *DigitalOcean, cf *Cloudflare) error
	count  func(fakeapi.State) int
}

func duties(t *testing.T) []duty {
	pub := newPublicKey(t)
	return []duty{
		{"droplet", "/v2/droplets", func(c context.Context, do *DigitalOcean, _ *Cloudflare) error {
			_, err := do.CreateDroplet(c, spec("c1-node-1"))
			return err
		}, func(s fakeapi.State) int { return len(s.Droplets) }},
		{"firewall", "/v2/firewalls", func(c context.Context, do *DigitalOcean, _ *Cloudflare) error {
			_, err := do.EnsureFirewall(c, ClusterFirewall("c1-fw", "c1", Ports{}))
			return err
		}, func(s fakeapi.State) int { return len(s.Firewalls) }},
		{"vpc", "/v2/vpcs", func(c context.Context, do *DigitalOcean, _ *Cloudflare) error {
			_, err := do.EnsureVPC(c, "c1-vpc", "nyc3", "10.110.0.0/20")
			return err
		}, func(s fakeapi.State) int { return len(s.VPCs) }},
		{"ssh key", "/v2/account/keys", func(c context.Context, do *DigitalOcean, _ *Cloudflare) error {
			_, err := do.CreateSSHKey(c, "c1-build", pub)
			return err
		}, func(s fakeapi.State) int { return len(s.Keys) }},
		{"dns records", "/client/v4/zones/", func(c context.Context, _ *DigitalOcean, cf *Cloudflare) error {
			z, err := cf.FindZone(c, "www.example.test")
			if err != nil {
				return err
			}
			_, err = cf.EnsureARecords(c, z.ID, "www.example.test", []string{"192.0.2.1", "192.0.2.2"}, false)
			return err
		}, func(s fakeapi.State) int { return len(s.DNSRecords) }},
	}
}

// want is how many resources each duty makes when it succeeds once.
var want = map[string]int{"droplet": 1, "firewall": 1, "vpc": 1, "ssh key": 1, "dns records": 2}

// TestDutiesUnderFaults runs every duty against each fault real clients
// meet, twice (a leader repeating its work in its next round), and checks
// it ends with the resources made once: no duplicate, whatever the
// provider did. Only a lost answer may fail the first round: the attempt
// timed out (RequestTimeout) and the operation hands that to its caller.
func TestDutiesUnderFaults(t *testing.T) {
	mayFailFirst := map[string]bool{"answer lost": true}
	faults := map[string]func(prefix string) fakeapi.Fault{
		// DigitalOcean's 429: no Retry-After, ratelimit-remaining 0 and a
		// reset; Cloudflare's: Retry-After. Refused before acting.
		"429 on the create": func(p string) fakeapi.Fault {
			return fakeapi.Fault{Method: "POST", PathPrefix: p, Status: 429, Times: 2}
		},
		"429 on every request": func(p string) fakeapi.Fault {
			return fakeapi.Fault{PathPrefix: p[:strings.Index(p[1:], "/")+1], Status: 429, Times: 2}
		},
		// A 5xx with the provider's error body, before acting.
		"500 on the create": func(p string) fakeapi.Fault {
			return fakeapi.Fault{Method: "POST", PathPrefix: p, Status: 500, Times: 2}
		},
		// The provider acted, then answered 503: the caller cannot know.
		"503 after acting": func(p string) fakeapi.Fault {
			return fakeapi.Fault{Method: "POST", PathPrefix: p, Status: 503, ServeFirst: true, Times: 1}
		},
		// The provider acted and the answer never came back in time.
		"answer lost": func(p string) fakeapi.Fault {
			return fakeapi.Fault{Method: "POST", PathPrefix: p, Latency: 5 * time.Second, ServeFirst: true, Times: 1}
		},
		// Everything slow, but within the request timeout.
		"slow answers": func(p string) fakeapi.Fault {
			return fakeapi.Fault{Latency: 50 * time.Millisecond}
		},
	}
	for fname, fault := range faults {
		for _, d := range duties(t) {
			t.Run(fname+"/"+d.name, func(t *testing.T) {
				e := newEnv(t, testOptions())
				// A short per-attempt timeout, so a lost answer is noticed
				// quickly; the retry waits are recorded, not spent.
				do := NewDigitalOcean(DOConfig{Token: fakeapi.DefaultToken, BaseURL: e.url, Retry: e.do.retry,
					PollInterval: 5 * time.Millisecond, RequestTimeout: 300 * time.Millisecond})
				cf := NewCloudflare(CFConfig{Token: fakeapi.DefaultToken, BaseURL: e.url + fakeapi.CloudflarePath,
					Retry: e.do.retry, RequestTimeout: 300 * time.Millisecond})
				if err := e.fake.InjectFault(fault(d.create)); err != nil {
					t.Fatal(err)
				}
				c := ctx(t)
				if err := d.run(c, do, cf); err != nil && !mayFailFirst[fname] {
					t.Fatalf("first run: %v", err)
				}
				if err := d.run(c, do, cf); err != nil {
					t.Fatalf("second run: %v", err)
				}
				if n := d.count(e.fake.State()); n != want[d.name] {
					t.Fatalf("%d resources after the fault, want %d", n, want[d.name])
				}
			})
		}
	}
}

// TestSnapshotUnderFaults: a snapshot is not retried blindly (a second
// one is slow and costs money), but a rate limit is, and after a lost
// answer the caller finds the action the provider started.
func TestSnapshotUnderFaults(t *testing.T) {
	e := newEnv(t, testOptions())
	c := ctx(t)
	d, err := e.do.CreateDroplet(c, spec("c1-node-1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.do.WaitForDropletStatus(c, d.ID, StatusActive); err != nil {
		t.Fatal(err)
	}
	if err := e.fake.InjectFault(fakeapi.Fault{Method: "POST", PathPrefix: "/v2/droplets/", Status: 429, Times: 1}); err != nil {
		t.Fatal(err)
	}
	a, err := e.do.SnapshotDroplet(c, d.ID, "base-1")
	if err != nil {
		t.Fatalf("snapshot after a 429: %v", err)
	}
	if _, err := e.do.WaitForAction(c, a.ID); err != nil {
		t.Fatal(err)
	}
	do := NewDigitalOcean(DOConfig{Token: fakeapi.DefaultToken, BaseURL: e.url, Retry: e.do.retry, PollInterval: 5 * time.Millisecond,
		RequestTimeout: 300 * time.Millisecond})
	if err := e.fake.InjectFault(fakeapi.Fault{Method: "POST", PathPrefix: "/v2/droplets/", Latency: 5 * time.Second, ServeFirst: true, Times: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := do.SnapshotDroplet(c, d.ID, "base-2"); err == nil {
		t.Fatal("a lost answer looked like success")
	}
	acts, err := do.ListDropletActions(c, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	snaps := 0
	for _, a := range acts {
		if a.Type == "snapshot" {
			snaps++
		}
	}
	if snaps != 2 {
		t.Fatalf("%d snapshot actions, want 2 (the first, and the one whose answer was lost)", snaps)
	}
	// While it runs, DigitalOcean refuses another: no duplicate even if
	// the caller tries again at once.
	if _, err := do.SnapshotDroplet(c, d.ID, "base-2"); err != nil && !errors.Is(err, ErrNotFound) && StatusCode(err) != 422 {
		t.Fatalf("a second snapshot while one runs: %v, want 422 or (once finished) success", err)
	}
}
