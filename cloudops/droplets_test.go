package cloudops

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
)

func TestCreateDropletIsIdempotent(t *testing.T) {
	e := newEnv(t, testOptions())
	c := ctx(t)
	d1, err := e.do.CreateDroplet(c, spec("c1-node-1"))
	if err != nil {
		t.Fatal(err)
	}
	if d1.ID == 0 || d1.Name != "c1-node-1" || d1.Region != "nyc3" || d1.Size != "s-1vcpu-2gb" || d1.Status != StatusNew {
		t.Fatalf("created %+v", d1)
	}
	if d1.PublicIP != "127.0.0.2" || d1.PrivateIP != "127.0.0.2" || d1.VPCUUID == "" || !slices.Equal(d1.Tags, []string{"c1", "dropmesh"}) {
		t.Fatalf("networking or tags wrong: %+v", d1)
	}
	d2, err := e.do.CreateDroplet(c, spec("c1-node-1"))
	if err != nil {
		t.Fatal(err)
	}
	if d2.ID != d1.ID {
		t.Fatalf("second create made droplet %d, want the existing %d", d2.ID, d1.ID)
	}
	if n := len(e.fake.State().Droplets); n != 1 {
		t.Fatalf("fake holds %d droplets, want 1", n)
	}
	if n := e.fake.Requests("POST /v2/droplets"); n != 1 {
		t.Fatalf("%d creates sent, want 1", n)
	}
	// The same name under another cluster tag is another droplet.
	other := spec("c1-node-1")
	other.Tags = []string{"c2"}
	d3, err := e.do.CreateDroplet(c, other)
	if err != nil || d3.ID == d1.ID {
		t.Fatalf("other cluster's droplet: %+v, %v", d3, err)
	}
	active, err := e.do.WaitForDropletStatus(c, d1.ID, StatusActive)
	if err != nil || active.Status != StatusActive {
		t.Fatalf("wait active: %+v %v", active, err)
	}
}

func TestCreateDropletRefusesBadSpecs(t *testing.T) {
	e := newEnv(t, testOptions())
	bad := map[string]func(*DropletSpec){
		"name":       func(s *DropletSpec) { s.Name = "bad name;rm" },
		"region":     func(s *DropletSpec) { s.Region = "NYC 3" },
		"size":       func(s *DropletSpec) { s.Size = "" },
		"no tag":     func(s *DropletSpec) { s.Tags = nil },
		"bad tag":    func(s *DropletSpec) { s.Tags = []string{"a b"} },
		"two images": func(s *DropletSpec) { s.SnapshotID = 5 },
		"user data":  func(s *DropletSpec) { s.UserData = string(make([]byte, 65<<10)) },
		"ssh key":    func(s *DropletSpec) { s.SSHKeyIDs = []int{0} },
	}
	for name, mod := range bad {
		s := spec("c1-node-1")
		mod(&s)
		_, err := e.do.CreateDroplet(ctx(t), s)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if n := len(e.fake.State().Requests); n != 0 {
		t.Fatalf("bad specs sent %d kinds of requests", n)
	}
}

func TestCreateDropletFromSnapshotNeedsItsRegion(t *testing.T) {
	e := newEnv(t, testOptions())
	c := ctx(t)
	src, err := e.do.CreateDroplet(c, spec("builder"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.do.WaitForDropletStatus(c, src.ID, StatusActive); err != nil {
		t.Fatal(err)
	}
	a, err := e.do.SnapshotDroplet(c, src.ID, "base-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.do.WaitForAction(c, a.ID); err != nil {
		t.Fatal(err)
	}
	snap, err := e.do.FindSnapshot(c, "base-1")
	if err != nil {
		t.Fatal(err)
	}
	s := spec("c1-node-2")
	s.ImageSlug, s.SnapshotID, s.Region = "", snap.ID, "sfo3"
	_, err = e.do.CreateDroplet(c, s)
	if StatusCode(err) != 422 {
		t.Fatalf("create in a region without the snapshot: %v, want a 422", err)
	}
	s.Region = "nyc3"
	d, err := e.do.CreateDroplet(c, s)
	if err != nil || d.ImageID != snap.ID {
		t.Fatalf("create from snapshot: %+v %v", d, err)
	}
}

func TestListDropletsAcrossPages(t *testing.T) {
	e := newEnv(t, testOptions())
	e.do.cfg.PageSize = 2
	c := ctx(t)
	var want []int
	for _, n := range []string{"a1", "a2", "a3", "a4", "a5"} {
		d, err := e.do.CreateDroplet(c, spec(n))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, d.ID)
	}
	other := spec("b1")
	other.Tags = []string{"c2"}
	if _, err := e.do.CreateDroplet(c, other); err != nil {
		t.Fatal(err)
	}
	e.fake.ResetRequests()
	ds, err := e.do.ListDroplets(c, "c1")
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, d := range ds {
		got = append(got, d.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
	if n := e.fake.Requests("GET /v2/droplets"); n != 3 {
		t.Fatalf("%d page requests, want 3 (2+2+1)", n)
	}
	all, err := e.do.ListDroplets(c, "")
	if err != nil || len(all) != 6 {
		t.Fatalf("all droplets: %d, %v", len(all), err)
	}
}

func TestGetAndDeleteDroplet(t *testing.T) {
	e := newEnv(t, testOptions())
	c := ctx(t)
	d, err := e.do.CreateDroplet(c, spec("c1-node-1"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.do.GetDroplet(c, d.ID)
	if err != nil || got.ID != d.ID || got.Name != d.Name || got.CreatedAt.IsZero() {
		t.Fatalf("get: %+v %v", got, err)
	}
	if err := e.do.DeleteDroplet(c, d.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.do.DeleteDroplet(c, d.ID); err != nil {
		t.Fatalf("deleting a gone droplet: %v, want nil", err)
	}
	_, err = e.do.GetDroplet(c, d.ID)
	if !errors.Is(err, ErrNotFound) || StatusCode(err) != 404 {
		t.Fatalf("get deleted: %v, want ErrNotFound (404)", err)
	}
	if _, err := e.do.GetDroplet(c, 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("get id 0: %v", err)
	}
}

func TestDropletActions(t *testing.T) {
	e := newEnv(t, testOptions())
	c := ctx(t)
	d, err := e.do.CreateDroplet(c, spec("c1-node-1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.do.WaitForDropletStatus(c, d.ID, StatusActive); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		kind   ActionKind
		status string
	}{
		{ActionPowerOff, StatusOff}, {ActionPowerOn, StatusActive}, {ActionReboot, StatusActive},
		{ActionShutdown, StatusOff}, {ActionPowerCycle, StatusActive},
	} {
		a, err := e.do.DropletAction(c, d.ID, step.kind)
		if err != nil {
			t.Fatalf("%s: %v", step.kind, err)
		}
		if a.Type != string(step.kind) || a.ResourceID != d.ID || a.ID == 0 {
			t.Fatalf("%s: action %+v", step.kind, a)
		}
		done, err := e.do.WaitForAction(c, a.ID)
		if err != nil || done.Status != ActionCompleted {
			t.Fatalf("%s: wait %+v %v", step.kind, done, err)
		}
		got, err := e.do.GetDroplet(c, d.ID)
		if err != nil || got.Status != step.status {
			t.Fatalf("after %s status %q (%v), want %q", step.kind, got.Status, err, step.status)
		}
	}
	st := e.fake.State()
	var types []string
	for _, a := range st.Droplets[0].Actions {
		types = append(types, a.Type+":"+a.Status)
	}
	want := []string{"create:completed", "power_off:completed", "power_on:completed", "reboot:completed", "shutdown:completed", "power_cycle:completed"}
	if !slices.Equal(types, want) {
		t.Fatalf("fake actions %v, want %v", types, want)
	}
	// The same through the client, across pages of two, and one by one.
	paged := NewDigitalOcean(DOConfig{Token: fakeapi.DefaultToken, BaseURL: e.url, Retry: e.do.retry, PageSize: 2})
	listed, err := paged.ListDropletActions(c, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	types = nil
	for _, a := range listed {
		types = append(types, a.Type+":"+a.Status)
		if a.ResourceID != d.ID {
			t.Fatalf("listed action %+v is not the droplet's", a)
		}
	}
	if !slices.Equal(types, want) {
		t.Fatalf("listed actions %v, want %v", types, want)
	}
	last := listed[len(listed)-1]
	if got, err := e.do.GetAction(c, last.ID); err != nil || got != last {
		t.Fatalf("get action %d: %+v %v, want %+v", last.ID, got, err, last)
	}
	if _, err := e.do.GetAction(c, last.ID+1000); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "get action") {
		t.Fatalf("unknown action: %v", err)
	}
	if _, err := e.do.ListDropletActions(c, d.ID+1000); !errors.Is(err, ErrNotFound) {
		t.Fatalf("actions of an unknown droplet: %v", err)
	}
	if _, err := e.do.GetAction(c, 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("action id 0: %v", err)
	}
	if _, err := e.do.DropletAction(c, d.ID, "rebuild"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown action: %v", err)
	}
}

func TestDropletActionWhilePendingIsRefused(t *testing.T) {
	opts := testOptions()
	opts.ActionDelay = 10 * time.Minute // never completes during the test
	e := newEnv(t, opts)
	c := ctx(t)
	d, err := e.do.CreateDroplet(c, spec("c1-node-1"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.do.DropletAction(c, d.ID, ActionReboot)
	if StatusCode(err) != 422 {
		t.Fatalf("action on a droplet still being created: %v, want 422", err)
	}
}

func TestWaitForActionErrored(t *testing.T) {
	opts := testOptions()
	opts.ActionDelay = 500 * time.Millisecond
	e := newEnv(t, opts)
	c := ctx(t)
	d, err := e.do.CreateDroplet(c, spec("c1-node-1"))
	if err != nil {
		t.Fatal(err)
	}
	var create int
	for _, a := range e.fake.State().Droplets[0].Actions {
		create = a.ID
	}
	// Deleting the droplet before its create completes makes the action
	// end errored.
	if err := e.do.DeleteDroplet(c, d.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.do.WaitForAction(c, create)
	if !errors.Is(err, ErrActionFailed) {
		t.Fatalf("wait: %v, want ErrActionFailed", err)
	}
}

func TestBadConfigurationFailsEveryCall(t *testing.T) {
	do := NewDigitalOcean(DOConfig{Token: "", BaseURL: "http://127.0.0.1:1"})
	if _, err := do.ListDroplets(ctx(t), ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty token: %v", err)
	}
	do = NewDigitalOcean(DOConfig{Token: "x", BaseURL: "ftp://nowhere"})
	if _, err := do.GetDroplet(ctx(t), 1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad URL: %v", err)
	}
	cf := NewCloudflare(CFConfig{Token: " "})
	if _, err := cf.FindZone(ctx(t), "a.example.test"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty cf token: %v", err)
	}
}

func TestWrongTokenIsUnauthorized(t *testing.T) {
	e := newEnv(t, testOptions())
	do := NewDigitalOcean(DOConfig{Token: "wrong", BaseURL: e.url, Retry: e.do.retry})
	_, err := do.ListDroplets(ctx(t), "c1")
	if StatusCode(err) != 401 {
		t.Fatalf("wrong DO token: %v, want 401", err)
	}
	cf := NewCloudflare(CFConfig{Token: "wrong", BaseURL: e.url + fakeapi.CloudflarePath, Retry: e.do.retry})
	_, err = cf.FindZone(ctx(t), "www.example.test")
	if StatusCode(err) != 401 {
		t.Fatalf("wrong CF token: %v, want 401", err)
	}
}
