package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/dropmesh/dropmesh/node/clusterconf"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Fault is one kind of failure the suite injects: Inject starts it (and
// says which nodes it took out of service, so the recovery is measured
// through the others), Heal ends it.
type Fault struct {
	Name string
	// Pick chooses the fault's targets in round r (0-based).
	Pick func(ctx context.Context, c *Cluster, r int) ([]*Node, error)
	// Inject starts the fault on the targets.
	Inject func(ctx context.Context, c *Cluster, targets []*Node) error
	// Heal ends it.
	Heal func(ctx context.Context, c *Cluster, targets []*Node) error
}

// Faults is the sequence of one round, in order: kill the leader, pause a
// node, partition a minority, partition the leader, fill a node's disk.
// Restarting every node in turn is RestartAll, run after them.
func Faults() []Fault {
	each := func(f func(*Cluster, context.Context, *Node) error) func(context.Context, *Cluster, []*Node) error {
		return func(ctx context.Context, c *Cluster, ns []*Node) error {
			var errs []error
			for _, n := range ns {
				errs = append(errs, f(c, ctx, n))
			}
			return errors.Join(errs...)
		}
	}
	return []Fault{
		{Name: "kill-leader", Pick: pickLeader,
			Inject: each((*Cluster).Kill), Heal: each((*Cluster).StartAgent)},
		{Name: "pause", Pick: alternate(pickLeader, pickFollowers(1)),
			Inject: each((*Cluster).Pause), Heal: each((*Cluster).Unpause)},
		{Name: "partition-minority", Pick: pickMinority,
			Inject: each((*Cluster).Disconnect), Heal: each((*Cluster).Connect)},
		{Name: "partition-leader", Pick: pickLeader,
			Inject: each((*Cluster).Disconnect), Heal: each((*Cluster).Connect)},
		{Name: "disk-full", Pick: alternate(pickFollowers(1), pickLeader),
			Inject: each(func(c *Cluster, ctx context.Context, n *Node) error {
				out, err := c.FillDisk(ctx, n)
				c.history.AddFault("disk-full", n.ID, "note", out)
				return err
			}),
			Heal: each((*Cluster).FreeDisk)},
	}
}

func pickLeader(ctx context.Context, c *Cluster, _ int) ([]*Node, error) {
	l, err := c.WaitLeader(ctx, c.cfg.SettleTimeout)
	if err != nil {
		return nil, err
	}
	return []*Node{l}, nil
}

// pickFollowers picks k nodes that do not lead, the next ones each round.
func pickFollowers(k int) func(context.Context, *Cluster, int) ([]*Node, error) {
	return func(ctx context.Context, c *Cluster, r int) ([]*Node, error) {
		l, err := c.WaitLeader(ctx, c.cfg.SettleTimeout)
		if err != nil {
			return nil, err
		}
		var fs []*Node
		for _, n := range c.Nodes() {
			if n != l {
				fs = append(fs, n)
			}
		}
		var out []*Node
		for i := 0; i < k && i < len(fs); i++ {
			out = append(out, fs[(r*k+i)%len(fs)])
		}
		return out, nil
	}
}

// pickMinority picks the largest minority of followers ((n-1)/2 nodes).
func pickMinority(ctx context.Context, c *Cluster, r int) ([]*Node, error) {
	return pickFollowers((len(c.Nodes())-1)/2)(ctx, c, r)
}

// alternate picks with a in even rounds and b in odd ones.
func alternate(a, b func(context.Context, *Cluster, int) ([]*Node, error)) func(context.Context, *Cluster, int) ([]*Node, error) {
	return func(ctx context.Context, c *Cluster, r int) ([]*Node, error) {
		if r%2 == 0 {
			return a(ctx, c, r)
		}
		return b(ctx, c, r)
	}
}

// Runner injects faults one at a time and measures how soon the API
// accepts a write after each.
type Runner struct {
	c          *Cluster
	h          *History
	Recoveries []Recovery
	Membership []MembershipHeal
	probes     int
}

// NewRunner returns a runner for the cluster.
func NewRunner(c *Cluster, h *History) *Runner { return &Runner{c: c, h: h} }

// Run injects f in round r, measures the recovery, lets the fault last
// Config.FaultFor, heals it and waits for a healthy cluster.
func (r *Runner) Run(ctx context.Context, f Fault, round int) error {
	cfg := r.c.cfg
	targets, err := f.Pick(ctx, r.c, round)
	if err != nil {
		return fmt.Errorf("%s: pick targets: %w", f.Name, err)
	}
	names := ids(targets)
	r.c.logf("fault %s on %v", f.Name, names)
	r.h.AddFault(f.Name, fmt.Sprint(names), "inject", "")
	start := time.Now()
	if err := f.Inject(ctx, r.c, targets); err != nil {
		return fmt.Errorf("%s: inject: %w", f.Name, err)
	}
	took, ui := r.measure(ctx, targets, start)
	r.Recoveries = append(r.Recoveries, Recovery{Fault: f.Name, Target: fmt.Sprint(names), Took: took, UITook: ui})
	r.c.logf("fault %s: a write was accepted after %s, the UI answered after %s", f.Name, took.Round(time.Millisecond), ui.Round(time.Millisecond))
	if err := waitUntil(ctx, start.Add(cfg.FaultFor)); err != nil {
		return err
	}
	r.h.AddFault(f.Name, fmt.Sprint(names), "heal", "")
	if err := f.Heal(ctx, r.c, targets); err != nil {
		return fmt.Errorf("%s: heal: %w", f.Name, err)
	}
	if err := r.c.WaitHealthy(ctx, cfg.SettleTimeout); err != nil {
		return fmt.Errorf("after %s on %v the cluster did not heal: %w", f.Name, names, err)
	}
	r.waitMembership(ctx, f.Name, fmt.Sprint(names))
	return nil
}

// waitMembership records how soon the leader sees every node alive in the
// gossip again, giving up after Config.MembershipGrace.
func (r *Runner) waitMembership(ctx context.Context, fault, target string) {
	start := time.Now()
	m := MembershipHeal{Fault: fault, Target: target, Took: -1}
	if err := r.c.WaitMembership(ctx, r.c.cfg.MembershipGrace); err != nil {
		r.c.logf("fault %s: the gossip did not heal: %v", fault, err)
		r.h.AddFault(fault, target, "note", "the gossip did not heal: "+err.Error())
	} else {
		m.Took = time.Since(start)
	}
	r.Membership = append(r.Membership, m)
}

// RestartAll restarts every node in turn (a graceful stop and start, as
// an upgrade would), each once the cluster is healthy again.
func (r *Runner) RestartAll(ctx context.Context) error {
	for _, n := range r.c.Nodes() {
		r.c.logf("fault restart on %s", n.ID)
		r.h.AddFault("restart", n.ID, "inject", "")
		// The clock starts once the node is down (its graceful stop hands
		// leadership over first) and runs while it starts again: the outage
		// is what the spared nodes' clients see, not how long Docker takes.
		if err := r.c.Stop(ctx, n); err != nil {
			return err
		}
		start := time.Now()
		started := make(chan error, 1)
		go func() { started <- r.c.Start(ctx, n) }()
		took, ui := r.measure(ctx, []*Node{n}, start)
		if err := <-started; err != nil {
			return err
		}
		r.Recoveries = append(r.Recoveries, Recovery{Fault: "restart", Target: n.ID, Took: took, UITook: ui})
		r.h.AddFault("restart", n.ID, "heal", "")
		if err := r.c.WaitHealthy(ctx, r.c.cfg.SettleTimeout); err != nil {
			return fmt.Errorf("after restarting %s the cluster did not heal: %w", n.ID, err)
		}
		r.waitMembership(ctx, "restart", n.ID)
	}
	return nil
}

// measure returns how long after start a write (a new project) was first
// accepted through a node the fault spared, trying them in turn, and how
// long until the web UI's sign-in page answered through one of them (a
// follower redirects or proxies to the leader); -1 for either when it did
// not happen within three times the failover limit.
func (r *Runner) measure(ctx context.Context, faulted []*Node, start time.Time) (write, ui time.Duration) {
	var spared []*Node
	for _, n := range r.c.Nodes() {
		if !slices.Contains(faulted, n) {
			spared = append(spared, n)
		}
	}
	deadline := start.Add(3 * r.c.cfg.FailoverLimit)
	uiDone := make(chan time.Duration, 1)
	go func() { uiDone <- r.measureUI(ctx, spared, start, deadline) }()
	write = r.measureWrite(ctx, spared, start, deadline)
	return write, <-uiDone
}

func (r *Runner) measureWrite(ctx context.Context, spared []*Node, start, deadline time.Time) time.Duration {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := 0; time.Now().Before(deadline); i++ {
		n := spared[i%len(spared)]
		r.probes++
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := r.c.Client(n).CreateProject(actx, raftfsm.DefaultWorkspaceName, fmt.Sprintf("probe-%d", r.probes))
		cancel()
		if err == nil {
			return time.Since(start)
		}
		select {
		case <-ctx.Done():
			return -1
		case <-tick.C:
		}
	}
	return -1
}

// measureUI asks the spared nodes in turn for the UI's sign-in page,
// following redirects, until one answers 200.
func (r *Runner) measureUI(ctx context.Context, spared []*Node, start, deadline time.Time) time.Duration {
	// The sign-in page answers in milliseconds; a short timeout keeps one
	// hung attempt (a redirect to a leader that just went away) from
	// hiding when the UI came back.
	hc := &http.Client{Timeout: 500 * time.Millisecond}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := 0; time.Now().Before(deadline); i++ {
		n := spared[i%len(spared)]
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(n.IP, strconv.Itoa(clusterconf.DefaultUIPort))+"/login", nil)
		if err != nil {
			return -1
		}
		if resp, err := hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
		select {
		case <-ctx.Done():
			return -1
		case <-tick.C:
		}
	}
	return -1
}

// waitUntil waits until t or the end of ctx.
func waitUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

func ids(ns []*Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.ID
	}
	return out
}
