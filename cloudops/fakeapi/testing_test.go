package fakeapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cloudflare/cloudflare-go/v6"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/zones"
	"github.com/digitalocean/godo"
	"golang.org/x/oauth2"
)

// zonesParams filters zones by exact name.
func zonesParams(name string) zones.ZoneListParams {
	return zones.ZoneListParams{Name: cloudflare.F(name)}
}

// doClient is a real godo client for the fake at url.
func doClient(t *testing.T, url, token string) *godo.Client {
	t.Helper()
	hc := oauth2.NewClient(context.Background(), oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}))
	c, err := godo.New(hc, godo.SetBaseURL(url))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// cfClient is a real cloudflare-go v6 client for the fake at url.
func cfClient(url, token string) *cloudflare.Client {
	return cloudflare.NewClient(option.WithBaseURL(url+CloudflarePath), option.WithAPIToken(token), option.WithMaxRetries(0))
}

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

// recorder is a DropletBackend that records its calls.
type recorder struct {
	mu    sync.Mutex
	calls []string
	fail  bool
}

func (r *recorder) add(s string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
	if r.fail {
		return fmt.Errorf("backend refuses %s", s)
	}
	return nil
}

func (r *recorder) Start(_ context.Context, d BackedDroplet) error {
	return r.add(fmt.Sprintf("start %d %s %s %s", d.ID, d.Name, d.PublicIP, d.Status))
}
func (r *recorder) Restart(_ context.Context, id int) error {
	return r.add(fmt.Sprintf("restart %d", id))
}
func (r *recorder) Stop(_ context.Context, id int) error { return r.add(fmt.Sprintf("stop %d", id)) }

func (r *recorder) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// createReq is a valid droplet create request.
func createReq(name string) *godo.DropletCreateRequest {
	return &godo.DropletCreateRequest{Name: name, Region: "nyc3", Size: "s-1vcpu-2gb",
		Image: godo.DropletCreateImage{Slug: "debian-12-x64"}, Tags: []string{"c1"}, UserData: "#cloud-config\nsecret: x\n"}
}

// createDroplet creates a droplet through godo and waits for it to be active.
func createDroplet(t *testing.T, c *godo.Client, name string) godo.Droplet {
	t.Helper()
	d, _, err := c.Droplets.Create(ctx(t), createReq(name))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "droplet active", func() bool {
		got, _, err := c.Droplets.Get(ctx(t), d.ID)
		return err == nil && got.Status == "active"
	})
	return *d
}

// waitAction polls an action until it is no longer in progress.
func waitAction(t *testing.T, c *godo.Client, id int) godo.Action {
	t.Helper()
	var a *godo.Action
	waitFor(t, 5*time.Second, fmt.Sprintf("action %d", id), func() bool {
		var err error
		a, _, err = c.Actions.Get(ctx(t), id)
		return err == nil && a.Status != "in-progress"
	})
	return *a
}

// get does a GET on the fake and returns the status.
func get(t *testing.T, url, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx(t), http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}
