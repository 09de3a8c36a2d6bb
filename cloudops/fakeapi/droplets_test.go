package fakeapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/godo"
)

func doStatus(err error) int {
	var e *godo.ErrorResponse
	if errors.As(err, &e) {
		return e.Response.StatusCode
	}
	return 0
}

func TestCreateValidation(t *testing.T) {
	s, url := start(t, Options{})
	c := doClient(t, url, DefaultToken)
	for name, mod := range map[string]func(*godo.DropletCreateRequest){
		"name":             func(r *godo.DropletCreateRequest) { r.Name = "a b" },
		"region":           func(r *godo.DropletCreateRequest) { r.Region = "xyz9" },
		"size":             func(r *godo.DropletCreateRequest) { r.Size = "" },
		"unknown size":     func(r *godo.DropletCreateRequest) { r.Size = "s-99vcpu-1tb" },
		"unknown image":    func(r *godo.DropletCreateRequest) { r.Image = godo.DropletCreateImage{Slug: "debian-99-x64"} },
		"unknown image id": func(r *godo.DropletCreateRequest) { r.Image = godo.DropletCreateImage{ID: distributionIDBase + 999} },
		"image":            func(r *godo.DropletCreateRequest) { r.Image = godo.DropletCreateImage{Slug: "Bad Slug"} },
		"no image":         func(r *godo.DropletCreateRequest) { r.Image = godo.DropletCreateImage{} },
		"snapshot":         func(r *godo.DropletCreateRequest) { r.Image = godo.DropletCreateImage{ID: 42} },
		"tag":              func(r *godo.DropletCreateRequest) { r.Tags = []string{"a b"} },
		"vpc":              func(r *godo.DropletCreateRequest) { r.VPCUUID = "nope" },
		"key":              func(r *godo.DropletCreateRequest) { r.SSHKeys = []godo.DropletCreateSSHKey{{ID: 7}} },
	} {
		req := createReq("node-1")
		mod(req)
		if _, _, err := c.Droplets.Create(ctx(t), req); doStatus(err) != http.StatusUnprocessableEntity {
			t.Errorf("%s: %v, want 422", name, err)
		}
	}
	if n := len(s.State().Droplets); n != 0 {
		t.Fatalf("%d droplets made from bad requests", n)
	}
}

func TestSnapshotMustBeInTheRegion(t *testing.T) {
	_, url := start(t, Options{})
	c := doClient(t, url, DefaultToken)
	d := createDroplet(t, c, "builder")
	a, _, err := c.DropletActions.Snapshot(ctx(t), d.ID, "base")
	if err != nil {
		t.Fatal(err)
	}
	waitAction(t, c, a.ID)
	snaps, _, err := c.Snapshots.ListDroplet(ctx(t), nil)
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots %+v %v", snaps, err)
	}
	img, _, err := c.Images.GetByID(ctx(t), mustAtoi(t, snaps[0].ID))
	if err != nil || img.Name != "base" || img.Type != "snapshot" {
		t.Fatalf("image %+v %v", img, err)
	}
	req := createReq("node-2")
	req.Image = godo.DropletCreateImage{ID: img.ID}
	req.Region = "sfo3"
	if _, _, err := c.Droplets.Create(ctx(t), req); doStatus(err) != 422 {
		t.Fatalf("create where the snapshot is not: %v", err)
	}
	ta, _, err := c.ImageActions.Transfer(ctx(t), img.ID, &godo.ActionRequest{"type": "transfer", "region": "sfo3"})
	if err != nil {
		t.Fatal(err)
	}
	if got := waitAction(t, c, ta.ID); got.Status != "completed" || got.ResourceType != "image" {
		t.Fatalf("transfer %+v", got)
	}
	if _, _, err := c.Droplets.Create(ctx(t), req); err != nil {
		t.Fatalf("create after the transfer: %v", err)
	}
}

func TestPagingLinks(t *testing.T) {
	_, url := start(t, Options{})
	c := doClient(t, url, DefaultToken)
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		if _, _, err := c.Droplets.Create(ctx(t), createReq(n)); err != nil {
			t.Fatal(err)
		}
	}
	ds, resp, err := c.Droplets.ListByTag(ctx(t), "c1", &godo.ListOptions{Page: 2, PerPage: 2})
	if err != nil || len(ds) != 2 || ds[0].Name != "c" {
		t.Fatalf("page 2: %+v %v", ds, err)
	}
	if resp.Meta.Total != 5 || resp.Links.IsLastPage() {
		t.Fatalf("meta %+v links %+v", resp.Meta, resp.Links.Pages)
	}
	if p, err := resp.Links.CurrentPage(); err != nil || p != 2 {
		t.Fatalf("current page %d %v", p, err)
	}
	if !strings.Contains(resp.Links.Pages.Next, "page=3") || !strings.Contains(resp.Links.Pages.Next, "tag_name=c1") {
		t.Fatalf("next link %q", resp.Links.Pages.Next)
	}
	ds, resp, err = c.Droplets.ListByTag(ctx(t), "c1", &godo.ListOptions{Page: 3, PerPage: 2})
	if err != nil || len(ds) != 1 || !resp.Links.IsLastPage() {
		t.Fatalf("last page: %d %v %+v", len(ds), err, resp.Links.Pages)
	}
	ds, _, err = c.Droplets.ListByTag(ctx(t), "c1", &godo.ListOptions{Page: 9, PerPage: 2})
	if err != nil || len(ds) != 0 {
		t.Fatalf("past the end: %d %v", len(ds), err)
	}
	if r := get(t, url+"/v2/droplets?per_page=x", DefaultToken); r.StatusCode != 400 {
		t.Fatalf("bad per_page: %d", r.StatusCode)
	}
}

func TestDeleteByTagAndPendingEvents(t *testing.T) {
	s, url := start(t, Options{ActionDelay: time.Hour})
	c := doClient(t, url, DefaultToken)
	d, _, err := c.Droplets.Create(ctx(t), createReq("a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.DropletActions.Reboot(ctx(t), d.ID); doStatus(err) != 422 {
		t.Fatalf("action while created: %v", err)
	}
	other := createReq("b")
	other.Tags = []string{"keep"}
	if _, _, err := c.Droplets.Create(ctx(t), other); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Droplets.DeleteByTag(ctx(t), "c1"); err != nil {
		t.Fatal(err)
	}
	st := s.State()
	if len(st.Droplets) != 1 || st.Droplets[0].Name != "b" {
		t.Fatalf("after delete by tag: %+v", st.Droplets)
	}
}

func TestLoopbackIPs(t *testing.T) {
	for n, want := range map[int]string{1: "127.0.0.2", 2: "127.0.0.3", 254: "127.0.0.255", 255: "127.0.1.0"} {
		if pub, priv := LoopbackIPs(n); pub != want || priv != want {
			t.Errorf("n=%d: %s %s, want %s", n, pub, priv, want)
		}
	}
	_, url := start(t, Options{IPAllocator: func(n int) (string, string) { return "203.0.113.10", "10.1.0.10" }})
	d := createDroplet(t, doClient(t, url, DefaultToken), "x")
	pub, _ := d.PublicIPv4()
	priv, _ := d.PrivateIPv4()
	if pub != "203.0.113.10" || priv != "10.1.0.10" {
		t.Fatalf("allocator not used: %s %s", pub, priv)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
