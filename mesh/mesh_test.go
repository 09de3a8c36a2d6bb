package mesh

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestMembershipLifecycle: 5 meshes converge with the right metadata; one
// killed is dead everywhere (EventDead, not leave); restarted with the same
// id and address it is alive again everywhere (EventJoin); one that leaves is
// left everywhere (EventLeave, not dead).
func TestMembershipLifecycle(t *testing.T) {
	c := startCluster(t, 1, 5, nil)
	logs := make([]*eventLog, len(c.meshes))
	for i, m := range c.meshes {
		logs[i] = recordEvents(m)
	}
	for _, m := range c.meshes {
		if got := len(m.Members()); got != 5 {
			t.Fatalf("%s sees %d members, want 5", m.cfg.NodeID, got)
		}
		for _, cfg := range c.cfgs {
			mem, _ := m.Member(cfg.NodeID)
			if mem.Meta != cfg.Meta {
				t.Errorf("%s sees %s meta %+v, want %+v", m.cfg.NodeID, cfg.NodeID, mem.Meta, cfg.Meta)
			}
			if mem.Addr == "" || mem.Since.IsZero() {
				t.Errorf("%s sees %s without address or since: %+v", m.cfg.NodeID, cfg.NodeID, mem)
			}
		}
		waitFor(t, 10*time.Second, func() bool { return m.NumAlive() == 5 }, "%s NumAlive = 5", m.cfg.NodeID)
		if lm := m.LocalMember(); lm.ID != m.cfg.NodeID || lm.Status != StatusAlive {
			t.Errorf("%s LocalMember = %+v", m.cfg.NodeID, lm)
		}
	}

	// Kill n4 without leaving.
	killed := time.Now()
	victimAddr := c.meshes[4].self
	if err := c.meshes[4].Shutdown(); err != nil {
		t.Fatal(err)
	}
	others, otherLogs := c.meshes[:4], logs[:4]
	waitStatus(t, others, "n4", StatusDead, 10*time.Second)
	t.Logf("n4 dead everywhere %v after the kill", time.Since(killed))
	for i, l := range otherLogs {
		waitFor(t, 2*time.Second, func() bool { return l.has(EventDead, "n4", nil) }, "%s to emit dead for n4", others[i].cfg.NodeID)
		if l.has(EventLeave, "n4", nil) {
			t.Errorf("%s emitted leave for a killed node", others[i].cfg.NodeID)
		}
		if mem, _ := others[i].Member("n4"); mem.Since.Before(killed) {
			t.Errorf("%s: n4 dead since %v, before the kill at %v", others[i].cfg.NodeID, mem.Since, killed)
		}
	}

	// Restart n4 with the same id and address.
	cfg := c.cfgs[4]
	cfg.BindPort = portOf(t, victimAddr)
	n4 := startMesh(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n4.Join(ctx, []string{c.meshes[0].self}); err != nil {
		t.Fatal(err)
	}
	all := append(append([]*Mesh{}, others...), n4)
	waitStatus(t, all, "n4", StatusAlive, 10*time.Second)
	for i, l := range otherLogs {
		waitFor(t, 2*time.Second, func() bool { return l.count(EventJoin, "n4") >= 1 }, "%s to emit join for n4", others[i].cfg.NodeID)
	}
	waitFor(t, 5*time.Second, func() bool { return len(n4.Members()) == 5 && n4.NumAlive() == 5 }, "restarted n4 to see 5 alive")

	// n3 leaves gracefully. (Count earlier dead events: on a loaded machine
	// a false suspicion may have come and gone.)
	deadBefore := make([]int, 3)
	for i, l := range otherLogs[:3] {
		deadBefore[i] = l.count(EventDead, "n3")
	}
	if err := c.meshes[3].Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if s := c.meshes[3].LocalMember().Status; s != StatusLeft {
		t.Errorf("n3 sees itself %s after Leave, want left", s)
	}
	if err := c.meshes[3].UpdateMeta(ctx, c.cfgs[3].Meta); !errors.Is(err, ErrLeft) {
		t.Errorf("UpdateMeta after Leave = %v, want ErrLeft", err)
	}
	if _, err := c.meshes[3].Join(ctx, []string{c.meshes[0].self}); !errors.Is(err, ErrLeft) {
		t.Errorf("Join after Leave = %v, want ErrLeft", err)
	}
	rest := []*Mesh{c.meshes[0], c.meshes[1], c.meshes[2], n4}
	waitStatus(t, rest, "n3", StatusLeft, 5*time.Second)
	for i, l := range otherLogs[:3] {
		waitFor(t, 2*time.Second, func() bool { return l.has(EventLeave, "n3", nil) }, "%s to emit leave for n3", others[i].cfg.NodeID)
		if l.count(EventDead, "n3") != deadBefore[i] {
			t.Errorf("%s emitted dead for a node that left", others[i].cfg.NodeID)
		}
	}
	if err := c.meshes[3].Shutdown(); err != nil {
		t.Fatal(err)
	}
	// Shutting down after leaving does not turn left into dead.
	stays(t, time.Second, func() bool { return allSee(rest, "n3", StatusLeft) }, "n3 stays left after its shutdown (%s)", describe(rest, "n3"))
	if err := c.meshes[3].Leave(time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("Leave after Shutdown = %v, want ErrClosed", err)
	}
}

// TestForeignNodesRefused: a node with another key, or with the right key
// and another cluster name, cannot join, and neither side learns of the
// other.
func TestForeignNodesRefused(t *testing.T) {
	c := startCluster(t, 2, 2, nil)
	for _, tc := range []struct {
		name  string
		tweak func(*Config)
	}{
		{"wrong key", func(cfg *Config) { cfg.Keys = [][]byte{testKey(9)} }},
		{"wrong cluster name", func(cfg *Config) { cfg.ClusterName = "other-cluster" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "intruder", nodeIP(2, 10))
			tc.tweak(&cfg)
			in := startMesh(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			n, err := in.Join(ctx, []string{c.meshes[0].self, c.meshes[1].self})
			if err == nil || n != 0 {
				t.Fatalf("Join = %d, %v; want failure", n, err)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Join error %v does not wrap the context's", err)
			}
			stays(t, 500*time.Millisecond, func() bool {
				return len(in.Members()) == 1 && !knows(c.meshes[0], "intruder") && !knows(c.meshes[1], "intruder")
			}, "no one learns of the intruder")
			c.waitAllAlive(time.Second)
		})
	}
}

// TestUpdateMeta: an update reaches every member (event and new metadata);
// invalid updates are refused and change nothing.
func TestUpdateMeta(t *testing.T) {
	c := startCluster(t, 4, 3, nil)
	logs := make([]*eventLog, len(c.meshes))
	for i, m := range c.meshes {
		logs[i] = recordEvents(m)
	}
	meta := c.cfgs[1].Meta
	meta.Version, meta.API, meta.Proto = "v2.0.0", nodeIP(4, 1)+":19999", 7
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.meshes[1].UpdateMeta(ctx, meta); err != nil {
		t.Fatal(err)
	}
	for i, m := range c.meshes {
		waitFor(t, 5*time.Second, func() bool { mem, _ := m.Member("n1"); return mem.Meta == meta }, "%s to see n1's new meta", m.cfg.NodeID)
		waitFor(t, 2*time.Second, func() bool {
			return logs[i].has(EventUpdate, "n1", func(ev Event) bool { return ev.Member.Meta == meta })
		}, "%s to emit an update for n1", m.cfg.NodeID)
	}

	bad := []struct {
		name string
		meta NodeMeta
		want error
	}{
		{"other id", NodeMeta{ID: "n2", Raft: meta.Raft}, ErrInvalidMeta},
		{"bad raft address", NodeMeta{ID: "n1", Raft: "nowhere"}, ErrInvalidMeta},
		{"bad ip", NodeMeta{ID: "n1", PublicIP: "1.2.3"}, ErrInvalidMeta},
		{"too large", NodeMeta{ID: "n1", API: longHost(200) + ":1", UI: longHost(200) + ":2", Raft: longHost(200) + ":3"}, ErrMetaTooLarge},
	}
	for _, b := range bad {
		if err := c.meshes[1].UpdateMeta(ctx, b.meta); !errors.Is(err, b.want) {
			t.Errorf("UpdateMeta(%s) = %v, want %v", b.name, err, b.want)
		}
	}
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if err := c.meshes[1].UpdateMeta(cctx, c.cfgs[1].Meta); !errors.Is(err, context.Canceled) {
		t.Errorf("UpdateMeta(cancelled ctx) = %v", err)
	}
	stays(t, 300*time.Millisecond, func() bool {
		for _, m := range c.meshes {
			if mem, _ := m.Member("n1"); mem.Meta != meta {
				return false
			}
		}
		return true
	}, "refused updates change nothing")
}

// longHost returns a valid host name of about n characters.
func longHost(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a'
	}
	return string(b)
}

// TestSuspectAndRefute: a node cut off from the network (not stopped) is
// suspected by the others (EventSuspect, Since moves); reconnected before
// its suspicion times out, it refutes and is alive again everywhere
// (EventUpdate), never dead.
func TestSuspectAndRefute(t *testing.T) {
	var cut *cutTransport
	c := startCluster(t, 10, 4, func(cfg *Config) {
		// A long suspicion window, so the test reconnects well before it ends.
		cfg.SuspicionMult, cfg.SuspicionMaxTimeoutMult = 20, 2
		if cfg.NodeID == "n3" {
			cut = newCutTransport(t, cfg.BindAddr)
			cfg.Transport = cut
		}
	})
	logs := make([]*eventLog, 3)
	for i := range logs {
		logs[i] = recordEvents(c.meshes[i])
	}
	others := c.meshes[:3]
	before, _ := others[0].Member("n3")
	cut.cut.Store(true)
	waitStatus(t, others, "n3", StatusSuspect, 15*time.Second)
	cut.cut.Store(false)
	waitStatus(t, others, "n3", StatusAlive, 15*time.Second)
	for i, l := range logs {
		waitFor(t, time.Second, func() bool {
			return l.has(EventUpdate, "n3", func(ev Event) bool { return ev.Member.Status == StatusAlive })
		},
			"%s to emit the refutation", others[i].cfg.NodeID)
		if !l.has(EventSuspect, "n3", nil) {
			t.Errorf("%s emitted no suspect event", others[i].cfg.NodeID)
		}
		if l.has(EventDead, "n3", nil) {
			t.Errorf("%s declared n3 dead", others[i].cfg.NodeID)
		}
	}
	if after, _ := others[0].Member("n3"); !after.Since.After(before.Since) {
		t.Errorf("Since did not move: before %v, after %v", before.Since, after.Since)
	}
}

// TestRestartAtNewAddress: a node that dies and comes back with the same id
// from another address (a replaced droplet, new ports) is accepted once
// DeadNodeReclaimTime has passed, with its new address and metadata.
func TestRestartAtNewAddress(t *testing.T) {
	reclaim := func(cfg *Config) { cfg.DeadNodeReclaimTime = 300 * time.Millisecond }
	c := startCluster(t, 12, 3, reclaim)
	_ = c.meshes[2].Shutdown()
	others := c.meshes[:2]
	waitStatus(t, others, "n2", StatusDead, 15*time.Second)
	// memberlist refuses the id at another address until it has been dead
	// for DeadNodeReclaimTime everywhere (a join before that is a conflict
	// that only a later push-pull would resolve).
	waitFor(t, 15*time.Second, func() bool {
		for _, m := range others {
			if mem, _ := m.Member("n2"); mem.Status != StatusDead || time.Since(mem.Since) < 2*300*time.Millisecond {
				return false
			}
		}
		return true
	}, "n2 dead for twice the reclaim time everywhere (%s)", describe(others, "n2"))

	cfg := testConfig(t, "n2", nodeIP(12, 9))
	reclaim(&cfg)
	moved := startMesh(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := moved.Join(ctx, []string{c.meshes[0].self}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, func() bool {
		for _, m := range others {
			if mem, _ := m.Member("n2"); mem.Status != StatusAlive || mem.Addr != moved.self || mem.Meta != cfg.Meta {
				return false
			}
		}
		return true
	}, "n2 alive at %s everywhere (%s)", moved.self, describe(others, "n2"))
}
