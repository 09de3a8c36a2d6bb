package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dropmesh/dropmesh/node/converge"
	"github.com/dropmesh/dropmesh/node/health"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// labelConfig carries the hash of everything a container was made from
// (spec revision, injected environment), so a change replaces it.
const labelConfig = "dropmesh.config"

// labelCluster carries the cluster id: an agent only ever lists, replaces or
// removes containers of its own cluster and node, even on a Docker engine
// other clusters share (local meshes and tests on one machine).
const labelCluster = "dropmesh.cluster"

// clusterUnknown is the cluster label value that selects no container.
const clusterUnknown = "unknown-cluster"

// ownLabels are the labels that select this agent's containers, plus extra.
func (a *Agent) ownLabels(extra map[string]string) map[string]string {
	var cluster string
	a.fsm.View(func(s *raftfsm.State) { cluster = s.Settings.ClusterID })
	if cluster == "" {
		// Not known yet (the state is still replaying, or the seed has not
		// initialised it): select nothing rather than every cluster's
		// containers, which an empty label value would.
		cluster = clusterUnknown
	}
	out := map[string]string{runtime.LabelManaged: "true", runtime.LabelNode: a.cfg.NodeID, labelCluster: cluster}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// desiredInstance is a copy of what the state wants of one local instance.
type desiredInstance struct {
	in       raftfsm.Instance
	svc      raftfsm.Service
	spec     raftfsm.ServiceSpec // the revision of in.DesiredGeneration
	env      map[string]string   // variables, opened secrets, injected addresses
	hash     string
	base     string // the container name while serving
	registry *runtime.RegistryAuth
	// deploy is the id of the deploy that submitted the desired generation
	// (for log lines; "" when the state no longer says).
	deploy string
	err    error
}

// instanceWorker converges one instance. Its loop runs one converge at a
// time; kicks that arrive meanwhile fold into one more pass.
type instanceWorker struct {
	a       *Agent
	id      string
	service string
	log     *slog.Logger

	kickCh chan struct{}
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	nonceSeen  int64
	lastReport raftfsm.InstanceReport
	booted     bool
	// digestOf caches runningDigest for the image id it was computed for.
	digestOf, digest string
	// converged is set once the first converge is done (see reconcileOnce).
	converged atomic.Bool
}

func (a *Agent) newWorker(parent context.Context, id, service string) *instanceWorker {
	ctx, cancel := context.WithCancel(parent)
	w := &instanceWorker{a: a, id: id, service: service, log: a.logger.With("instance", id, "service", service),
		kickCh: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	a.fsm.View(func(s *raftfsm.State) {
		if in, ok := s.Instances[id]; ok {
			w.nonceSeen = in.RestartNonceSeen
		}
	})
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer close(w.done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-w.kickCh:
			}
			w.converge(ctx)
			w.converged.Store(true)
		}
	}()
	return w
}

func (w *instanceWorker) kick() {
	select {
	case w.kickCh <- struct{}{}:
	default:
	}
}

func (w *instanceWorker) stop() {
	w.cancel()
	<-w.done
}

// retire stops the worker and removes the instance's containers (it was
// undeployed or moved to another node), switching the edge away first.
func (w *instanceWorker) retire() {
	w.stop()
	a := w.a
	a.goRun(context.Background(), "retire "+w.id, func(context.Context) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a.instances.setAddr(w.id, "")
		a.applyEdge(ctx)
		a.checker.Forget(w.id)
		a.crons.remove(w.id)
		list, err := a.rt.List(ctx, a.ownLabels(map[string]string{runtime.LabelInstance: w.id}))
		if err != nil {
			w.log.Warn("list containers to retire", "err", err)
			return
		}
		for _, c := range list {
			w.log.Info("removing container", "container", c.Name)
			_ = a.rt.Stop(ctx, c.ID, a.stopTimeout())
			if err := a.rt.Remove(ctx, c.ID); err != nil {
				w.log.Warn("remove container", "container", c.Name, "err", err)
			}
		}
	})
}

func (a *Agent) stopTimeout() time.Duration { return 10 * time.Second }

// containerBase is the serving container name of an instance.
func (a *Agent) containerBase(svc raftfsm.Service, slot int) string {
	name := raftfsm.ContainerBaseName(svc.WorkspaceID, svc.Project, svc.Env, svc.Name)
	if slot > 0 {
		name += "." + strconv.Itoa(slot)
	}
	return name + a.cfg.ContainerSuffix
}

// candidateName is the name of a new generation while it overlaps the old one.
func candidateName(base string, gen int64) string { return fmt.Sprintf("%s-g%d", base, gen) }

// desired reads what the state wants of instance id, resolving secrets,
// injected addresses and registry credentials.
func (a *Agent) desired(ctx context.Context, id string) (desiredInstance, bool) {
	a.learnDependencyImages(ctx, id)
	var d desiredInstance
	ok := false
	a.fsm.View(func(s *raftfsm.State) {
		in, found := s.Instances[id]
		if !found || in.Node != a.cfg.NodeID {
			return
		}
		svc, found := s.Services[in.Service]
		if !found {
			return
		}
		ok = true
		d.in, d.svc = *in, *svc
		d.base = a.containerBase(*svc, in.Slot)
		if in.DesiredGeneration == 0 {
			return
		}
		spec, kept := svc.Revision(in.DesiredGeneration)
		if !kept {
			d.err = fmt.Errorf("generation %d of %s is no longer kept", in.DesiredGeneration, svc.Key)
			return
		}
		d.spec = spec
		for _, r := range svc.Revisions {
			if r.Generation == in.DesiredGeneration {
				d.deploy = r.DeployID
			}
		}
		d.env, d.err = a.containerEnv(s, svc, in, spec)
		if d.err != nil {
			return
		}
		d.registry, d.err = a.registryAuth(s, spec.Image)
		h := sha256.New()
		_ = json.NewEncoder(h).Encode(struct {
			Gen  int64
			Spec raftfsm.ServiceSpec
			Env  map[string]string
			// Net: on its workspace network (discovery on); left out
			// when off, so the hash is what it was before discovery.
			Net bool `json:",omitempty"`
			// Confine is the runtime's confinement version (confine.go):
			// containers made before the agent confined them are
			// replaced once, through the usual health-checked rollout.
			Confine int `json:",omitempty"`
		}{in.DesiredGeneration, spec, d.env, a.discovery != nil, runtime.ConfinementVersion})
		d.hash = hex.EncodeToString(h.Sum(nil))[:16]
	})
	return d, ok
}

// containerEnv is a container's environment: the spec's variables, its
// opened secrets, addresses of the stateful services it uses, and the
// DROPMESH_* variables that tell it where it runs.
func (a *Agent) containerEnv(s *raftfsm.State, svc *raftfsm.Service, in *raftfsm.Instance, spec raftfsm.ServiceSpec) (map[string]string, error) {
	env := map[string]string{
		"DROPMESH_SERVICE": svc.Key, "DROPMESH_INSTANCE": in.ID, "DROPMESH_NODE": a.cfg.NodeID,
		"DROPMESH_GENERATION": strconv.FormatInt(in.DesiredGeneration, 10),
	}
	if spec.Port > 0 {
		env["PORT"] = strconv.Itoa(spec.Port)
	}
	injected, err := converge.InjectEnv(s, svc, spec, a.keys.Sealer, a.instances.exposedPorts, a.discovery != nil)
	if err != nil {
		return nil, err
	}
	for k, v := range injected {
		env[k] = v
	}
	for k, v := range spec.Vars {
		env[k] = v
	}
	secrets, err := raftfsm.OpenSecrets(a.keys.Sealer, svc.Key, spec)
	if err != nil {
		return nil, err
	}
	for k, v := range secrets {
		env[k] = v
	}
	return env, nil
}

// report sends the instance's observed state to the leader, unless it is
// what was sent last.
func (w *instanceWorker) report(ctx context.Context, r raftfsm.InstanceReport) {
	r.Instance = w.id
	w.mu.Lock()
	r.RestartNonceSeen = w.nonceSeen
	same := r == w.lastReport
	w.mu.Unlock()
	if same {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.a.report(rctx, &raftfsm.ReportInstances{At: w.a.now(), Node: w.a.cfg.NodeID, Reports: []raftfsm.InstanceReport{r}}); err != nil {
		w.log.Warn("report to leader failed; will retry", "err", err)
		go func() { // retry on the next pass
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
				w.kick()
			}
		}()
		return
	}
	w.mu.Lock()
	w.lastReport = r
	w.mu.Unlock()
}

// converge makes this node's containers match the instance's desired state.
func (w *instanceWorker) converge(ctx context.Context) {
	a := w.a
	d, ok := a.desired(ctx, w.id)
	if !ok {
		return // the reconciler retires this worker
	}
	lock := a.instances.serviceLock(d.in.Service)
	lock.Lock()
	defer lock.Unlock()
	if d.err != nil {
		w.log.Error("cannot converge", "generation", d.in.DesiredGeneration, "deploy", d.deploy, "err", d.err)
		w.report(ctx, raftfsm.InstanceReport{Generation: d.in.Generation, State: "error", Phase: raftfsm.PhaseFailed, Error: d.err.Error(), FailedGeneration: d.in.DesiredGeneration})
		return
	}
	current, err := a.rt.Inspect(ctx, d.base)
	if errors.Is(err, runtime.ErrContainerNotFound) {
		current, err = runtime.ContainerInfo{}, nil
	}
	if err != nil {
		w.log.Warn("inspect container", "container", d.base, "err", err)
		return
	}
	exists := current.ID != ""
	curGen, _ := strconv.ParseInt(current.Labels[runtime.LabelGeneration], 10, 64)

	if d.in.DesiredGeneration == 0 {
		if exists {
			w.removeServing(ctx, current)
		}
		w.report(ctx, raftfsm.InstanceReport{State: "absent", Phase: raftfsm.PhasePending})
		return
	}
	if d.spec.Kind == raftfsm.KindCron {
		if exists {
			w.removeServing(ctx, current)
		}
		w.report(ctx, raftfsm.InstanceReport{Generation: d.in.Generation, State: "image", Phase: raftfsm.PhasePulling})
		image, err := a.ensureImage(ctx, d, func(string) {})
		if err != nil {
			w.fail(ctx, d, "image", err)
			return
		}
		a.crons.set(w.id, d, image)
		w.report(ctx, raftfsm.InstanceReport{Generation: d.in.DesiredGeneration, State: "scheduled", Phase: raftfsm.PhaseScheduled, ImageDigest: reportedDigest(image)})
		return
	}
	if exists && curGen == d.in.DesiredGeneration && current.Labels[labelConfig] == d.hash {
		w.keep(ctx, d, current)
		return
	}
	if d.in.FailedGeneration >= d.in.DesiredGeneration {
		// This generation failed here: the leader rolls it back (to the
		// previous generation, or to none after a failed first deploy).
		// Trying it again meanwhile could serve what already failed.
		return
	}
	w.replace(ctx, d, current)
}

// keep looks after a container that already runs the desired generation:
// started again after a reboot, restarted when the leader asks, routed, reported.
func (w *instanceWorker) keep(ctx context.Context, d desiredInstance, c runtime.ContainerInfo) {
	a := w.a
	w.mu.Lock()
	booted, nonceSeen := w.booted, w.nonceSeen
	w.booted = true
	w.mu.Unlock()
	if !c.Running && !booted {
		w.log.Info("starting container after agent start", "container", c.Name)
		if err := a.rt.Start(ctx, c.ID); err != nil {
			w.log.Warn("start container", "container", c.Name, "err", err)
		}
	}
	if d.in.RestartNonce > nonceSeen {
		w.log.Info("restarting container as the leader asked", "container", c.Name, "nonce", d.in.RestartNonce)
		if err := a.rt.Restart(ctx, c.ID, a.stopTimeout()); err != nil {
			w.log.Warn("restart container", "container", c.Name, "err", err)
		}
		w.mu.Lock()
		w.nonceSeen = d.in.RestartNonce
		w.mu.Unlock()
	}
	c, err := a.rt.Inspect(ctx, c.ID)
	if err != nil {
		return
	}
	// Only a running container has an address: the edge stops routing to
	// one that exited (its host port may soon be another container's).
	addr, state := "", "exited"
	if c.Running {
		addr, state = a.containerAddr(c), "running"
	}
	if d.spec.Routed() {
		a.instances.setAddr(w.id, a.edgeAddr(ctx, c, addr))
		a.applyEdge(ctx)
	}
	w.report(ctx, raftfsm.InstanceReport{Generation: d.in.DesiredGeneration, ContainerID: c.ID, Container: c.Name, ImageDigest: w.runningDigest(ctx, d, c.ImageID),
		Address: addr, State: state, Phase: raftfsm.PhaseReady})
}

// runningDigest is the agent's runningDigest, computed once per image id.
func (w *instanceWorker) runningDigest(ctx context.Context, d desiredInstance, imageID string) string {
	w.mu.Lock()
	if w.digestOf == imageID && w.digest != "" {
		defer w.mu.Unlock()
		return w.digest
	}
	w.mu.Unlock()
	digest := w.a.runningDigest(ctx, d.spec, imageID)
	w.mu.Lock()
	w.digestOf, w.digest = imageID, digest
	w.mu.Unlock()
	return digest
}

// containerAddr is where the agent and its peers reach a container's published port.
func (a *Agent) containerAddr(c runtime.ContainerInfo) string {
	if c.HostPort == 0 {
		return ""
	}
	return net.JoinHostPort(a.containerHost(), strconv.Itoa(c.HostPort))
}

func (a *Agent) containerHost() string { return a.cfg.PublishIP }

// edgeAddr is where this node's edge sends a container's requests: the
// container's own address on its Docker network when the agent reaches its
// port there (the edge, nginx or the built-in proxy, runs in the agent's
// network namespace), which spares every request Docker's port publishing
// (its userland proxy for loopback addresses); else published, the address
// of its published port (also when that is "": the container is not
// serving). Peers and health checks keep using the published address.
func (a *Agent) edgeAddr(ctx context.Context, c runtime.ContainerInfo, published string) string {
	if published == "" || c.IP == "" || c.Port == 0 {
		return published
	}
	direct := net.JoinHostPort(c.IP, strconv.Itoa(c.Port))
	dctx, cancel := context.WithTimeout(ctx, edgeDirectDialTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", direct)
	if err != nil {
		return published
	}
	_ = conn.Close()
	return direct
}

// edgeDirectDialTimeout bounds edgeAddr's check that a container's network
// address answers; a network the agent cannot reach usually refuses at once.
const edgeDirectDialTimeout = 250 * time.Millisecond

// fail reports that this node could not bring the desired generation up.
// A step cut short by the agent's own shutdown is not a failure: the next
// run of the agent starts it again.
func (w *instanceWorker) fail(ctx context.Context, d desiredInstance, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	msg := fmt.Sprintf("%s: %v", what, err)
	w.log.Warn("generation failed", "generation", d.in.DesiredGeneration, "deploy", d.deploy, "err", msg)
	w.report(ctx, raftfsm.InstanceReport{Generation: d.in.Generation, ContainerID: d.in.ContainerID, Container: d.in.Container,
		Address: d.in.Address, State: d.in.State, Phase: raftfsm.PhaseFailed, Error: msg, FailedGeneration: d.in.DesiredGeneration})
}

// refuse is fail for a generation this node will not run as configured: the
// reason also goes to the event log, where an operator sees it.
func (w *instanceWorker) refuse(ctx context.Context, d desiredInstance, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	a := w.a
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if rerr := a.report(rctx, &raftfsm.AppendEvent{At: a.now(), Event: raftfsm.Event{Kind: raftfsm.EventDeployRefused, Severity: raftfsm.SeverityError,
		Node: a.cfg.NodeID, Service: d.svc.Key, Instance: w.id, Deploy: d.deploy,
		Message: fmt.Sprintf("%s refused generation %d of %s: %s: %v", a.cfg.NodeID, d.in.DesiredGeneration, d.svc.Key, what, err)}}); rerr != nil {
		w.log.Warn("record refusal", "err", rerr)
	}
	w.fail(ctx, d, what, err)
}

// checkPrivatePublish refuses to publish a stateful service's port on the
// node's public address: databases and caches are reached over the private
// network only. (When a node has one address, as in local mode, public and
// private are the same and there is nothing to refuse; an unspecified
// address is refused by the runtime for any container with a volume.)
func (a *Agent) checkPrivatePublish() error {
	publish, public, private := net.ParseIP(a.cfg.PublishIP), net.ParseIP(a.cfg.PublicIP), net.ParseIP(a.cfg.AdvertiseIP)
	if publish == nil {
		return fmt.Errorf("%w: publish IP %q is not an IP address", raftfsm.ErrInvalid, a.cfg.PublishIP)
	}
	if publish.IsUnspecified() || (public != nil && publish.Equal(public) && !public.Equal(private)) {
		return fmt.Errorf("%w: stateful services are published only on the private IP (%s), never on %s; change --publish-ip",
			raftfsm.ErrInvalid, a.cfg.AdvertiseIP, a.cfg.PublishIP)
	}
	return nil
}

// removeServing switches the edge away from a container and removes it.
func (w *instanceWorker) removeServing(ctx context.Context, c runtime.ContainerInfo) {
	a := w.a
	a.instances.setAddr(w.id, "")
	a.applyEdge(ctx)
	_ = a.rt.Stop(ctx, c.ID, a.stopTimeout())
	if err := a.rt.Remove(ctx, c.ID); err != nil {
		w.log.Warn("remove container", "container", c.Name, "err", err)
	}
}

// replace brings up the desired generation beside (or, for stateful
// services, instead of) the current container, gates it on its health,
// switches the edge, and retires the old one. Any failure leaves the old
// container serving and reports the reason.
func (w *instanceWorker) replace(ctx context.Context, d desiredInstance, old runtime.ContainerInfo) {
	a := w.a
	gen := d.in.DesiredGeneration
	begin := time.Now()
	var took []any // the time each step took, for the debug log
	step := func(name string) {
		took = append(took, name, time.Since(begin).Round(time.Millisecond))
	}
	progress := func(phase string) {
		w.report(ctx, raftfsm.InstanceReport{Generation: d.in.Generation, ContainerID: d.in.ContainerID, Container: d.in.Container,
			Address: d.in.Address, State: d.in.State, Phase: phase})
	}
	stateful := d.spec.Kind == raftfsm.KindStateful
	if stateful {
		if err := a.checkPrivatePublish(); err != nil {
			if d.in.FailedGeneration < gen { // once per generation, until the leader rolls it back
				w.refuse(ctx, d, "publish", err)
			}
			return
		}
	}
	if d.spec.Build != "" {
		progress(raftfsm.PhaseBuilding)
	} else {
		progress(raftfsm.PhasePulling)
	}
	step("reported")
	image, err := a.ensureImage(ctx, d, func(string) {})
	if err != nil {
		w.fail(ctx, d, "image", err)
		return
	}
	step("image")
	if stateful && old.ID != "" {
		// One container per volume and fixed port: stop the old one first.
		_ = a.rt.Stop(ctx, old.ID, a.stopTimeout())
	}
	progress(raftfsm.PhaseStarting)
	step("reported")
	spec := a.containerSpec(d, image.ID, candidateName(d.base, gen))
	err = a.attachNetwork(ctx, &spec, d.svc)
	var cand runtime.ContainerInfo
	if err == nil {
		cand, err = a.rt.CreateAndStart(ctx, spec)
	}
	if err != nil {
		w.restoreStateful(ctx, stateful, old)
		w.fail(ctx, d, "start", err)
		return
	}
	step("started")
	addr := a.containerAddr(cand)
	passedAt, err := w.gate(ctx, d, cand, addr, progress)
	if err != nil {
		_ = a.rt.Remove(ctx, cand.ID)
		w.restoreStateful(ctx, stateful, old)
		w.fail(ctx, d, "health check", err)
		return
	}
	step("healthy")
	if d.spec.Routed() {
		progress(raftfsm.PhaseRouting)
		a.instances.setAddr(w.id, a.edgeAddr(ctx, cand, addr))
		if err := a.applyEdge(ctx); err != nil {
			a.instances.setAddr(w.id, a.edgeAddr(ctx, old, a.containerAddr(old)))
			_ = a.applyEdge(ctx)
			_ = a.rt.Remove(ctx, cand.ID)
			w.fail(ctx, d, "edge", err)
			return
		}
	}
	w.mu.Lock()
	w.booted = true
	if d.in.RestartNonce > w.nonceSeen {
		w.nonceSeen = d.in.RestartNonce // a fresh container is as good as a restart
	}
	w.mu.Unlock()
	a.checker.Forget(w.id)
	// The gate has just seen the new container healthy: its health starts
	// from there, committed before the ready report that lets the deploy
	// finish, so `deploy`, `services` and `health` agree at once instead
	// of saying "starting" until the first periodic check.
	w.reportGateHealth(ctx, d, passedAt)
	digest := reportedDigest(image)
	w.mu.Lock()
	w.digestOf, w.digest = image.ID, digest
	w.mu.Unlock()
	w.report(ctx, raftfsm.InstanceReport{Generation: gen, ContainerID: cand.ID, Container: d.base, ImageDigest: digest,
		Address: addr, State: "running", Phase: raftfsm.PhaseReady})
	step("routed")
	w.log.Info("generation is serving", "generation", gen, "deploy", d.deploy, "container", cand.Name, "address", addr, "took", time.Since(begin).Round(time.Millisecond))
	w.log.Debug("generation's steps, time since the start", took...)

	if old.ID != "" {
		if !stateful && d.spec.Routed() {
			// Requests in flight on the old container finish before it stops.
			a.drainEdge(ctx)
		}
		_ = a.rt.Stop(ctx, old.ID, a.stopTimeout())
		if err := a.rt.Remove(ctx, old.ID); err != nil {
			w.log.Warn("remove old generation", "container", old.Name, "err", err)
		}
	}
	if err := a.rt.Rename(ctx, cand.ID, d.base); err != nil {
		w.log.Warn("rename new generation", "container", cand.Name, "err", err)
	}
}

// restoreStateful starts the old stateful container again after a failed replacement.
func (w *instanceWorker) restoreStateful(ctx context.Context, stateful bool, old runtime.ContainerInfo) {
	if stateful && old.ID != "" {
		if err := w.a.rt.Start(ctx, old.ID); err != nil {
			w.log.Error("restart the old stateful container", "container", old.Name, "err", err)
		}
	}
}

// reportGateHealth commits the start gate's verdict as the instance's
// health: healthy, checked when the gate's last check passed. A failed
// report is only logged: the health loop's next check reports anyway.
func (w *instanceWorker) reportGateHealth(ctx context.Context, d desiredInstance, passedAt time.Time) {
	a := w.a
	if passedAt.IsZero() {
		return // a gate of no checks saw nothing
	}
	a.metrics.ObserveHealth(raftfsm.HealthHealthy)
	r := raftfsm.HealthReport{Instance: w.id, Status: raftfsm.HealthHealthy, CheckedAt: passedAt,
		Reason: fmt.Sprintf("start gate: %d checks in a row passed", d.spec.Health.StartChecks)}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.report(rctx, &raftfsm.ReportHealth{At: a.now(), Node: a.cfg.NodeID, Results: []raftfsm.HealthReport{r}}); err != nil && ctx.Err() == nil {
		w.log.Warn("report the start gate's health", "err", err)
	}
}

// gate waits for a new container to pass StartChecks checks in a row within
// StartTimeout (a worker: to keep running that long), failing fast if it
// exits. It returns when the last of those checks passed.
func (w *instanceWorker) gate(ctx context.Context, d desiredInstance, c runtime.ContainerInfo, addr string, progress func(string)) (time.Time, error) {
	a := w.a
	want := d.spec.Health.StartChecks
	deadline := time.Now().Add(d.spec.Health.StartTimeout.D())
	// Passing checks are spaced by interval, so StartChecks of them span a
	// real stretch of time; before the first pass (the process is still
	// coming up) the port is asked more often, so a fast starter is not
	// kept waiting for a whole interval.
	interval, upInterval := 100*time.Millisecond, 20*time.Millisecond
	if d.spec.Port == 0 {
		// A worker passes by staying up: one check per 300 ms.
		interval, upInterval = 300*time.Millisecond, 300*time.Millisecond
	}
	passed := 0
	var passedAt time.Time
	lastErr := errors.New("no check ran")
	for passed < want {
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("not healthy within %s: %w", d.spec.Health.StartTimeout, lastErr)
		}
		info, err := a.rt.Inspect(ctx, c.ID)
		if err != nil {
			return time.Time{}, err
		}
		if !info.Running {
			return time.Time{}, fmt.Errorf("the container exited with code %d%s", info.ExitCode, a.lastLogLines(ctx, c.ID))
		}
		if d.spec.Port > 0 {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			if d.spec.Health.Path != "" {
				lastErr = health.ProbeHTTP(pctx, addr, d.spec.Health.Path, time.Second)
			} else {
				lastErr = health.ProbeTCP(pctx, addr, time.Second)
			}
			cancel()
		} else {
			lastErr = nil
		}
		if lastErr == nil {
			passed++
			passedAt = time.Now()
			progress(phaseLine(raftfsm.PhaseChecking, passed, want))
		} else {
			passed = 0
		}
		if passed < want {
			wait := interval
			if passed == 0 {
				wait = upInterval
			}
			select {
			case <-ctx.Done():
				return time.Time{}, ctx.Err()
			case <-time.After(wait):
			}
		}
	}
	return passedAt, nil
}

// lastLogLines returns the end of a container's log for an error message.
func (a *Agent) lastLogLines(ctx context.Context, id string) string {
	var b strings.Builder
	if err := a.rt.Logs(ctx, id, runtime.LogOptions{Tail: 5, MaxBytes: 2048}, &b); err != nil || b.Len() == 0 {
		return ""
	}
	return "; last log lines: " + strings.TrimSpace(b.String())
}

// containerSpec is the Docker container for a desired instance.
func (a *Agent) containerSpec(d desiredInstance, imageID, name string) runtime.ContainerSpec {
	svc := d.svc
	labels := map[string]string{
		runtime.LabelManaged: "true", runtime.LabelWorkspace: svc.WorkspaceID, runtime.LabelProject: svc.Project,
		runtime.LabelEnv: svc.Env, runtime.LabelService: svc.Name, runtime.LabelNode: a.cfg.NodeID,
		runtime.LabelGeneration: strconv.FormatInt(d.in.DesiredGeneration, 10), runtime.LabelInstance: d.in.ID, labelConfig: d.hash,
	}
	for k, v := range a.ownLabels(nil) {
		labels[k] = v
	}
	mem, _ := d.spec.MemoryBytes()
	cs := runtime.ContainerSpec{Name: name, Image: imageID, Env: d.env, Cmd: d.spec.Command, Labels: labels,
		Port: d.spec.Port, PublishIP: a.cfg.PublishIP, MemoryBytes: mem, NanoCPUs: int64(d.spec.CPUs * 1e9), StopTimeout: a.stopTimeout()}
	processOptions(&cs, d.spec, d.base)
	if d.spec.Kind == raftfsm.KindStateful {
		cs.HostPort = d.spec.Port
		cs.Mounts = append([]runtime.Mount{{Volume: volumeName(d.base), Target: d.spec.Volume}}, cs.Mounts...)
	}
	return cs
}

// volumeName is the named volume of a stateful instance.
func volumeName(base string) string { return base + "_data" }
