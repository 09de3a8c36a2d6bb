package node

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/node/edge"
	"github.com/dropmesh/dropmesh/node/health"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// instanceTable holds one worker per instance placed on this node, and the
// address each instance's serving container answers on (what the edge routes to).
type instanceTable struct {
	mu      sync.Mutex
	workers map[string]*instanceWorker
	addrs   map[string]string
	// serviceLocks serialise work within a service on this node.
	serviceLocks map[string]*sync.Mutex
	// ports are the EXPOSE ports of images this node has, by the reference
	// they were looked up with (see learnDependencyImages). They have their
	// own lock: they are read inside state views, and mu is held around
	// state views elsewhere (newWorker).
	portsMu sync.Mutex
	ports   map[string][]int
}

func newInstanceTable() *instanceTable {
	return &instanceTable{workers: map[string]*instanceWorker{}, addrs: map[string]string{}, serviceLocks: map[string]*sync.Mutex{},
		ports: map[string][]int{}}
}

// learnImage remembers the EXPOSE ports of an image this node has.
func (t *instanceTable) learnImage(ref string, info runtime.ImageInfo) {
	t.portsMu.Lock()
	defer t.portsMu.Unlock()
	t.ports[ref] = append([]int{}, info.ExposedPorts...)
}

// imagePorts returns the EXPOSE ports of ref, and whether they are known.
func (t *instanceTable) imagePorts(ref string) ([]int, bool) {
	t.portsMu.Lock()
	defer t.portsMu.Unlock()
	p, ok := t.ports[ref]
	return p, ok
}

// exposedPorts is imagePorts for converge.InjectedEnv: nil when unknown.
func (t *instanceTable) exposedPorts(ref string) []int {
	p, _ := t.imagePorts(ref)
	return p
}

func (t *instanceTable) serviceLock(key string) *sync.Mutex {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.serviceLocks[key]
	if !ok {
		l = &sync.Mutex{}
		t.serviceLocks[key] = l
	}
	return l
}

func (t *instanceTable) setAddr(id, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if addr == "" {
		delete(t.addrs, id)
	} else {
		t.addrs[id] = addr
	}
}

func (t *instanceTable) addrSnapshot() map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]string, len(t.addrs))
	for k, v := range t.addrs {
		out[k] = v
	}
	return out
}

// startRuntime connects to Docker, picks the edge and starts the loops that
// converge this node: the reconciler, the Docker event watcher, the health
// checks and the cron runner.
func (a *Agent) startRuntime(ctx context.Context) error {
	rt, err := a.newRuntime(ctx)
	if err != nil {
		return fmt.Errorf("docker: %w", err)
	}
	a.rt = rt
	if a.edge, err = a.newEdge(ctx); err != nil {
		return err
	}
	checker, err := health.NewChecker(health.DefaultConfig())
	if err != nil {
		return err
	}
	a.checker = checker
	a.instances = newInstanceTable()
	a.crons = newCronRunner(ctx, a)
	if err := a.startDiscovery(ctx); err != nil {
		return err
	}
	a.goRun(ctx, "reconciler", a.reconcileLoop)
	a.goRun(ctx, "docker-events", a.watchDocker)
	a.goRun(ctx, "health", a.healthLoop)
	a.goRun(ctx, "snapshot-builder", func(ctx context.Context) {
		for {
			changed := a.fsm.Changed()
			a.buildSnapshotImages(ctx)
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
		}
	})
	return nil
}

// newEdge picks nginx when it is installed (or asked for), else the built-in proxy.
func (a *Agent) newEdge(ctx context.Context) (edge.Edge, error) {
	listen := a.cfg.edgeBind(a.cfg.EdgePort)
	// The TLS port serves the hosts of zones with an origin certificate
	// (edgeConfig); a handshake for any other name is refused.
	listenTLS := ""
	if a.cfg.EdgeTLSPort > 0 {
		listenTLS = a.cfg.edgeBind(a.cfg.EdgeTLSPort)
	}
	mode := a.cfg.Edge
	if mode == "auto" {
		mode = "proxy"
		if _, ok := edge.NginxPath(); ok {
			mode = "nginx"
		}
	}
	switch mode {
	case "none":
		return nil, nil
	case "nginx":
		bin, _ := edge.NginxPath()
		e, err := edge.NewNginx(ctx, edge.NginxOptions{Binary: bin, Dir: a.dataPath("nginx"), Listen: listen, ListenTLS: listenTLS, Logger: a.logger})
		if err != nil {
			return nil, fmt.Errorf("edge (nginx): %w", err)
		}
		return e, nil
	default:
		e, err := edge.NewProxy(ctx, edge.ProxyOptions{Listen: listen, ListenTLS: listenTLS, Logger: a.logger})
		if err != nil {
			return nil, fmt.Errorf("edge (proxy): %w", err)
		}
		return e, nil
	}
}

// reconcileLoop wakes on every state change, reconciler kick and a slow
// timer, and makes one worker per local instance converge.
func (a *Agent) reconcileLoop(ctx context.Context) {
	if err := a.waitCaughtUp(ctx); err != nil {
		return
	}
	a.cleanupInterrupted(ctx)
	t := time.NewTicker(a.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		changed := a.fsm.Changed()
		a.reconcileOnce(ctx)
		select {
		case <-ctx.Done():
			a.stopWorkers()
			return
		case <-changed:
		case <-a.reconKick:
		case <-t.C:
		}
	}
}

// waitCaughtUp blocks until this node's replica has applied everything the
// cluster had committed when it started: an agent that restarts must not take
// its half-replayed state for the truth (it would remove every container).
func (a *Agent) waitCaughtUp(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if id, _ := a.store.Leader(); id != "" {
			if commit := a.store.CommitIndex(); commit > 0 && a.fsm.Index() >= commit {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// reconcileOnce starts or kicks a worker for every instance placed here,
// stops the workers of instances gone elsewhere, and removes containers that
// carry our labels but belong to no wanted instance (orphans).
func (a *Agent) reconcileOnce(ctx context.Context) {
	defer func(start time.Time) { a.metrics.ObserveReconcile(time.Since(start)) }(time.Now())
	wanted := map[string]string{} // instance id -> service key
	a.fsm.View(func(s *raftfsm.State) {
		for id, in := range s.Instances {
			if in.Node == a.cfg.NodeID {
				wanted[id] = in.Service
			}
		}
	})
	a.instances.mu.Lock()
	settled := true // every worker has converged once: the table knows every address
	for id, svc := range wanted {
		w, ok := a.instances.workers[id]
		if !ok {
			w = a.newWorker(ctx, id, svc)
			a.instances.workers[id] = w
		}
		settled = settled && w.converged.Load()
		w.kick()
	}
	var gone []*instanceWorker
	for id, w := range a.instances.workers {
		if _, ok := wanted[id]; !ok {
			gone = append(gone, w)
			delete(a.instances.workers, id)
		}
	}
	a.instances.mu.Unlock()
	for _, w := range gone {
		w.retire()
	}
	a.crons.sync(ctx)
	a.removeOrphans(ctx, wanted)
	// Certificates and the UI host change without any instance changing.
	// Not before every worker has found its container: an adopted nginx
	// keeps serving the previous agent's routes until then.
	if settled {
		_ = a.applyEdge(ctx)
	}
}

// removeOrphans removes managed containers of this node whose instance is
// not wanted here and has no worker retiring it.
func (a *Agent) removeOrphans(ctx context.Context, wanted map[string]string) {
	list, err := a.rt.List(ctx, a.ownLabels(nil))
	if err != nil {
		a.logger.Warn("list containers", "err", err)
		return
	}
	for _, c := range list {
		id := c.Labels[runtime.LabelInstance]
		if _, ok := wanted[id]; ok {
			continue
		}
		a.instances.mu.Lock()
		_, busy := a.instances.workers[id]
		a.instances.mu.Unlock()
		if busy {
			continue
		}
		a.instances.setAddr(id, "")
		a.applyEdge(ctx)
		a.logger.Info("removing container of no wanted instance", "container", c.Name, "instance", id)
		if err := a.rt.Stop(ctx, c.ID, 10*time.Second); err != nil {
			a.logger.Warn("stop orphan", "container", c.Name, "err", err)
		}
		if err := a.rt.Remove(ctx, c.ID); err != nil {
			a.logger.Warn("remove orphan", "container", c.Name, "err", err)
		}
	}
}

func (a *Agent) stopWorkers() {
	a.instances.mu.Lock()
	workers := make([]*instanceWorker, 0, len(a.instances.workers))
	for _, w := range a.instances.workers {
		workers = append(workers, w)
	}
	a.instances.mu.Unlock()
	for _, w := range workers {
		w.stop()
	}
}

// watchDocker kicks the worker of an instance whose container started,
// died or was removed, so its state is reported at once.
func (a *Agent) watchDocker(ctx context.Context) {
	for ctx.Err() == nil {
		events, errs := a.rt.Events(ctx, a.ownLabels(nil))
	loop:
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-events:
				if !ok {
					break loop
				}
				a.instances.mu.Lock()
				w := a.instances.workers[ev.Labels[runtime.LabelInstance]]
				a.instances.mu.Unlock()
				if w != nil {
					w.kick()
				}
			case err, ok := <-errs:
				if ok && err != nil && ctx.Err() == nil {
					a.logger.Warn("docker events", "err", err)
				}
				break loop
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// candidateSuffix matches the name suffix of a new generation's container.
var candidateSuffix = regexp.MustCompile(`-g[0-9]+$`)

// cleanupInterrupted finishes what a previous run of this agent left
// half-switched. A new-generation container ("-gN") passed its health gate
// only if the state says so: the agent reports a candidate as the
// instance's container only once the gate passed and the edge switched to
// it. Such a candidate takes the serving name (the old container, if still
// there, goes). Any other candidate is removed, so the worker starts that
// generation again and gates it: a first deploy interrupted during its
// health checks must not come back as serving.
func (a *Agent) cleanupInterrupted(ctx context.Context) {
	list, err := a.rt.List(ctx, a.ownLabels(nil))
	if err != nil {
		a.logger.Warn("list containers", "err", err)
		return
	}
	byName := map[string]runtime.ContainerInfo{}
	for _, c := range list {
		byName[c.Name] = c
	}
	for _, c := range list {
		if !candidateSuffix.MatchString(c.Name) {
			continue
		}
		base := candidateSuffix.ReplaceAllString(c.Name, "")
		if !a.passedGate(c) {
			a.logger.Info("removing a container of an interrupted roll-out; its generation starts again", "container", c.Name,
				"instance", c.Labels[runtime.LabelInstance])
			if err := a.rt.Remove(ctx, c.ID); err != nil {
				a.logger.Warn("remove", "container", c.Name, "err", err)
			}
			continue
		}
		if old, ok := byName[base]; ok {
			a.logger.Info("removing the old generation of an interrupted switch", "container", old.Name)
			_ = a.rt.Stop(ctx, old.ID, a.stopTimeout())
			if err := a.rt.Remove(ctx, old.ID); err != nil {
				a.logger.Warn("remove", "container", old.Name, "err", err)
				continue
			}
		}
		a.logger.Info("finishing an interrupted switch", "container", c.Name, "name", base)
		if err := a.rt.Rename(ctx, c.ID, base); err != nil {
			a.logger.Warn("rename", "container", c.Name, "err", err)
		}
	}
}

// passedGate reports whether the state records candidate c as its
// instance's serving container of its generation (see cleanupInterrupted).
func (a *Agent) passedGate(c runtime.ContainerInfo) bool {
	gen, err := strconv.ParseInt(c.Labels[runtime.LabelGeneration], 10, 64)
	if err != nil {
		return false
	}
	passed := false
	a.fsm.View(func(s *raftfsm.State) {
		in, ok := s.Instances[c.Labels[runtime.LabelInstance]]
		passed = ok && in.Node == a.cfg.NodeID && in.ContainerID == c.ID && in.Generation == gen && in.DesiredGeneration == gen
	})
	return passed
}
