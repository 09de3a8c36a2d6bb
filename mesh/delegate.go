package mesh

import (
	"sync"

	"github.com/hashicorp/memberlist"
)

var _ memberlist.Delegate = (*delegate)(nil)

// delegate is Mesh's memberlist.Delegate: it supplies this node's encoded
// NodeMeta. Mesh sends no user messages and no user state, so the other
// methods are no-ops.
type delegate struct {
	mu   sync.RWMutex
	meta []byte // encoded, validated, at most MaxMetaSize bytes
}

// setMeta replaces the advertised metadata; b comes from encodeMeta.
func (d *delegate) setMeta(b []byte) {
	d.mu.Lock()
	d.meta = b
	d.mu.Unlock()
}

// NodeMeta returns the encoded metadata. encodeMeta already enforced
// MaxMetaSize; limit is checked again because memberlist panics beyond it.
func (d *delegate) NodeMeta(limit int) []byte {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if len(d.meta) > limit {
		return nil
	}
	return append([]byte(nil), d.meta...)
}

// NotifyMsg ignores user messages: Mesh sends none, and a peer's are untrusted.
func (d *delegate) NotifyMsg([]byte) {}

// GetBroadcasts has nothing to piggyback.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState has no user state to exchange on push/pull.
func (d *delegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState ignores a peer's user state.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {}
