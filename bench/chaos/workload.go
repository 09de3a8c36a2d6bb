package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// Spec names of the workload.
const (
	// Project and Env of every service the workload writes.
	Project = "chaos"
	Env     = "test"
	// maxOpsPerWorker bounds a writer however long the faults take.
	maxOpsPerWorker = 2000
)

// Workload is the bounded stream of writes: Workers writers, each owning
// Services services that it deploys, updates (a new image or variable) and
// undeploys, one operation at a time, each sent to the next node in turn,
// every operation recorded in the history.
type Workload struct {
	c      *Cluster
	h      *History
	images []string
	seed   uint64

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartWorkload starts the writers; images are the images deploys
// alternate between; seed makes the choices repeatable.
func StartWorkload(ctx context.Context, c *Cluster, h *History, images []string, seed uint64) *Workload {
	ctx, cancel := context.WithCancel(ctx)
	w := &Workload{c: c, h: h, images: images, seed: seed, cancel: cancel}
	for i := 0; i < c.cfg.Workers; i++ {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.writer(ctx, i)
		}()
	}
	return w
}

// Stop ends the writers and waits for the operations in flight.
func (w *Workload) Stop() {
	w.cancel()
	w.wg.Wait()
}

// ServiceName is the project/env/service name of writer i's service j.
func ServiceName(worker, j, perWorker int) string {
	return fmt.Sprintf("%s/%s/s%d", Project, Env, worker*perWorker+j+1)
}

func (w *Workload) writer(ctx context.Context, id int) {
	cfg := w.c.cfg
	rng := rand.New(rand.NewPCG(w.seed, uint64(id)))
	exists := make([]bool, cfg.Services) // what this writer believes
	pause := time.NewTimer(time.Duration(rng.Int64N(int64(cfg.OpPause) + 1)))
	defer pause.Stop()
	for n := 0; n < maxOpsPerWorker; n++ {
		select {
		case <-ctx.Done():
			return
		case <-pause.C:
		}
		nodes := w.c.Nodes()
		target := nodes[(n+id)%len(nodes)]
		j := rng.IntN(cfg.Services)
		name := ServiceName(id, j, cfg.Services)
		kind := OpDeploy
		if exists[j] && rng.IntN(4) == 0 {
			kind = OpUndeploy
		}
		opID := w.h.Begin(id, kind, name, target.ID)
		// The operation runs to its own timeout even when the run stops,
		// so the record has its outcome.
		octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.OpTimeout)
		var out Outcome
		if kind == OpDeploy {
			spec := w.spec(name, n, rng)
			res, err := w.c.Client(target).DeploySpec(octx, spec)
			out = w.h.Finish(opID, err, res.Generation)
			if out == OutcomeOK {
				exists[j] = true
			}
		} else {
			err := w.c.Client(target).Undeploy(octx, name)
			out = w.h.Finish(opID, err, 0)
			if out == OutcomeOK {
				exists[j] = false
			}
		}
		cancel()
		if out == OutcomeUnknown {
			exists[j] = rng.IntN(2) == 0 // either may be true; try both paths
		}
		pause.Reset(cfg.OpPause)
	}
}

// spec is a deploy of service name: the test app with one of the images,
// a variable that changes every time, one or two replicas rolled out two
// at a time, and a host in the fake zone (so DNS records follow it).
func (w *Workload) spec(name string, n int, rng *rand.Rand) raftfsm.ServiceSpec {
	svc := name[len(Project)+len(Env)+2:]
	return raftfsm.ServiceSpec{
		Project: Project, Env: Env, Service: svc, Kind: raftfsm.KindService,
		Image: w.images[rng.IntN(len(w.images))], Port: 8080,
		Hosts:    []string{svc + "." + Zone},
		Replicas: 1 + rng.IntN(2), MaxParallel: 2,
		Vars:   map[string]string{"CHAOS_WRITE": fmt.Sprint(n)},
		Health: raftfsm.HealthSpec{Path: "/health"},
	}
}

// Sampler asks every node for its leader and term every
// Config.SampleEvery and records the answers.
type Sampler struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartSampler starts one sampling loop per node.
func StartSampler(ctx context.Context, c *Cluster, h *History) *Sampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &Sampler{cancel: cancel}
	for _, n := range c.Nodes() {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			t := time.NewTicker(c.cfg.SampleEvery)
			defer t.Stop()
			for {
				info, err := c.clusterInfo(ctx, n, time.Second)
				if ctx.Err() != nil {
					return
				}
				smp := Sample{At: time.Now(), Node: n.ID, Leader: info.Leader.ID, Term: info.Term}
				if err != nil {
					smp.Err = err.Error()
				}
				h.AddSample(smp)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	return s
}

// Stop ends the sampling.
func (s *Sampler) Stop() {
	s.cancel()
	s.wg.Wait()
}
