package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/node/health"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// cronRunner runs this node's scheduled tasks: each job fires on its
// schedule, never two runs of one job at once, and every run's time, exit
// code and duration go to the leader. The agent owns it: every job runs on
// the context the runner was made with and stopAll (agent shutdown) ends
// them all and waits, so no job outlives its agent or its Docker client.
type cronRunner struct {
	a   *Agent
	ctx context.Context
	wg  sync.WaitGroup // the jobs' goroutines

	mu     sync.Mutex
	jobs   map[string]*cronJob
	closed bool
}

type cronJob struct {
	id     string
	hash   string
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	state health.CronState
}

// newCronRunner makes the runner of agent a; its jobs end with ctx.
func newCronRunner(ctx context.Context, a *Agent) *cronRunner {
	return &cronRunner{a: a, ctx: ctx, jobs: map[string]*cronJob{}}
}

// set starts the job of instance id, or restarts it when its spec changed.
// After stopAll it starts nothing.
func (r *cronRunner) set(id string, d desiredInstance, image runtime.ImageInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.ctx.Err() != nil {
		return
	}
	if j, ok := r.jobs[id]; ok {
		if j.hash == d.hash {
			return
		}
		j.cancel()
		<-j.done
	}
	ctx, cancel := context.WithCancel(r.ctx)
	j := &cronJob{id: id, hash: d.hash, cancel: cancel, done: make(chan struct{}),
		state: health.CronState{Schedule: d.spec.Schedule, CreatedAt: d.in.CreatedAt, LastRunAt: d.in.LastRunAt,
			LastExitCode: d.in.LastRunExit, LastDuration: d.in.LastRunDuration.D()}}
	if j.state.CreatedAt.IsZero() {
		j.state.CreatedAt = time.Now()
	}
	r.jobs[id] = j
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(j.done)
		r.loop(ctx, j, d, image)
	}()
}

// remove stops the job of instance id.
func (r *cronRunner) remove(id string) {
	r.mu.Lock()
	j, ok := r.jobs[id]
	delete(r.jobs, id)
	r.mu.Unlock()
	if ok {
		j.cancel()
		<-j.done
	}
}

// sync stops jobs whose instance is no longer a cron job on this node.
func (r *cronRunner) sync(ctx context.Context) {
	keep := map[string]bool{}
	r.a.fsm.View(func(s *raftfsm.State) {
		for id, in := range s.Instances {
			if in.Node != r.a.cfg.NodeID {
				continue
			}
			if svc, ok := s.Services[in.Service]; ok {
				if spec, ok := svc.Revision(in.DesiredGeneration); ok && spec.Kind == raftfsm.KindCron {
					keep[id] = true
				}
			}
		}
	})
	r.mu.Lock()
	var drop []string
	for id := range r.jobs {
		if !keep[id] {
			drop = append(drop, id)
		}
	}
	r.mu.Unlock()
	for _, id := range drop {
		r.remove(id)
	}
}

// stopAll stops every job and waits for them (agent shutdown); set starts
// none afterwards. A run in progress is left to finish in Docker; it is not
// recorded, and the next agent's first run removes its container.
func (r *cronRunner) stopAll() {
	r.mu.Lock()
	r.closed = true
	ids := make([]string, 0, len(r.jobs))
	for id := range r.jobs {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	for _, id := range ids {
		r.remove(id)
	}
	r.wg.Wait()
}

// running counts the jobs (tests).
func (r *cronRunner) running() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.jobs)
}

// state is what the health check needs of a job.
func (r *cronRunner) state(id string) (health.CronState, bool) {
	r.mu.Lock()
	j, ok := r.jobs[id]
	r.mu.Unlock()
	if !ok {
		return health.CronState{}, false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.state, true
}

func (r *cronRunner) loop(ctx context.Context, j *cronJob, d desiredInstance, image runtime.ImageInfo) {
	a := r.a
	log := a.logger.With("instance", j.id, "cron", d.spec.Schedule)
	for {
		next, err := health.NextFire(d.spec.Schedule, time.Now())
		if err != nil {
			log.Error("bad schedule", "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		r.run(ctx, j, d, image, log)
	}
}

// run runs one job to completion and records it. The previous run's
// container is kept until the next run, so its log can be read.
func (r *cronRunner) run(ctx context.Context, j *cronJob, d desiredInstance, image runtime.ImageInfo, log interface {
	Info(string, ...any)
	Warn(string, ...any)
}) {
	a := r.a
	started := time.Now()
	j.mu.Lock()
	j.state.RunningSince = started
	j.mu.Unlock()
	prefix := d.base + "-run-"
	if old, err := a.rt.List(ctx, a.ownLabels(map[string]string{runtime.LabelInstance: j.id})); err == nil {
		for _, c := range old {
			_ = a.rt.Remove(ctx, c.ID)
		}
	}
	spec := a.containerSpec(d, image.ID, fmt.Sprintf("%s%d", prefix, started.Unix()))
	exit := -1
	err := a.attachNetwork(ctx, &spec, d.svc)
	var c runtime.ContainerInfo
	if err == nil {
		c, err = a.rt.CreateAndStart(ctx, spec)
	}
	if err != nil {
		log.Warn("cron run did not start", "err", err)
	} else if exit, err = a.rt.Wait(ctx, c.ID); err != nil {
		log.Warn("cron run wait", "err", err)
		exit = -1
	}
	finished := time.Now()
	if ctx.Err() != nil {
		// Cut short by the job's end (agent shutdown, a new spec): not a
		// run to record.
		j.mu.Lock()
		j.state.RunningSince = time.Time{}
		j.mu.Unlock()
		return
	}
	log.Info("cron run finished", "exit", exit, "duration", finished.Sub(started).Round(time.Millisecond))
	j.mu.Lock()
	j.state.RunningSince = time.Time{}
	j.state.LastRunAt, j.state.LastExitCode, j.state.LastDuration = started, exit, finished.Sub(started)
	j.mu.Unlock()
	// The record outlives a shutdown that begins now, briefly.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := a.report(rctx, &raftfsm.RecordCronRun{At: a.now(), Node: a.cfg.NodeID, Instance: j.id,
		StartedAt: started.UTC(), FinishedAt: finished.UTC(), ExitCode: exit}); err != nil {
		log.Warn("record cron run", "err", err)
	}
}
