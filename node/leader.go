package node

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/node/backup"
	"github.com/dropmesh/dropmesh/node/egress"
	"github.com/dropmesh/dropmesh/node/notify"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// duty is one of the leader's jobs. Each runs in its own goroutine while
// this node leads and stops when leadership is lost.
type duty struct {
	name string
	run  func(ctx context.Context)
}

// duties lists the leader's jobs.
func (a *Agent) duties() []duty {
	return []duty{
		{"autopilot", a.runAutopilot},
		{"registrar", a.runRegistrar},
		{"rollout", a.runRollouts},
		{"healer", a.runHealer},
		{"restarts", a.runRestarts},
		{"cloud", a.runCloud},
		{"housekeeping", a.runHousekeeping},
		{"gossip-rotation", a.runGossipRotation},
		{"acme", a.runACME},
		{"notify", func(ctx context.Context) {
			client := egress.Policy{AllowFrom: a.egressAllowed}.Client(10 * time.Second)
			notify.Run(ctx, a, notify.Config{HTTPClient: client, Logger: a.logger.With("duty", "notify"), Now: a.now, Sealer: a.keys.Sealer})
		}},
		{"backup", func(ctx context.Context) {
			backup.Run(ctx, backup.StoreSource(a.store), a.keys.Sealer, backup.Config{Logger: a.logger.With("duty", "backup"), Now: a.now, Key: a.keys.Backup})
		}},
	}
}

// Apply commits a command on the leader (the leader duties of other
// packages use it: notify). It is apply, with the command-version check.
func (a *Agent) Apply(ctx context.Context, cmd raftfsm.Command) (any, error) {
	return a.apply(ctx, cmd)
}

// leaderLoop starts the duties when this node becomes leader and stops them
// when it loses leadership. Leadership changes come from raft's NotifyCh
// through Store.LeadershipChanged, which never drops a change.
func (a *Agent) leaderLoop(ctx context.Context) {
	var stop func()
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	for {
		changed := a.store.LeadershipChanged()
		switch leading := a.store.IsLeader(); {
		case leading && stop == nil:
			stop = a.startDuties(ctx)
		case !leading && stop != nil:
			stop()
			stop = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// startDuties runs lead until the returned stop is called.
func (a *Agent) startDuties(ctx context.Context) (stop func()) {
	dctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.lead(dctx)
	}()
	return func() {
		cancel()
		<-done
		a.logger.Info("leader duties stopped")
	}
}

// lead runs while this node is leader: it waits for every committed entry
// to be applied (barrier), initialises a fresh cluster, then runs the duties.
func (a *Agent) lead(ctx context.Context) {
	for {
		bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := a.store.Barrier(bctx)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil || errors.Is(err, raftfsm.ErrNotLeader) {
			return
		}
		a.logger.Warn("barrier on taking leadership failed; retrying", "err", err)
	}
	a.logger.Info("leading the cluster", "term", a.store.Term())
	if err := a.initCluster(ctx); err != nil {
		a.logger.Error("initialise cluster", "err", err)
	}
	var wg sync.WaitGroup
	for _, d := range a.duties() {
		wg.Add(1)
		go func(d duty) {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					a.logger.Error("leader duty panicked", "duty", d.name, "panic", p)
				}
			}()
			d.run(ctx)
		}(d)
	}
	wg.Wait()
}

// every calls fn now, then on each tick, state change or leader kick until
// ctx ends. fn's errors are logged, never fatal.
func (a *Agent) every(ctx context.Context, name string, interval time.Duration, onChange bool, fn func(ctx context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	log := a.logger.With("duty", name)
	for {
		changed := a.fsm.Changed()
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			log.Warn("leader duty failed", "err", err)
		}
		var changeCh <-chan struct{}
		if onChange {
			changeCh = changed
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changeCh:
		case <-a.leaderKick:
		}
	}
}

// runAutopilot keeps the raft voters in step with the gossip members.
func (a *Agent) runAutopilot(ctx context.Context) {
	ap := mesh.NewAutopilot(a.mesh, raftMembership{a.store}, mesh.VoterPolicy{MaxVoters: 5, DeadServerTimeout: a.cfg.DeadServerTimeout},
		a.logger.With("duty", "autopilot"))
	ap.Run(ctx)
}

// runRegistrar records every alive member with valid metadata as a node, as
// soon as the mesh sees it (and every few seconds, to catch anything missed).
func (a *Agent) runRegistrar(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		changed := a.mesh.Changed()
		if err := a.registerMembers(ctx); err != nil && ctx.Err() == nil {
			a.logger.Warn("leader duty failed", "duty", "registrar", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-t.C:
		}
	}
}

func (a *Agent) registerMembers(ctx context.Context) error {
	for _, m := range a.mesh.Members() {
		if m.Status != mesh.StatusAlive || m.Meta.ID == "" {
			continue
		}
		node := nodeFromMeta(m.Meta)
		var current *raftfsm.Node
		a.fsm.View(func(s *raftfsm.State) {
			if n, ok := s.Nodes[node.ID]; ok {
				c := *n
				current = &c
			}
		})
		if current != nil && sameAddresses(*current, node) {
			continue
		}
		if _, err := a.apply(ctx, &raftfsm.UpsertNode{At: a.now(), Node: node}); err != nil {
			return err
		}
	}
	return nil
}

func nodeFromMeta(m mesh.NodeMeta) raftfsm.Node {
	return raftfsm.Node{ID: m.ID, DropletID: m.DropletID, Region: m.Region, PublicIP: m.PublicIP, PrivateIP: m.PrivateIP,
		API: m.API, UI: m.UI, Edge: m.Edge, Raft: m.Raft, Version: m.Version}
}

func sameAddresses(a, b raftfsm.Node) bool {
	return a.DropletID == b.DropletID && a.Region == b.Region && a.PublicIP == b.PublicIP && a.PrivateIP == b.PrivateIP &&
		a.API == b.API && a.UI == b.UI && a.Edge == b.Edge && a.Raft == b.Raft && a.Version == b.Version
}

// runRollouts moves rolling deploys forward, one step per state change.
func (a *Agent) runRollouts(ctx context.Context) {
	a.every(ctx, "rollout", time.Second, true, func(ctx context.Context) error {
		var steps []struct {
			d    raftfsm.Deploy
			step rolloutStep
		}
		now := a.now()
		a.fsm.View(func(s *raftfsm.State) {
			for _, d := range rollingDeploys(s) {
				if st := planRollout(s, d, now); st.Finish != "" || len(st.Advance) > 0 {
					steps = append(steps, struct {
						d    raftfsm.Deploy
						step rolloutStep
					}{*d, st})
				}
			}
		})
		for _, x := range steps {
			var err error
			if x.step.Finish != "" {
				_, err = a.apply(ctx, &raftfsm.FinishDeploy{At: now, DeployID: x.d.ID, Status: x.step.Finish, Reason: x.step.Reason})
				a.logger.Info("deploy finished", "deploy", x.d.ID, "service", x.d.Service, "status", x.step.Finish, "reason", x.step.Reason)
			} else {
				_, err = a.apply(ctx, &raftfsm.AdvanceRollout{At: now, DeployID: x.d.ID, Service: x.d.Service, Generation: x.d.Generation, Instances: x.step.Advance})
				a.logger.Info("roll-out advanced", "deploy", x.d.ID, "service", x.d.Service, "instances", x.step.Advance)
			}
			if err != nil && !errors.Is(err, raftfsm.ErrConflict) {
				return err
			}
		}
		return nil
	})
}

// runHousekeeping purges health history older than the retention.
func (a *Agent) runHousekeeping(ctx context.Context) {
	a.every(ctx, "housekeeping", time.Hour, false, func(ctx context.Context) error {
		now := a.now()
		_, err := a.apply(ctx, &raftfsm.PurgeHistory{At: now, Before: now.Add(-raftfsm.HistoryRetention)})
		return err
	})
}

// raftMembership adapts the raft store to what mesh's autopilot needs.
type raftMembership struct{ s *raftfsm.Store }

func (r raftMembership) Servers(ctx context.Context) ([]mesh.RaftServer, error) {
	servers, err := r.s.Servers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]mesh.RaftServer, len(servers))
	for i, s := range servers {
		out[i] = mesh.RaftServer{ID: s.ID, Address: s.Address, Voter: s.Voter}
	}
	return out, nil
}

func (r raftMembership) AddVoter(ctx context.Context, id, addr string) error {
	return r.s.AddVoter(ctx, id, addr)
}

func (r raftMembership) AddNonvoter(ctx context.Context, id, addr string) error {
	return r.s.AddNonvoter(ctx, id, addr)
}

func (r raftMembership) DemoteVoter(ctx context.Context, id string) error {
	return r.s.DemoteVoter(ctx, id)
}

func (r raftMembership) RemoveServer(ctx context.Context, id string) error {
	return r.s.RemoveServer(ctx, id)
}

// egressAllowed is the cluster's egress_allow setting: the private ranges
// webhooks may reach (node/egress refuses them otherwise). A range that
// does not parse as private is skipped (UpdateSettings refuses it).
func (a *Agent) egressAllowed() []netip.Prefix {
	var ranges []string
	a.fsm.View(func(s *raftfsm.State) { ranges = slices.Clone(s.Settings.EgressAllow) })
	var out []netip.Prefix
	for _, r := range ranges {
		if p, err := egress.ParseAllowed([]string{r}); err == nil {
			out = append(out, p...)
		}
	}
	return out
}
