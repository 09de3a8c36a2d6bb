package localmode

import (
	"testing"

	"github.com/dropmesh/dropmesh/cloudops/fakeapi"
)

// Port 80 needs root: otherwise node N's edge is on BasePort+100+N, as
// README says and `local up` prints.
func TestLayoutPutsTheEdgeOnPort80OnlyForRoot(t *testing.T) {
	d := fakeapi.BackedDroplet{PrivateIP: "127.0.0.3"}
	for _, c := range []struct {
		layout Layout
		want   string
	}{
		{Layout{IPPrefix: "127.0.0.", BasePort: 19000}, "127.0.0.3:19102"},
		{Layout{IPPrefix: "127.0.0.", BasePort: 19000, EdgeOnPort80: true}, "127.0.0.3:80"},
	} {
		if got := c.layout.For(d, 2).EdgeAddr; got != c.want {
			t.Errorf("%+v: node-2's edge at %s, want %s", c.layout, got, c.want)
		}
		if got := c.layout.Node(2).EdgeAddr; got != c.want {
			t.Errorf("%+v: Node(2)'s edge at %s, want %s", c.layout, got, c.want)
		}
	}
}

func TestEdgeTLSPortOfALayout(t *testing.T) {
	root := Layout{IPPrefix: "127.0.0.", BasePort: 19000, EdgeOnPort80: true}
	if p := root.EdgeTLSPort(root.Node(1)); p != 443 {
		t.Fatalf("root: %d, want 443", p)
	}
	user := Layout{IPPrefix: "127.0.0.", BasePort: 19000}
	a, b := user.Node(1), user.Node(2)
	if pa, pb := user.EdgeTLSPort(a), user.EdgeTLSPort(b); pa == pb || pa == a.Edge || pa == b.Edge {
		t.Fatalf("user ports %d %d collide (edges %d %d)", pa, pb, a.Edge, b.Edge)
	}
	shared := Layout{IPPrefix: "127.0.0.", BasePort: 19000, Shared: true}
	s1, s2 := shared.Node(1), shared.Node(2)
	used := map[int]bool{s1.API: true, s1.Gossip: true, s1.Raft: true, s1.UI: true, s1.Edge: true, s2.API: true, s2.Gossip: true, s2.Raft: true, s2.UI: true, s2.Edge: true}
	if p := shared.EdgeTLSPort(s1); used[p] {
		t.Fatalf("shared: %d is taken", p)
	}
	if err := checkACME("letsencrypt"); err == nil {
		t.Fatal("an unknown --acme value accepted")
	}
}
