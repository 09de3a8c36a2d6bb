package node

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/health"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// checkTarget is one local instance to check: what its desired
// generation's spec says the check is. The health loop and the API's
// on-demand check both build it with checkTargetOf.
type checkTarget struct {
	id       string // the instance, and the checker's key for it
	interval time.Duration
	kind     raftfsm.Kind
	path     string   // health.path: an HTTP probe; "" is a TCP connect
	pattern  string   // health.log_pattern; "" is the default
	base     string   // the serving container's name
	command  []string // health.command, run inside the container
}

// checkTargetOf is the check of instance in; ok is false when the state
// holds no spec for its desired generation.
func (a *Agent) checkTargetOf(s *raftfsm.State, in *raftfsm.Instance) (checkTarget, bool) {
	svc, ok := s.Services[in.Service]
	if !ok {
		return checkTarget{}, false
	}
	spec, ok := svc.Revision(in.DesiredGeneration)
	if !ok {
		return checkTarget{}, false
	}
	iv := a.healthInterval(s)
	if spec.Health.Interval > 0 {
		iv = spec.Health.Interval.D()
	}
	return checkTarget{id: in.ID, interval: iv, kind: spec.Kind, path: spec.Health.Path, pattern: spec.Health.LogPattern,
		base: a.containerBase(*svc, in.Slot), command: spec.Health.Command}, true
}

// healthInterval is the cluster's HEALTH_CHECK_INTERVAL (this agent's own
// setting until the cluster has one).
func (a *Agent) healthInterval(s *raftfsm.State) time.Duration {
	if d := s.Settings.HealthInterval.D(); d > 0 {
		return d
	}
	return a.cfg.HealthInterval
}

// uncheckedRetry is how soon the health loop asks again about an instance
// that had nothing to check (no serving container yet).
const uncheckedRetry = time.Second

// healthLoop checks every local instance on its interval and reports the
// results to the leader in one batch per round.
func (a *Agent) healthLoop(ctx context.Context) {
	if err := a.waitCaughtUp(ctx); err != nil {
		return
	}
	next := map[string]time.Time{}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		var due []checkTarget
		a.fsm.View(func(s *raftfsm.State) {
			for id, in := range s.Instances {
				if in.Node != a.cfg.NodeID || in.DesiredGeneration == 0 {
					continue
				}
				if at, seen := next[id]; seen && now.Before(at) {
					continue
				}
				if t, ok := a.checkTargetOf(s, in); ok {
					due = append(due, t)
				}
			}
		})
		if len(due) == 0 {
			continue
		}
		results := a.checkAll(ctx, due)
		if ctx.Err() != nil {
			return // a probe cut short by shutdown says nothing about the container
		}
		checked := make(map[string]bool, len(results))
		for _, r := range results {
			checked[r.Instance] = true
		}
		for _, t := range due {
			// A target with nothing to check yet (its container still
			// being created or renamed by a deploy) is asked again soon,
			// not a whole interval later.
			wait := t.interval
			if !checked[t.id] {
				wait = min(wait, uncheckedRetry)
			}
			next[t.id] = now.Add(wait)
		}
		if len(results) == 0 {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := a.report(rctx, &raftfsm.ReportHealth{At: a.now(), Node: a.cfg.NodeID, Results: results}); err != nil && ctx.Err() == nil {
			a.logger.Warn("report health", "err", err)
		}
		cancel()
	}
}

// checkAll checks the targets, eight at a time.
func (a *Agent) checkAll(ctx context.Context, targets []checkTarget) []raftfsm.HealthReport {
	var (
		mu  sync.Mutex
		out []raftfsm.HealthReport
		wg  sync.WaitGroup
	)
	sem := make(chan struct{}, 8)
	for _, t := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func(t checkTarget) {
			defer wg.Done()
			defer func() { <-sem }()
			r, ok := a.checkInstance(ctx, t, checkQuery{})
			if !ok {
				return
			}
			a.metrics.ObserveHealth(string(r.Status))
			mu.Lock()
			out = append(out, raftfsm.HealthReport{Instance: t.id, Status: string(r.Status), Reason: r.Reason, CheckedAt: r.CheckedAt})
			mu.Unlock()
		}(t)
	}
	wg.Wait()
	return out
}

// checkQuery is an on-demand question about a target (the API's health
// route); the zero value is the health loop's periodic check.
type checkQuery struct {
	onDemand bool
	// container is the container to check; "" is the target's serving one.
	container string
	// port, if set, is probed on this node's published address instead of
	// the container's own published port.
	port int
	// since is where the log scan starts; zero is where a first check would.
	since time.Time
}

// checkInstance checks one instance's serving container (or, for a cron
// job, its last run) as its spec says: the health path, the log pattern,
// the schedule. ok is false when there is nothing to check yet. The
// periodic check moves the checker's log cursor; an on-demand one does not.
func (a *Agent) checkInstance(ctx context.Context, t checkTarget, q checkQuery) (health.Result, bool) {
	now := time.Now()
	check := func(target health.Target) health.Result {
		if q.onDemand {
			return a.checker.CheckOnce(ctx, t.id, now, q.since, target)
		}
		return a.checker.Check(ctx, t.id, now, target)
	}
	if t.kind == raftfsm.KindCron {
		st, ok := a.crons.state(t.id)
		if !ok {
			return health.Result{}, false
		}
		return check(health.Target{Kind: string(t.kind), Cron: &st}), true
	}
	name := t.base
	if q.container != "" {
		name = q.container
	}
	c, err := a.rt.Inspect(ctx, name)
	if err != nil {
		return health.Result{}, false // not created yet, or being replaced
	}
	target := health.Target{Kind: string(t.kind), Path: t.path, LogPattern: t.pattern, Running: c.Running, ExitCode: c.ExitCode,
		StartedAt: c.StartedAt, Addr: a.containerAddr(c), Logs: a.logSource(c.ID)}
	if len(t.command) > 0 && q.port == 0 {
		target.Exec = a.execCheck(c.ID, t.command)
	}
	if q.port > 0 {
		target.Addr = net.JoinHostPort(a.containerHost(), strconv.Itoa(q.port))
		if target.Kind == string(raftfsm.KindWorker) {
			target.Kind = string(raftfsm.KindService) // the caller asks about a port: probe it
		}
	}
	return check(target), true
}

// logSource reads a container's log for the health checker's error scan.
func (a *Agent) logSource(id string) health.LogSource {
	return func(ctx context.Context, since time.Time, maxBytes int64) (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			pw.CloseWithError(a.rt.Logs(ctx, id, runtime.LogOptions{Since: since, MaxBytes: maxBytes}, pw))
		}()
		return pr, nil
	}
}

// ContainerHealth answers the first system's health question about a
// container of this node (or forwards it to the node that runs it): the
// same check the health loop runs for its instance (health path, log
// pattern, a cron job judged on its runs), probing the given port instead
// when port is set and scanning the log from since when it is set. It does
// not disturb the loop's own log cursor. A dropmesh container of this node
// that belongs to no instance is checked by what Docker says of it.
func (a *Agent) ContainerHealth(ctx context.Context, name string, port int, since time.Time) (control.HealthAnswer, error) {
	t, q, err := a.onDemandCheck(ctx, name)
	if err != nil {
		if api, ok := a.containerNode(name); ok {
			c, cerr := a.peers.to(api)
			if cerr != nil {
				return control.HealthAnswer{}, cerr
			}
			return c.ContainerHealth(ctx, name, port, since)
		}
		return control.HealthAnswer{}, err
	}
	q.port, q.since = port, since
	r, ok := a.checkInstance(ctx, t, q)
	if !ok {
		return control.HealthAnswer{}, fmt.Errorf("container %s: nothing to check yet (not created, or being replaced): %w", name, raftfsm.ErrNotFound)
	}
	return control.HealthAnswer{Status: string(r.Status), Reason: r.Reason, CheckedAt: r.CheckedAt}, nil
}

// onDemandCheck finds what to check for container name of this node: its
// instance's check when name is the instance's container (by name, id or
// base name) or carries its instance label, else a check by what Docker
// says of the container alone.
func (a *Agent) onDemandCheck(ctx context.Context, name string) (checkTarget, checkQuery, error) {
	if a.rt == nil || a.checker == nil {
		return checkTarget{}, checkQuery{}, fmt.Errorf("container %s: %w", name, control.ErrNotLocal)
	}
	var (
		t     checkTarget
		found bool
	)
	a.fsm.View(func(s *raftfsm.State) {
		for _, id := range raftfsm.SortedKeys(s.Instances) {
			in := s.Instances[id]
			if in.Node != a.cfg.NodeID || in.DesiredGeneration == 0 {
				continue
			}
			ct, ok := a.checkTargetOf(s, in)
			if ok && (name == in.Container || name == in.ContainerID || name == ct.base) {
				t, found = ct, true
				return
			}
		}
	})
	switch {
	case found && t.kind == raftfsm.KindCron:
		return t, checkQuery{onDemand: true}, nil // judged on its runs: no container needed
	case found:
		return t, checkQuery{onDemand: true, container: name}, nil
	}
	c, err := a.localContainer(ctx, name)
	if err != nil {
		return checkTarget{}, checkQuery{}, err
	}
	a.fsm.View(func(s *raftfsm.State) {
		if in, ok := s.Instances[c.Labels[runtime.LabelInstance]]; ok && in.Node == a.cfg.NodeID && in.DesiredGeneration != 0 {
			t, found = a.checkTargetOf(s, in)
		}
	})
	if !found {
		// Not an instance's container: a service when Docker publishes a
		// port for it, a worker otherwise (health.Target's empty kind).
		t = checkTarget{id: c.ID}
	}
	return t, checkQuery{onDemand: true, container: c.ID}, nil
}

// localContainer finds a dropmesh container of this node by name.
func (a *Agent) localContainer(ctx context.Context, name string) (runtime.ContainerInfo, error) {
	if a.rt == nil {
		return runtime.ContainerInfo{}, fmt.Errorf("container %s: %w", name, control.ErrNotLocal)
	}
	c, err := a.rt.Inspect(ctx, name)
	if err != nil || c.Labels[runtime.LabelNode] != a.cfg.NodeID {
		return runtime.ContainerInfo{}, fmt.Errorf("container %s: %w", name, control.ErrNotLocal)
	}
	return c, nil
}

// ContainerLogs streams a local container's log.
func (a *Agent) ContainerLogs(ctx context.Context, name string, opts control.LogOptions, w io.Writer) error {
	c, err := a.localContainer(ctx, name)
	if err != nil {
		if _, ok := a.containerNode(name); ok {
			return a.remoteLogs(ctx, name, opts, w)
		}
		return err
	}
	return a.rt.Logs(ctx, c.ID, runtime.LogOptions{Since: opts.Since, Tail: opts.Tail, Follow: opts.Follow, MaxBytes: opts.MaxBytes, Timestamps: true}, w)
}

// ProbeAddress probes addr from this node: the second opinion.
func (a *Agent) ProbeAddress(ctx context.Context, addr, path string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%w: probe address %q", raftfsm.ErrInvalid, addr)
	}
	if path != "" {
		return health.ProbeHTTP(ctx, addr, path, 2*time.Second)
	}
	return health.ProbeTCP(ctx, addr, 2*time.Second)
}
