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

// checkTarget is one local instance to check, with its interval.
type checkTarget struct {
	id       string
	interval time.Duration
	kind     raftfsm.Kind
	path     string
	schedule string
	created  time.Time
	base     string
}

// healthInterval is the cluster's HEALTH_CHECK_INTERVAL (this agent's own
// setting until the cluster has one).
func (a *Agent) healthInterval(s *raftfsm.State) time.Duration {
	if d := s.Settings.HealthInterval.D(); d > 0 {
		return d
	}
	return a.cfg.HealthInterval
}

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
			def := a.healthInterval(s)
			for id, in := range s.Instances {
				if in.Node != a.cfg.NodeID || in.DesiredGeneration == 0 {
					continue
				}
				svc, ok := s.Services[in.Service]
				if !ok {
					continue
				}
				spec, ok := svc.Revision(in.DesiredGeneration)
				if !ok {
					continue
				}
				iv := def
				if spec.Health.Interval > 0 {
					iv = spec.Health.Interval.D()
				}
				if at, seen := next[id]; seen && now.Before(at) {
					continue
				}
				due = append(due, checkTarget{id: id, interval: iv, kind: spec.Kind, path: spec.Health.Path, schedule: spec.Schedule,
					created: in.CreatedAt, base: a.containerBase(*svc, in.Slot)})
			}
		})
		if len(due) == 0 {
			continue
		}
		results := a.checkAll(ctx, due)
		if ctx.Err() != nil {
			return // a probe cut short by shutdown says nothing about the container
		}
		for _, t := range due {
			next[t.id] = now.Add(t.interval)
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
			r, ok := a.checkInstance(ctx, t)
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

// checkInstance checks one instance's serving container (or, for a cron
// job, its last run). ok is false when there is nothing to check yet.
func (a *Agent) checkInstance(ctx context.Context, t checkTarget) (health.Result, bool) {
	now := time.Now()
	if t.kind == raftfsm.KindCron {
		st, ok := a.crons.state(t.id)
		if !ok {
			return health.Result{}, false
		}
		return a.checker.Check(ctx, t.id, now, health.Target{Kind: string(t.kind), Cron: &st}), true
	}
	c, err := a.rt.Inspect(ctx, t.base)
	if err != nil {
		return health.Result{}, false // not created yet, or being replaced
	}
	target := health.Target{Kind: string(t.kind), Path: t.path, Running: c.Running, ExitCode: c.ExitCode,
		StartedAt: c.StartedAt, Addr: a.containerAddr(c), Logs: a.logSource(c.ID)}
	return a.checker.Check(ctx, t.id, now, target), true
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

// ContainerHealth answers the first system's health question about a local
// container: probe its port (or the given one) and scan its log since `since`.
func (a *Agent) ContainerHealth(ctx context.Context, name string, port int, since time.Time) (control.HealthAnswer, error) {
	c, err := a.localContainer(ctx, name)
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
	target := health.Target{Kind: string(raftfsm.KindWorker), Running: c.Running, ExitCode: c.ExitCode, StartedAt: c.StartedAt, Logs: a.logSource(c.ID)}
	addr := a.containerAddr(c)
	if port > 0 {
		addr = net.JoinHostPort(a.containerHost(), strconv.Itoa(port))
	}
	if addr != "" {
		target.Kind, target.Addr = string(raftfsm.KindService), addr
	}
	checker, err := health.NewChecker(health.DefaultConfig())
	if err != nil {
		return control.HealthAnswer{}, err
	}
	if !since.IsZero() {
		checker.SetCursor(c.ID, since)
	}
	r := checker.Check(ctx, c.ID, time.Now(), target)
	return control.HealthAnswer{Status: string(r.Status), Reason: r.Reason, CheckedAt: r.CheckedAt}, nil
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
