package imagepeer_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/imagepeer"
	"github.com/dropmesh/dropmesh/node/imagepeer/enginetest"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/raftfsm"
)

func canonRef(ref string) string {
	c, err := runtime.ParseImageRef(ref)
	if err != nil {
		return ""
	}
	return c
}

func TestLedgerRecordKeepsFirstTimeAndForgets(t *testing.T) {
	l := imagepeer.NewLedger(filepath.Join(t.TempDir(), "images", "ledger.json"))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	idA := "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	idB := "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	if err := l.Record("docker.io/library/a:1", idA, t0); err != nil {
		t.Fatal(err)
	}
	if err := l.Record("docker.io/library/a:1", idA, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := l.Record("docker.io/library/b:latest", idA, t0); err != nil {
		t.Fatal(err)
	}
	if err := l.Record("docker.io/library/b:latest", idB, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := l.Record("x", "not-a-digest", t0); err == nil {
		t.Fatal("a bad id was recorded")
	}
	m, err := l.Entries()
	if err != nil {
		t.Fatal(err)
	}
	if got := m["docker.io/library/a:1"]; got.ID != idA || !got.At.Equal(t0) {
		t.Fatalf("a: %+v, want the first time kept", got)
	}
	if got := m["docker.io/library/b:latest"]; got.ID != idB || !got.At.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("b: %+v, want a new id to start again", got)
	}
	if err := l.Forget("docker.io/library/a:1"); err != nil {
		t.Fatal(err)
	}
	if m, _ := l.Entries(); len(m) != 1 {
		t.Fatalf("after forget: %v", m)
	}
}

func TestUnusedImagesKeepsReferencedRollbackRunningAndYoung(t *testing.T) {
	now := time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)
	old, young := now.Add(-48*time.Hour), now.Add(-time.Hour)
	id := func(c byte) string {
		b := make([]byte, 64)
		for i := range b {
			b[i] = c
		}
		return "sha256:" + string(b)
	}
	s := &raftfsm.State{
		Services: map[string]*raftfsm.Service{"w/p/e/web": {
			Spec: raftfsm.ServiceSpec{Image: "current:2"},
			Revisions: []raftfsm.Revision{
				{Generation: 1, Spec: raftfsm.ServiceSpec{Image: "rollback:1"}},
				{Generation: 2, Spec: raftfsm.ServiceSpec{Image: "current:2"}},
			},
		}},
		Instances: map[string]*raftfsm.Instance{"i1": {ID: "i1", Service: "w/p/e/other", Node: "n2", ImageDigest: id('d')}},
	}
	entries := map[string]imagepeer.LedgerEntry{
		canonRef("current:2"):  {ID: id('a'), At: old},
		canonRef("rollback:1"): {ID: id('b'), At: old},
		canonRef("gone:1"):     {ID: id('c'), At: old},
		canonRef("running:1"):  {ID: id('d'), At: old},
		canonRef("young:1"):    {ID: id('e'), At: young},
	}
	got := imagepeer.UnusedImages(s, entries, canonRef, now, 24*time.Hour)
	if want := []string{canonRef("gone:1")}; !slices.Equal(got, want) {
		t.Fatalf("unused %v, want %v", got, want)
	}
}

// TestHousekeepingRemovesOnlyUnusedImagesDropmeshPut runs housekeeping on
// a private engine: images pulled from a registry and recorded in the
// ledger, one of them unreferenced past the grace (removed, the engine's
// image disk use goes down), one referenced by the current spec, one by a
// rollback revision, one too young, one used by a container (all kept),
// and the operator's own images: one never recorded, one whose recorded
// reference the operator re-tagged to another image (never touched).
func TestHousekeepingRemovesOnlyUnusedImagesDropmeshPut(t *testing.T) {
	e := enginetest.Start(t)
	rt := e.RT
	reg := runtimetest.StartRegistry(t)
	t.Setenv("DOCKER_HOST", e.Host) // runtimetest.PushImage's client: this engine
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	now := time.Now().UTC()
	old, young := now.Add(-48*time.Hour), now.Add(-time.Hour)
	l := imagepeer.NewLedger(filepath.Join(t.TempDir(), "ledger.json"))

	// pulled puts image local into the engine as a registry pull does and
	// records it as the agent does (canonical reference, the pull's id).
	pulled := func(local, name string, at time.Time) (string, string) {
		ref := reg + "/hk/" + name + ":1"
		runtimetest.PushImage(t, rt, local, ref)
		_ = rt.RemoveImage(ctx, ref)
		_ = rt.RemoveImage(ctx, local)
		info, err := rt.EnsureImage(ctx, ref, nil, true, nil)
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		if err := l.Record(canonRef(ref), info.ID, at); err != nil {
			t.Fatal(err)
		}
		return ref, info.ID
	}
	build(t, rt, "hk/gone:1", randomBytes(t, 256<<10))
	gone, goneID := pulled("hk/gone:1", "gone", old)
	build(t, rt, "hk/current:1", randomBytes(t, 64<<10))
	current, _ := pulled("hk/current:1", "current", old)
	build(t, rt, "hk/rollback:1", randomBytes(t, 64<<10))
	rollback, _ := pulled("hk/rollback:1", "rollback", old)
	build(t, rt, "hk/young:1", randomBytes(t, 64<<10))
	youngRef, _ := pulled("hk/young:1", "young", young)
	inUse, _ := pulled(runtimetest.BuildTestImage(t, rt, "1", nil), "inuse", old)
	runtimetest.StartTestContainer(t, rt, runtime.ContainerSpec{Image: inUse})
	mineID := build(t, rt, "hk/mine:1", randomBytes(t, 64<<10))
	retagged := build(t, rt, "hk/retagged:1", randomBytes(t, 64<<10))
	if err := l.Record(canonRef("hk/retagged:1"), goneID, old); err != nil { // the operator re-tagged it since
		t.Fatal(err)
	}

	s := &raftfsm.State{Services: map[string]*raftfsm.Service{"w/p/e/web": {
		Spec: raftfsm.ServiceSpec{Image: current},
		Revisions: []raftfsm.Revision{
			{Generation: 1, Spec: raftfsm.ServiceSpec{Image: rollback}},
			{Generation: 2, Spec: raftfsm.ServiceSpec{Image: current}},
		},
	}}}
	entries, err := l.Entries()
	if err != nil {
		t.Fatal(err)
	}
	stale := imagepeer.UnusedImages(s, entries, canonRef, now, 24*time.Hour)
	if want := []string{canonRef("hk/retagged:1"), canonRef(gone), canonRef(inUse)}; !slices.Equal(stale, sorted(want)) {
		t.Fatalf("unused %v, want %v", stale, sorted(want))
	}
	before, err := rt.ImagesDiskUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	removed, err := l.Remove(ctx, rt, stale, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{canonRef(gone)}; !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	if _, err := rt.InspectImage(ctx, gone); err == nil {
		t.Fatalf("%s is still in the engine", gone)
	}
	for _, ref := range []string{current, rollback, youngRef, inUse} {
		if _, err := rt.InspectImage(ctx, ref); err != nil {
			t.Fatalf("%s was removed: %v", ref, err)
		}
	}
	for ref, id := range map[string]string{"hk/mine:1": mineID, "hk/retagged:1": retagged} {
		if info, err := rt.InspectImage(ctx, ref); err != nil || info.ID != id {
			t.Fatalf("the operator's %s was touched: %+v %v", ref, info, err)
		}
	}
	after, err := rt.ImagesDiskUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image disk use %d -> %d bytes", before, after)
	if after >= before {
		t.Fatalf("image disk use %d -> %d, want it down", before, after)
	}
	entries, _ = l.Entries()
	if _, ok := entries[canonRef("hk/retagged:1")]; ok {
		t.Fatal("the re-tagged reference is still in the ledger")
	}
	if _, ok := entries[canonRef(gone)]; ok {
		t.Fatal("the removed reference is still in the ledger")
	}
	if _, ok := entries[canonRef(inUse)]; !ok {
		t.Fatal("the image in use was forgotten")
	}
}

func sorted(s []string) []string { slices.Sort(s); return s }
