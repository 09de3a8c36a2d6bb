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
// code and duration go to the leader.
type cronRunner struct {
	a    *Agent
	mu   sync.Mutex
	jobs map[string]*cronJob
}

type cronJob struct {
	id     string
	hash   string
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	state health.CronState
}

func newCronRunner(a *Agent) *cronRunner { return &cronRunner{a: a, jobs: map[string]*cronJob{}} }

// set starts the job of instance id, or restarts it when its spec changed.
func (r *cronRunner) set(id string, d desiredInstance, image runtime.ImageInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if j, ok := r.jobs[id]; ok {
		if j.hash == d.hash {
			return
		}
		j.cancel()
		<-j.done
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &cronJob{id: id, hash: d.hash, cancel: cancel, done: make(chan struct{}),
		state: health.CronState{Schedule: d.spec.Schedule, CreatedAt: d.in.CreatedAt, LastRunAt: d.in.LastRunAt,
			LastExitCode: d.in.LastRunExit, LastDuration: d.in.LastRunDuration.D()}}
	if j.state.CreatedAt.IsZero() {
		j.state.CreatedAt = time.Now()
	}
	r.jobs[id] = j
	go func() {
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

// stopAll stops every job (agent shutdown).
func (r *cronRunner) stopAll() {
	r.mu.Lock()
	ids := make([]string, 0, len(r.jobs))
	for id := range r.jobs {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	for _, id := range ids {
		r.remove(id)
	}
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
	c, err := a.rt.CreateAndStart(ctx, spec)
	if err != nil {
		log.Warn("cron run did not start", "err", err)
	} else if exit, err = a.rt.Wait(ctx, c.ID); err != nil {
		log.Warn("cron run wait", "err", err)
		exit = -1
	}
	finished := time.Now()
	log.Info("cron run finished", "exit", exit, "duration", finished.Sub(started).Round(time.Millisecond))
	j.mu.Lock()
	j.state.RunningSince = time.Time{}
	j.state.LastRunAt, j.state.LastExitCode, j.state.LastDuration = started, exit, finished.Sub(started)
	j.mu.Unlock()
	rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.report(rctx, &raftfsm.RecordCronRun{At: a.now(), Node: a.cfg.NodeID, Instance: j.id,
		StartedAt: started.UTC(), FinishedAt: finished.UTC(), ExitCode: exit}); err != nil {
		log.Warn("record cron run", "err", err)
	}
}
