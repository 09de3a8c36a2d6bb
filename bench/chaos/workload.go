package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/control"
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

// Workload is the bounded stream of operations, every one recorded in the
// history and sent to the next node in turn:
//   - Workers deploy writers, each owning Services services that it
//     deploys, updates (a new image or variable) and undeploys, one
//     operation at a time: the containers, the edge and DNS follow them;
//   - KeyWriters key writers, each owning Keys keys (private registry
//     credentials: a raft write that starts no container) that it puts and
//     deletes, one at a time, KeyWriteRate writes a second between them;
//   - Readers readers that read every key at once, linearizably, in a loop.
//
// CheckAcknowledged holds every acknowledged write to the final state and
// CheckReads every read to the writes around it.
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
	for i := 0; i < c.cfg.KeyWriters; i++ {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.keyWriter(ctx, i)
		}()
	}
	for i := 0; i < c.cfg.Readers; i++ {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.reader(ctx, i)
		}()
	}
	return w
}

// keyDomain holds the workload's keys: registry host names no image uses.
const keyDomain = "chaos-keys.test"

// KeyName is the history's name of key writer i's key j ("key/<registry>").
func KeyName(writer, j, perWriter int) string {
	return "key/" + keyRegistry(writer*perWriter+j+1)
}

func keyRegistry(k int) string { return fmt.Sprintf("r%d.%s", k, keyDomain) }

// keyOfRegistry is the history's key name of a registry, ok only for the
// workload's own.
func keyOfRegistry(r string) (string, bool) {
	if !strings.HasSuffix(r, "."+keyDomain) {
		return "", false
	}
	return "key/" + r, true
}

// registryOf is the registry of a history key name.
func registryOf(key string) string { return strings.TrimPrefix(key, "key/") }

// keyValue is the value a put writes, as the registry's user name carries it.
func keyValue(user string) (int64, bool) {
	v, err := strconv.ParseInt(strings.TrimPrefix(user, "v"), 10, 64)
	return v, err == nil && strings.HasPrefix(user, "v")
}

// keyWriter puts and deletes its keys at its share of KeyWriteRate: the
// next write goes when its time comes, or at once when the last one took
// longer (it never bursts to catch up).
func (w *Workload) keyWriter(ctx context.Context, id int) {
	cfg := w.c.cfg
	rng := rand.New(rand.NewPCG(w.seed^0x6b6579, uint64(id)))
	exists := make([]bool, cfg.Keys)
	every := time.Duration(float64(time.Second) * float64(cfg.KeyWriters) / cfg.KeyWriteRate)
	next := time.Now().Add(time.Duration(rng.Int64N(int64(every) + 1)))
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for n := int64(1); ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		nodes := w.c.Nodes()
		target := nodes[(int(n)+id)%len(nodes)]
		j := rng.IntN(cfg.Keys)
		key := KeyName(id, j, cfg.Keys)
		octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.KeyOpTimeout)
		if exists[j] && rng.IntN(5) == 0 {
			opID := w.h.Begin(id, OpDelete, key, target.ID)
			switch w.h.Finish(opID, w.c.Client(target).DeleteRegistry(octx, registryOf(key)), 0) {
			case OutcomeOK:
				exists[j] = false
			case OutcomeUnknown:
				exists[j] = rng.IntN(2) == 0 // either may be true; try both paths
			}
		} else {
			// Values grow per writer, so each put of a key writes a value
			// of its own.
			opID := w.h.BeginValue(id, OpPut, key, target.ID, n)
			err := w.c.Client(target).PutRegistry(octx, control.RegistryRequest{Registry: registryOf(key), Username: fmt.Sprintf("v%d", n), Password: "chaos"})
			if out := w.h.Finish(opID, err, 0); out == OutcomeOK {
				exists[j] = true
			}
		}
		cancel()
		next = next.Add(every)
		if now := time.Now(); next.Before(now) {
			next = now
		}
		timer.Reset(time.Until(next))
	}
}

// reader reads every key through the next node in turn, linearizably,
// ReadPause apart.
func (w *Workload) reader(ctx context.Context, id int) {
	cfg := w.c.cfg
	pause := time.NewTimer(cfg.ReadPause)
	defer pause.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-pause.C:
		}
		nodes := w.c.Nodes()
		target := nodes[(n+id)%len(nodes)]
		opID := w.h.Begin(id, OpRead, "", target.ID)
		octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.OpTimeout)
		seen, err := readKeys(octx, w.c.Client(target))
		cancel()
		w.h.FinishRead(opID, err, seen)
		pause.Reset(cfg.ReadPause)
	}
}

// readKeys reads the workload's keys and their values, linearizably.
func readKeys(ctx context.Context, cl *apiclient.Client) (map[string]int64, error) {
	regs, err := cl.Registries(ctx, apiclient.Consistent())
	if err != nil {
		return nil, err
	}
	seen := map[string]int64{}
	for _, r := range regs {
		key, ok := keyOfRegistry(r.Registry)
		if !ok {
			continue
		}
		v, ok := keyValue(r.Username)
		if !ok {
			return nil, fmt.Errorf("registry %s: user name %q is not one the workload writes", r.Registry, r.Username)
		}
		seen[key] = v
	}
	return seen, nil
}

// FinalKeys reads the keys after the heal (any node, with retries), for
// CheckAcknowledged: each present key with its value.
func FinalKeys(ctx context.Context, c *Cluster) (map[string]int64, error) {
	cl, err := c.AnyClient()
	if err != nil {
		return nil, err
	}
	seen, err := readKeys(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("registries: %w", err)
	}
	return seen, nil
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
