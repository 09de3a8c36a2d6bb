package backup

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/testkit"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// startRun runs the scheduler until the test ends; stop ends it and waits.
func startRun(t *testing.T, src Source, cfg Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, src, testAEAD(t), cfg)
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return 10 s after its context ended")
		}
	}
	t.Cleanup(stop)
	return stop
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	infos, err := List(context.Background(), DirTarget(dir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, i := range infos {
		out = append(out, i.Name)
	}
	return out
}

// poke commits a harmless command: a state change that wakes Run up.
func (n *node) poke() {
	n.must(&raftfsm.AppendEvent{At: t0, Event: raftfsm.Event{Kind: "test", Message: "poke"}})
}

func TestRunBacksUpOnScheduleAndKeeps(t *testing.T) {
	n := newNode(t)
	dir := t.TempDir()
	clk := newClock(t0)
	startRun(t, StoreSource(n.store), testConfig(t, clk))
	n.poke() // disabled: nothing happens
	n.setBackup(raftfsm.BackupSettings{Enabled: true, Dir: dir, Interval: raftfsm.Duration(time.Minute), Keep: 2})
	testkit.WaitFor(t, 10*time.Second, "the first backup (none existed)", func() bool { return len(names(t, dir)) == 1 })

	clk.Add(30 * time.Second)
	n.poke() // not due yet
	clk.Add(31 * time.Second)
	n.poke() // due
	testkit.WaitFor(t, 10*time.Second, "the second backup", func() bool { return len(names(t, dir)) == 2 })
	clk.Add(61 * time.Second)
	n.poke()
	want := []string{backupName(t0.Add(122 * time.Second)), backupName(t0.Add(61 * time.Second))}
	testkit.WaitFor(t, 10*time.Second, "the third backup, the first pruned", func() bool {
		got := names(t, dir)
		return len(got) == 2 && got[0] == want[0] && got[1] == want[1]
	})
	// The not-yet-due poke at +30s made no backup.
	if _, err := os.Stat(filepath.Join(dir, backupName(t0.Add(30*time.Second))+suffixManifest)); err == nil {
		t.Fatal("a backup was taken before the interval was over")
	}
}

// A new leader finds the newest backup at the target and waits for the
// interval instead of backing up at once.
func TestRunNewLeaderWaitsForTheInterval(t *testing.T) {
	n := newNode(t)
	dir := t.TempDir()
	n.setBackup(raftfsm.BackupSettings{Enabled: true, Dir: dir, Interval: raftfsm.Duration(time.Hour)})
	clk := newClock(t0)
	if _, err := BackupNow(context.Background(), StoreSource(n.store), testAEAD(t), testConfig(t, clk)); err != nil {
		t.Fatal(err)
	}
	clk.Add(10 * time.Minute)
	startRun(t, StoreSource(n.store), testConfig(t, clk))
	n.poke()
	clk.Add(51 * time.Minute)
	n.poke()
	testkit.WaitFor(t, 10*time.Second, "the backup an hour after the last", func() bool { return len(names(t, dir)) == 2 })
	if got := names(t, dir); got[0] != backupName(t0.Add(61*time.Minute)) {
		t.Fatalf("backups = %v: the new leader backed up at the wrong time", got)
	}
}

// A failed backup is retried after RetryInterval, not at every state change.
func TestRunRetriesAfterAFailure(t *testing.T) {
	n := newNode(t)
	root := t.TempDir()
	dir := filepath.Join(root, "backups")
	if err := os.WriteFile(dir, []byte("a file where the directory should be"), 0o600); err != nil {
		t.Fatal(err)
	}
	n.setBackup(raftfsm.BackupSettings{Enabled: true, Dir: dir, Interval: raftfsm.Duration(time.Hour)})
	clk := newClock(t0)
	cfg := testConfig(t, clk)
	cfg.RetryInterval = 5 * time.Minute
	src := &countingSource{Source: StoreSource(n.store), changed: n.store.FSM().Changed}
	startRun(t, src, cfg)
	testkit.WaitFor(t, 10*time.Second, "the first (failing) attempt", func() bool { return src.count() >= 1 })
	for range 3 {
		n.poke()
	}
	clk.Add(4 * time.Minute)
	n.poke()
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Minute)
	n.poke()
	testkit.WaitFor(t, 10*time.Second, "the retry's backup", func() bool { return len(names(t, dir)) == 1 })
	if c := src.count(); c != 2 {
		t.Fatalf("%d backup attempts, want 2 (the failure and one retry after RetryInterval)", c)
	}
}

// countingSource counts the backups attempted (each takes a snapshot first).
type countingSource struct {
	Source
	changed   func() <-chan struct{}
	snapshots atomic.Int32
}

func (c *countingSource) Snapshot() error {
	c.snapshots.Add(1)
	return c.Source.Snapshot()
}

func (c *countingSource) Changed() <-chan struct{} { return c.changed() }

func (c *countingSource) count() int { return int(c.snapshots.Load()) }
