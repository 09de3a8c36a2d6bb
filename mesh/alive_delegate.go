package mesh

import (
	"bytes"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

var _ memberlist.AliveDelegate = (*aliveDelegate)(nil)

// aliveDelegate refuses members whose metadata does not decode or validate,
// or whose NodeMeta.ID differs from their memberlist name. A refused alive
// message is dropped by memberlist, so such a member never enters the
// membership of this node (it may keep trying; it is refused every time).
//
// NotifyAlive runs under memberlist's node lock for every alive message and
// for every node of every push/pull, so the last accepted encoding per node
// is remembered to skip decoding repeats, and refusals are logged at most
// once a minute per node.
type aliveDelegate struct {
	logger *slog.Logger
	now    func() time.Time

	mu       sync.Mutex
	accepted map[string][]byte    // node name -> last accepted raw meta
	warned   map[string]time.Time // node name -> last refusal logged
}

// refusalLogEvery rate-limits refusal logs per node.
const refusalLogEvery = time.Minute

// maxTracked bounds both maps against a flood of invented names.
const maxTracked = 4096

func newAliveDelegate(logger *slog.Logger) *aliveDelegate {
	return &aliveDelegate{
		logger:   logger,
		now:      time.Now,
		accepted: make(map[string][]byte),
		warned:   make(map[string]time.Time),
	}
}

// NotifyAlive accepts or refuses peer.
func (a *aliveDelegate) NotifyAlive(peer *memberlist.Node) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if prev, ok := a.accepted[peer.Name]; ok && bytes.Equal(prev, peer.Meta) {
		return nil
	}
	err := checkPeer(peer.Name, peer.Meta)
	if err == nil {
		if len(a.accepted) >= maxTracked {
			clear(a.accepted)
		}
		a.accepted[peer.Name] = append([]byte(nil), peer.Meta...)
		return nil
	}
	delete(a.accepted, peer.Name)
	now := a.now()
	if last, ok := a.warned[peer.Name]; !ok || now.Sub(last) >= refusalLogEvery {
		if len(a.warned) >= maxTracked {
			clear(a.warned)
		}
		a.warned[peer.Name] = now
		a.logger.Warn("refusing gossip member", "member", safeName(peer.Name), "addr", peer.Address(), "err", err)
	}
	return err
}

// checkPeer validates a peer's name and metadata.
func checkPeer(name string, raw []byte) error {
	if !validNodeID(name) {
		return fmt.Errorf("%w: member name %q is not a node id", ErrInvalidMeta, safeName(name))
	}
	meta, err := decodeMeta(raw)
	if err != nil {
		return fmt.Errorf("member %s: %w", name, err)
	}
	if meta.ID != name {
		return fmt.Errorf("%w: member %s advertises id %q", ErrInvalidMeta, name, meta.ID)
	}
	return nil
}

// safeName truncates an untrusted name for logs.
func safeName(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
