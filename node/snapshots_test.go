package node

import (
	"archive/tar"
	"bytes"
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
	"github.com/dropmesh/dropmesh/cloudops/fakeapi/fakeapitest"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// contextTar is a build context holding files (name -> content).
func contextTar(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, name := range raftfsm.SortedKeys(files) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// crashLeader kills the leader the way a power loss would, waits for the
// next one, restarts the killed node from its data dir and waits until all
// three are voters again, so that the cluster can lose a leader once more.
func (c *testCluster) crashLeader(t *testing.T) (next *testNode) {
	t.Helper()
	old := c.leader()
	c.stop(old, true)
	next = c.leader()
	if next == old {
		t.Fatal("the crashed node still leads")
	}
	c.start(old)
	waitFor(t, 30*time.Second, "the restarted node to be a voter again", func() bool {
		return allVoters(voters(t, next.agent), "node-1", "node-2", "node-3")
	})
	return c.leader()
}

// A custom snapshot end to end, on the real Docker engine and the fake
// cloud: a context FROM scratch is uploaded to one node, built as
// local/base:latest on the node with a droplet, and the leader snapshots
// that droplet under the user's name and replicates it to every region of
// the cluster. The leader is killed while the snapshot action runs and
// again while the transfers run; each new leader resumes from the state
// and the provider, and the cloud ends with one snapshot, taken once, in
// every region.
func TestCustomSnapshotSurvivesLeaderChanges(t *testing.T) {
	rt := runtimetest.NewTestRuntime(t)
	opts := fakeapi.DefaultOptions()
	opts.ActionDelay = 4 * time.Second // a snapshot and a transfer run long enough to kill the leader during them
	fake, url := fakeapitest.Start(t, opts)
	src := fakeDroplet(t, url, "snap-node-3", "nyc3")
	regions := []string{"ams3", "fra1", "nyc3"}
	c := startCluster(t, 3, func(i int, cfg *Config) {
		cfg.Init.DOBaseURL, cfg.ClusterName = url, "snap"
		cfg.CloudPollInterval = 100 * time.Millisecond
		if i == 3 { // the only node with a droplet, and with Docker: it builds the image
			cfg.NoRuntime, cfg.DropletID = false, src.ID
		}
	})
	leader := c.leader()
	waitFor(t, 20*time.Second, "three voters", func() bool {
		return allVoters(voters(t, leader.agent), "node-1", "node-2", "node-3")
	})
	enableDO(t, leader, func(r *control.SettingsRequest) { r.Regions = regions })

	marker := runtimetest.RandomSuffix()
	cmd := "/base-" + marker
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Uploaded to node-1: node-3 fetches it from there to build it.
	info, err := c.nodes[0].agent.StoreContext(ctx, bytes.NewReader(contextTar(t, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY marker /marker\nCMD [\"" + cmd + "\"]\n",
		"marker":     marker,
	})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Only the image this test built: another test may have built its own since.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if img, err := rt.InspectImage(ctx, BaseImage); err == nil && slices.Equal(img.Cmd, []string{cmd}) {
			runtimetest.RemoveTestImage(t, rt, BaseImage)
		}
	})
	const name = "my-llm-ready-snapshot"
	if err := leader.agent.CreateSnapshot(ctx, control.SnapshotRequest{Name: name, Context: info.Digest}); err != nil {
		t.Fatal(err)
	}
	snapshotOf := func(n *testNode) (sn raftfsm.Snapshot) {
		n.agent.View(func(s *raftfsm.State) {
			if p, ok := s.Cloud.Snapshots[name]; ok {
				sn = *p
			}
		})
		return sn
	}
	if sn := snapshotOf(leader); sn.SourceNode != "node-3" || !slices.Equal(sn.WantRegions, regions) {
		t.Fatalf("snapshot %+v: want it built on node-3, for %v", sn, regions)
	}
	snapshotActions := func(status string) int {
		n := 0
		for _, d := range fake.State().Droplets {
			for _, a := range d.Actions {
				if d.ID == src.ID && a.Type == "snapshot" && (status == "" || a.Status == status) {
					n++
				}
			}
		}
		return n
	}

	// Snapshotting the droplet, its action in progress at the provider.
	waitFor(t, 2*time.Minute, "the droplet snapshot in progress", func() bool {
		sn := snapshotOf(c.leader())
		if sn.Status == raftfsm.SnapshotFailed {
			t.Fatalf("snapshot failed: %s", sn.Error)
		}
		return sn.Phase == snapPhaseSnapshot && snapshotActions("in-progress") == 1
	})
	leader = c.crashLeader(t)

	// Replicating, a transfer in progress at the provider.
	waitFor(t, 2*time.Minute, "the transfers in progress", func() bool {
		sn := snapshotOf(leader)
		if sn.Status == raftfsm.SnapshotFailed || sn.Status == raftfsm.SnapshotReady {
			t.Fatalf("snapshot %s before its transfers could be interrupted: %s", sn.Status, sn.Error)
		}
		return sn.Phase == snapPhaseReplicate && fake.Requests("POST /v2/images/{id}/actions") > 0
	})
	leader = c.crashLeader(t)

	c.waitState(leader, 2*time.Minute, "the snapshot ready in every region", func(s *raftfsm.State) bool {
		sn, ok := s.Cloud.Snapshots[name]
		if ok && sn.Status == raftfsm.SnapshotFailed {
			t.Fatalf("snapshot failed: %s", sn.Error)
		}
		return ok && sn.Status == raftfsm.SnapshotReady && len(s.Cloud.PendingIntents()) == 0
	})

	sn := snapshotOf(leader)
	if !slices.Equal(sn.Regions, regions) || sn.Progress != 100 || sn.Phase != "" || sn.Error != "" {
		t.Fatalf("state: %+v, want ready in %v", sn, regions)
	}
	var images []string
	for _, s := range fake.State().Snapshots {
		if s.Name == name {
			images = append(images, s.ID)
			if !slices.Equal(s.Regions, regions) {
				t.Fatalf("the snapshot is in %v at the provider, want %v", s.Regions, regions)
			}
		}
	}
	if len(images) != 1 || images[0] != strconv.Itoa(sn.ID) {
		t.Fatalf("provider snapshots named %s: %v, want one, image %d", name, images, sn.ID)
	}
	if n := snapshotActions(""); n != 1 {
		t.Fatalf("the droplet was snapshotted %d times", n)
	}
	leader.agent.View(func(s *raftfsm.State) {
		creates := 0
		for _, in := range s.Cloud.Intents {
			if in.Target == name && in.Kind == raftfsm.IntentCreateSnapshot {
				creates++
				if in.Status != raftfsm.IntentDone {
					t.Fatalf("create_snapshot intent %s is %s: %s", in.ID, in.Status, in.Error)
				}
			}
		}
		if creates != 1 {
			t.Fatalf("%d create_snapshot intents, want 1", creates)
		}
	})
	// The image on the node is the uploaded context's.
	img, err := rt.InspectImage(ctx, BaseImage)
	if err != nil || !slices.Equal(img.Cmd, []string{cmd}) {
		t.Fatalf("%s: %+v %v, want the uploaded context's (CMD %s)", BaseImage, img, err, cmd)
	}
}
