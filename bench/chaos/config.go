package chaos

import (
	"fmt"
	"time"
)

// Config sizes a chaos run. DefaultConfig is the bounded run of
// `scripts/dev.sh test`; FullConfig is bench/chaos.sh's.
type Config struct {
	// Nodes is the number of agents (3 or 5: raft needs a majority).
	Nodes int
	// Rounds is how many times the whole fault sequence runs.
	Rounds int
	// Workers is the number of concurrent writers, each owning Services
	// services that it deploys, updates and undeploys one operation at a time.
	Workers, Services int
	// OpPause is the pause between one writer's operations: shorter is more
	// load on two shared cores, longer is fewer writes in flight per fault.
	OpPause time.Duration
	// KeyWriters write Keys keys each (registry credentials: raft writes
	// that start no container), KeyWriteRate writes a second between them
	// when the cluster keeps up: the write load a fault meets. Each writer
	// waits for its write, so the rate is reached only while a write
	// takes less than KeyWriters/KeyWriteRate; faults stall writes, so
	// the rate asked for is well above the 50 a second the run must keep
	// on average (6 writers at 60/s kept 29/s on a loaded machine, 16 at
	// 80/s 29-46/s: a write sent to a paused or cut-off node held its
	// writer for the whole OpTimeout, and in a few seconds every writer was
	// holding one). KeyOpTimeout bounds one key write: short, so that a
	// writer soon moves on to the next node, as a client with a deadline
	// does; its write's outcome is then unknown, and checked as such.
	KeyWriters, Keys int
	KeyWriteRate     float64
	KeyOpTimeout     time.Duration
	// Readers read every key in a loop, ReadPause apart.
	Readers   int
	ReadPause time.Duration
	// OpTimeout bounds one client operation; an operation that runs out of
	// it has an unknown outcome.
	OpTimeout time.Duration
	// SampleEvery is how often every node is asked for its leader and term:
	// shorter catches shorter-lived leaders, at the cost of more requests.
	SampleEvery time.Duration
	// HealthInterval is the agents' HEALTH_CHECK_INTERVAL: short, so the
	// leader's pings (5 failures power-cycle a node) act within a fault.
	HealthInterval time.Duration
	// FaultFor is how long a fault lasts before it is healed (pause,
	// partition, full disk, a killed leader before it is started again).
	FaultFor time.Duration
	// SettleTimeout bounds the wait for a healthy cluster between faults and
	// for convergence after the last heal.
	SettleTimeout time.Duration
	// MembershipGrace is how long, after a fault is healed and raft agrees
	// again, the gossip may take to show every node alive to the leader.
	// Longer tolerates slow anti-entropy; every fault whose gossip does not
	// heal in time adds it to the run.
	MembershipGrace time.Duration
	// FailoverGoal is the target for the API to accept a write again after a
	// fault (printed); FailoverLimit is what the suite asserts, looser so
	// that the test is stable on a loaded machine.
	FailoverGoal, FailoverLimit time.Duration
	// DiskSize is each agent's data-dir tmpfs ("64m"): big enough for the
	// raft log of a run, small enough to fill at once.
	DiskSize string
}

// DefaultConfig is the bounded run: 3 nodes, every fault once.
func DefaultConfig() Config {
	return Config{
		Nodes:           3,
		Rounds:          1,
		Workers:         3,
		Services:        1,
		OpPause:         1500 * time.Millisecond,
		KeyWriters:      32,
		Keys:            2,
		KeyWriteRate:    100,
		KeyOpTimeout:    2 * time.Second,
		Readers:         2,
		ReadPause:       50 * time.Millisecond,
		OpTimeout:       10 * time.Second,
		SampleEvery:     250 * time.Millisecond,
		HealthInterval:  time.Second,
		FaultFor:        4 * time.Second,
		SettleTimeout:   60 * time.Second,
		MembershipGrace: 15 * time.Second,
		FailoverGoal:    time.Second,
		FailoverLimit:   10 * time.Second,
		DiskSize:        "64m",
	}
}

// FullConfig is bench/chaos.sh's run: 5 nodes, more writers, several rounds.
func FullConfig() Config {
	c := DefaultConfig()
	c.Nodes, c.Rounds, c.Workers, c.Services = 5, 3, 4, 2
	c.OpPause = time.Second
	c.KeyWriters, c.KeyWriteRate, c.Readers = 40, 120, 3
	c.FaultFor = 6 * time.Second
	c.SettleTimeout = 90 * time.Second
	return c
}

// Validate checks the config before anything is started.
func (c Config) Validate() error {
	switch {
	case c.Nodes < 3 || c.Nodes > 9:
		return fmt.Errorf("chaos config: %d nodes: want 3 to 9", c.Nodes)
	case c.Rounds < 1, c.Workers < 1, c.Services < 1:
		return fmt.Errorf("chaos config: rounds, workers and services must be at least 1 (have %d, %d, %d)", c.Rounds, c.Workers, c.Services)
	case c.KeyWriters < 0, c.Readers < 0, c.KeyWriters > 0 && (c.Keys < 1 || c.KeyWriteRate <= 0 || c.KeyOpTimeout <= 0), c.Readers > 0 && c.ReadPause <= 0:
		return fmt.Errorf("chaos config: key writers need keys, a positive rate and a timeout, readers a positive pause")
	case c.OpTimeout <= 0, c.SampleEvery <= 0, c.FaultFor <= 0, c.SettleTimeout <= 0, c.FailoverLimit <= 0, c.MembershipGrace <= 0:
		return fmt.Errorf("chaos config: timings must be positive")
	case c.HealthInterval < 100*time.Millisecond:
		return fmt.Errorf("chaos config: health interval %s is below the agent's 100ms floor", c.HealthInterval)
	case c.DiskSize == "":
		return fmt.Errorf("chaos config: no disk size")
	}
	return nil
}
