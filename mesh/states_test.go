package mesh

import (
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// TestStateReadLabelledAndEncrypted: the state reader reads the whole
// table of a memberlist that requires the cluster label and the gossip key,
// and a reader with another label or key reads nothing. (A stream with an
// empty label in memberlist's logs therefore never comes from a state read.)
func TestStateReadLabelledAndEncrypted(t *testing.T) {
	c := startCluster(t, 14, 3, nil)
	m := c.meshes[0]
	rows, err := m.reader.read(m.self)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var names []string
	for _, r := range rows {
		names = append(names, r.name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"n0", "n1", "n2"}) {
		t.Fatalf("read rows %v, want n0 n1 n2", names)
	}

	for _, tc := range []struct {
		name, label string
		key         []byte
	}{
		{"other label", "other-cluster", testKey(1)},
		{"no label", "", testKey(1)},
		{"other key", m.cfg.ClusterName, testKey(2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kr, err := memberlist.NewKeyring(nil, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			name, err := newReaderName()
			if err != nil {
				t.Fatal(err)
			}
			r, err := newStateReader(name, tc.label, kr, time.Second, dialerFor(nil), testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.shutdown() })
			if rows, err := r.read(m.self); err == nil {
				t.Fatalf("read %d rows through a reader with %s", len(rows), tc.name)
			}
		})
	}
}
