package cloudops

import (
	"errors"
	"slices"
	"testing"
)

func TestSnapshotsCreateListTransferDelete(t *testing.T) {
	e := newEnv(t, testOptions())
	e.do.cfg.PageSize = 1
	c := ctx(t)
	d, err := e.do.CreateDroplet(c, spec("builder"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.do.WaitForDropletStatus(c, d.ID, StatusActive); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"base-1", "base-2"} {
		a, err := e.do.SnapshotDroplet(c, d.ID, name)
		if err != nil {
			t.Fatal(err)
		}
		if a.Type != "snapshot" || a.ResourceID != d.ID {
			t.Fatalf("snapshot action %+v", a)
		}
		if _, err := e.do.WaitForAction(c, a.ID); err != nil {
			t.Fatal(err)
		}
	}
	ss, err := e.do.ListSnapshots(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 2 || ss[0].Name != "base-1" || ss[1].Name != "base-2" || !slices.Equal(ss[0].Regions, []string{"nyc3"}) || ss[0].CreatedAt.IsZero() {
		t.Fatalf("listed %+v", ss)
	}
	if n := e.fake.Requests("GET /v2/snapshots"); n != 2 {
		t.Fatalf("%d snapshot pages fetched with page size 1, want 2", n)
	}
	img := ss[1].ID
	for i, region := range []string{"sfo3", "ams3"} {
		a, err := e.do.TransferSnapshot(c, img, region)
		if err != nil {
			t.Fatal(err)
		}
		if a.Type != "transfer" || a.ResourceID != img {
			t.Fatalf("transfer action %+v", a)
		}
		if _, err := e.do.WaitForAction(c, a.ID); err != nil {
			t.Fatal(err)
		}
		got, err := e.do.GetSnapshot(c, img)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Regions) != 2+i || !slices.Contains(got.Regions, region) || !slices.Contains(got.Regions, "nyc3") {
			t.Fatalf("after transfer to %s regions are %v", region, got.Regions)
		}
	}
	if _, err := e.do.TransferSnapshot(c, img, "xyz9"); StatusCode(err) != 422 {
		t.Fatalf("transfer to an unknown region: %v, want 422", err)
	}
	if _, err := e.do.TransferSnapshot(c, img, "Mars 1"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("transfer to a malformed region: %v, want ErrInvalid", err)
	}
	if err := e.do.DeleteSnapshot(c, img); err != nil {
		t.Fatal(err)
	}
	if err := e.do.DeleteSnapshot(c, img); err != nil {
		t.Fatalf("deleting a gone snapshot: %v", err)
	}
	if _, err := e.do.GetSnapshot(c, img); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted snapshot: %v", err)
	}
	if _, err := e.do.FindSnapshot(c, "base-2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("find deleted snapshot: %v", err)
	}
	if _, err := e.do.SnapshotDroplet(c, d.ID, " "); !errors.Is(err, ErrInvalid) {
		t.Fatalf("blank snapshot name: %v", err)
	}
}
