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
