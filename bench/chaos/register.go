package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/bench/lincheck"
	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/control"
)

// RegisterInitial is the value the register workload sets before it starts.
const RegisterInitial = "chaos-init"

// Register is the linearizability workload of the chaos run: clients that
// write and read one settings field (droplet_size) on random nodes through
// the faults. Its history must be linearizable (CheckRegister): default
// reads, and reads that carry the client's own writes' index.
type Register struct {
	c      *Cluster
	h      lincheck.History
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartRegister sets the register and starts clients of it.
func StartRegister(ctx context.Context, c *Cluster, clients int, seed uint64) (*Register, error) {
	initial := RegisterInitial
	nodes := c.Nodes()
	if err := c.Client(nodes[0]).UpdateSettings(ctx, control.SettingsRequest{DropletSize: &initial}); err != nil {
		return nil, fmt.Errorf("register workload: set the initial value: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Register{c: c, cancel: cancel}
	for i := range clients {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.client(ctx, i, rand.New(rand.NewPCG(seed, uint64(1000+i))))
		}()
	}
	return r, nil
}

// Stop ends the clients and waits for their operations in flight.
func (r *Register) Stop() {
	r.cancel()
	r.wg.Wait()
}

func (r *Register) client(ctx context.Context, id int, rng *rand.Rand) {
	cfg := r.c.cfg
	for seq := 0; seq < maxOpsPerWorker && ctx.Err() == nil; seq++ {
		nodes := r.c.Nodes()
		target := nodes[rng.IntN(len(nodes))]
		cl := r.c.Client(target)
		octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.OpTimeout)
		start := time.Now()
		if rng.IntN(2) == 0 {
			v := fmt.Sprintf("r%d-%d", id, seq)
			err := cl.UpdateSettings(octx, control.SettingsRequest{DropletSize: &v})
			op := lincheck.Op{Client: id, Write: true, Value: v, Call: start, Return: time.Now()}
			switch code := apiclient.Code(err); {
			case err == nil:
				r.h.Add(op)
			case code == control.CodeNotLeader || code == control.CodeNoLeader || code == control.CodeInvalid:
				// Refused before it reached the log: not part of the history.
			default:
				op.Unknown = true
				r.h.Add(op)
			}
		} else if s, err := cl.Settings(octx); err == nil {
			r.h.Add(lincheck.Op{Client: id, Value: s.DropletSize, Call: start, Return: time.Now()})
		}
		cancel()
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(rng.Int64N(int64(cfg.OpPause)/4 + 1))):
		}
	}
}

// CheckRegister checks that the register workload's history is
// linearizable.
func CheckRegister(r *Register) *Violation {
	res := lincheck.Check(r.h.Ops(), RegisterInitial, 2*time.Minute)
	if res.OK() {
		return nil
	}
	v := &Violation{Check: "linearizable reads", Problems: []string{fmt.Sprintf("the history of %d reads and %d writes of one settings field is %s", res.Reads, res.Writes, res.Verdict)}}
	if res.Visualization != "" {
		v.History = []string{"porcupine's view of it: " + res.Visualization}
	}
	return v
}
