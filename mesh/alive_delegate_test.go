package mesh

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// rawMeta is a memberlist.Delegate advertising arbitrary metadata.
type rawMeta struct{ meta []byte }

func (d *rawMeta) NodeMeta(limit int) []byte                  { return d.meta }
func (d *rawMeta) NotifyMsg([]byte)                           {}
func (d *rawMeta) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *rawMeta) LocalState(join bool) []byte                { return nil }
func (d *rawMeta) MergeRemoteState(buf []byte, join bool)     {}

// startRaw starts a bare memberlist with the test cluster's key and label
// (so it gets past encryption) advertising meta under name.
func startRaw(t *testing.T, name, ip string, meta []byte) *memberlist.Memberlist {
	t.Helper()
	kr, err := memberlist.NewKeyring(nil, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	c := memberlist.DefaultLocalConfig()
	c.Name, c.BindAddr, c.BindPort = name, ip, 0
	c.Label, c.Keyring = "test-cluster", kr
	c.Delegate = &rawMeta{meta: meta}
	c.Logger = newMemberlistLogger(testLogger(t))
	ml, err := memberlist.Create(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ml.Shutdown() })
	return ml
}

// TestGarbageMetaRefused: members with the right key and label but metadata
// that does not decode, does not validate, names another node, or an
// invalid node name are refused by every mesh node; nothing crashes and the
// mesh stays healthy.
func TestGarbageMetaRefused(t *testing.T) {
	c := startCluster(t, 7, 3, nil)
	bad := []struct{ name, meta string }{
		{"garbage", "\x00\xff{not json"},
		{"empty", ""},
		{"wrongid", `{"id":"n1","raft":"127.0.0.1:7947"}`},
		{"badaddr", `{"id":"badaddr","raft":"nowhere"}`},
		{"trailing", `{"id":"trailing"} {"id":"x"}`},
		{"Bad Name!", `{"id":"Bad Name!"}`},
		{"deep", `{"id":"deep","region":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`},
	}
	for i, b := range bad {
		ml := startRaw(t, b.name, nodeIP(7, 20+i), []byte(b.meta))
		if _, err := ml.Join([]string{c.meshes[i%3].self}); err != nil {
			t.Fatalf("raw %s join: %v", b.name, err)
		}
	}
	stays(t, time.Second, func() bool {
		for _, m := range c.meshes {
			if len(m.Members()) != 3 {
				return false
			}
		}
		return true
	}, "meshes list only themselves")
	c.waitAllAlive(10 * time.Second)
	for _, b := range bad {
		for _, m := range c.meshes {
			if knows(m, b.name) {
				t.Errorf("%s lists %q", m.cfg.NodeID, b.name)
			}
		}
	}
}

func TestAliveDelegateCachesAndRateLimits(t *testing.T) {
	a := newAliveDelegate(testLogger(t))
	good := &memberlist.Node{Name: "n1", Meta: []byte(`{"id":"n1"}`)}
	if err := a.NotifyAlive(good); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.accepted["n1"]; !ok {
		t.Fatal("accepted meta not cached")
	}
	bad := &memberlist.Node{Name: "n1", Meta: []byte(`{"id":"n2"}`)}
	if err := a.NotifyAlive(bad); !errors.Is(err, ErrInvalidMeta) {
		t.Fatalf("NotifyAlive(foreign id) = %v", err)
	}
	if _, ok := a.accepted["n1"]; ok {
		t.Fatal("refused meta left the old one cached")
	}
	first := a.warned["n1"]
	_ = a.NotifyAlive(bad)
	if a.warned["n1"] != first {
		t.Error("second refusal within a minute was logged again")
	}
}

// TestJoinInput: bad join input is refused at once; joining nobody
// reachable ends with the context.
func TestJoinInput(t *testing.T) {
	m := startMesh(t, testConfig(t, "lonely", nodeIP(7, 50)))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	for _, addrs := range [][]string{nil, {""}, {"a b:1"}, {"127.0.0.1:99999"}} {
		if _, err := m.Join(ctx, addrs); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Join(%q) = %v, want ErrInvalidConfig", addrs, err)
		}
	}
	// A closed port on loopback: every attempt fails fast, retries until ctx.
	if _, err := m.Join(ctx, []string{nodeIP(7, 51) + ":1"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Join(unreachable) = %v, want deadline exceeded", err)
	}
	_ = m.Shutdown()
	if _, err := m.Join(context.Background(), []string{nodeIP(7, 51) + ":1"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Join after Shutdown = %v, want ErrClosed", err)
	}
}
