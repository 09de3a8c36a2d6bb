package notify

import (
	"context"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// Source is what the notifier needs of the node: the replicated state, its
// change signal, and a leader-only commit. node.Agent provides it (View and
// Changed from its FSM, Apply from its raft store).
type Source interface {
	View(fn func(s *raftfsm.State))
	Changed() <-chan struct{}
	Apply(ctx context.Context, cmd raftfsm.Command) (any, error)
}

// Run sends new events to the webhooks until ctx ends. The leader runs it as
// a duty while it leads; it returns after its workers stopped. Failures are
// logged, never fatal: a failed cursor commit (leadership lost, no quorum) is
// retried after Config.Backoff and nothing of that batch is sent meanwhile.
func Run(ctx context.Context, src Source, cfg Config) {
	cfg = cfg.withDefaults()
	n := &notifier{src: src, cfg: cfg, targets: newTargets(cfg)}
	defer n.targets.stop()
	for {
		changed := src.Changed()
		var retry <-chan time.Time
		if !n.step(ctx) {
			retry = time.After(cfg.Backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-retry:
		}
	}
}

// notifier is Run's state between steps.
type notifier struct {
	src     Source
	cfg     Config
	targets *targets
	// sentUpTo is the highest cursor this notifier committed: it never plans
	// an event at or below it again, even if its view of the state lags.
	sentUpTo uint64
}

// batch is what one step sends: the cursor to commit and the deliveries.
type batch struct {
	upTo       uint64
	deliveries []delivery
}

// step plans one batch from the state, commits the cursor past it and hands
// it to the workers. It reports false when the commit failed (retry later).
func (n *notifier) step(ctx context.Context) bool {
	var (
		hooks   []raftfsm.Webhook
		cluster string
		b       batch
	)
	n.src.View(func(s *raftfsm.State) {
		cluster = s.Settings.ClusterName
		for _, id := range raftfsm.SortedKeys(s.Webhooks) {
			w := *s.Webhooks[id]
			u, err := raftfsm.WebhookURL(n.cfg.Sealer, w)
			if err != nil {
				n.cfg.Logger.Warn("webhook URL does not open; skipped", "webhook", w.ID, "err", err)
				continue
			}
			w.URL = u
			hooks = append(hooks, w)
		}
		if len(hooks) == 0 {
			return
		}
		b = plan(s.Events.Since(max(s.Settings.NotifiedSeq, n.sentUpTo), 0), hooks, cluster, n.cfg.MaxBatch)
	})
	ids := make(map[string]bool, len(hooks))
	for _, h := range hooks {
		ids[h.ID] = true
	}
	n.targets.sync(ctx, ids)
	if len(b.deliveries) == 0 {
		return true
	}
	// At most once: the cursor is committed before anything is sent.
	if _, err := n.src.Apply(ctx, &raftfsm.AdvanceNotified{At: n.cfg.Now(), Seq: b.upTo}); err != nil {
		if ctx.Err() == nil {
			n.cfg.Logger.Warn("advance the webhook cursor; nothing sent", "seq", b.upTo, "err", err)
		}
		return false
	}
	n.sentUpTo = b.upTo
	for _, d := range b.deliveries {
		n.targets.enqueue(d)
	}
	return true
}

// plan picks the deliveries of events (oldest first, all after the cursor):
// at most maxEvents events that some webhook wants. upTo is the last event
// the batch covers, wanted or not, so events nobody wants are passed over
// in the same commit.
func plan(events []raftfsm.Event, hooks []raftfsm.Webhook, cluster string, maxEvents int) batch {
	var b batch
	wanted := 0
	for i := range events {
		e := &events[i]
		if wanted == maxEvents {
			break
		}
		matched := false
		for j := range hooks {
			if Wants(hooks[j], *e) {
				b.deliveries = append(b.deliveries, delivery{hook: &hooks[j], cluster: cluster, event: e})
				matched = true
			}
		}
		if matched {
			wanted++
		}
		b.upTo = e.Seq
	}
	return b
}

// StoreSource is the Source of a node's raft store: its FSM's state and
// change signal, and its leader-only Apply.
func StoreSource(s *raftfsm.Store) Source { return storeSource{s} }

type storeSource struct{ s *raftfsm.Store }

func (x storeSource) View(fn func(s *raftfsm.State)) { x.s.FSM().View(fn) }
func (x storeSource) Changed() <-chan struct{}       { return x.s.FSM().Changed() }
func (x storeSource) Apply(ctx context.Context, cmd raftfsm.Command) (any, error) {
	return x.s.Apply(ctx, cmd)
}
