package mesh

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
)

// KeySize is the length of a gossip key: AES-256.
const KeySize = 32

// ErrInvalidConfig marks a Config that New refuses.
var ErrInvalidConfig = errors.New("mesh: invalid config")

// Config configures a Mesh. Start from DefaultConfig, set the identity,
// addresses, ClusterName, Keys and Meta, and leave the timings alone unless
// TUNING.md says otherwise.
type Config struct {
	// NodeID is this node's id and memberlist node name (a DNS label).
	NodeID string

	// BindAddr and BindPort are where gossip listens (UDP and TCP on the same
	// port). Port 0 picks a free port (tests).
	BindAddr string
	BindPort int
	// AdvertiseAddr and AdvertisePort are what peers dial; empty/0 means the
	// bound address and port.
	AdvertiseAddr string
	AdvertisePort int

	// ClusterName labels every packet and stream and is the AES-GCM
	// associated data: a node of another cluster cannot join even with the
	// same key. Required, at most 255 bytes.
	ClusterName string
	// Keys are the gossip keys, each KeySize bytes; Keys[0] encrypts, all of
	// them decrypt. Required: gossip is never plaintext.
	Keys [][]byte

	// Meta is what this node advertises; Meta.ID defaults to NodeID and must
	// equal it.
	Meta NodeMeta

	// Logger receives mesh logs and memberlist's own (adapted to slog).
	// Nil discards.
	Logger *slog.Logger

	// ProbeInterval is how often each node probes one other member. Failure
	// detection time scales with it (a dead node is suspected about one
	// interval after the first failed probe, and declared dead
	// SuspicionMult intervals later); so does the idle traffic (one ping and
	// one ack per node per interval).
	ProbeInterval time.Duration
	// ProbeTimeout is how long a direct ping waits for its ack before the
	// indirect probes start. Set it above the 99th percentile RTT plus
	// scheduling jitter; it must leave room for the indirect round trip
	// within ProbeInterval.
	ProbeTimeout time.Duration
	// GossipInterval and GossipNodes: every GossipInterval, pending
	// broadcasts (alive, suspect, dead, metadata) are sent to GossipNodes
	// random members. An idle tick sends nothing, so a short interval only
	// costs bandwidth while something is spreading.
	GossipInterval time.Duration
	GossipNodes    int
	// PushPullInterval is the period of full state exchanges over TCP with one
	// random member: anti-entropy that repairs anything gossip missed. 0
	// disables it (not recommended).
	PushPullInterval time.Duration

	// SuspicionMult sets the minimum suspicion timeout:
	// SuspicionMult x max(1, log10 N) x ProbeInterval. It is the time a
	// suspected node has to refute before it is declared dead: the main
	// guard against false positives.
	SuspicionMult int
	// SuspicionMaxTimeoutMult multiplies that minimum to give the starting
	// timeout, which shrinks towards the minimum as independent peers confirm
	// the suspicion (Lifeguard); it bounds detection when confirmations do
	// not come (e.g. this node is the isolated one).
	SuspicionMaxTimeoutMult int
	// IndirectChecks is how many peers are asked to probe a member that did
	// not answer directly; more peers make a false suspicion from one lossy
	// path less likely.
	IndirectChecks int
	// AwarenessMaxMultiplier bounds Lifeguard's local health scaling: a node
	// that misses nacks or has to refute slows its own probing down (up to
	// this factor) instead of accusing healthy peers.
	AwarenessMaxMultiplier int
	// RetransmitMult: each broadcast is sent RetransmitMult x log10(N+1)
	// times by every node that learns it.
	RetransmitMult int
	// GossipToTheDeadTime is how long dead members still get gossip (a chance
	// to refute) before memberlist forgets them. Mesh keeps them longer (see
	// TombstoneTimeout).
	GossipToTheDeadTime time.Duration
	// DeadNodeReclaimTime is how long a dead member's id stays bound to its
	// old address: after it, the id may rejoin from another address (a
	// replaced droplet, a changed port). memberlist's default, never, would
	// keep such a node out until the dead entry is forgotten.
	DeadNodeReclaimTime time.Duration
	// TCPTimeout bounds connecting and each read/write of a TCP stream (joins,
	// push/pull, state reads).
	TCPTimeout time.Duration

	// StateInterval is how often Mesh reads memberlist's state table to see
	// suspicion (memberlist raises no event for it) and to repair its own
	// view. Shorter gives earlier EventSuspect and a more exact Since, at the
	// cost of one loopback TCP exchange of the whole table per read.
	StateInterval time.Duration
	// TombstoneTimeout is how long dead and left members stay in Members
	// (the voter policy needs to know how long a node has been dead).
	TombstoneTimeout time.Duration
	// BroadcastTimeout bounds how long UpdateMeta waits for memberlist to
	// confirm its broadcast (when ctx has no earlier deadline), and is
	// Leave's timeout when it is given none.
	BroadcastTimeout time.Duration
	// JoinBackoff and JoinBackoffMax bound the wait between Join attempts
	// (doubling, with jitter).
	JoinBackoff    time.Duration
	JoinBackoffMax time.Duration

	// OnProbeRTT, when set, is called with the round trip of every direct
	// probe this node sent that was answered (about once per
	// ProbeInterval), for metrics. It runs on memberlist's probe goroutine,
	// so it must return quickly and never call back into the Mesh. nil
	// reports nothing.
	OnProbeRTT func(peer string, rtt time.Duration)

	// EventBuffer is the capacity of the Events channel. When the consumer
	// falls behind, the oldest event is dropped (and counted) so memberlist is
	// never blocked.
	EventBuffer int

	// Transport replaces memberlist's UDP/TCP transport (tests); nil uses
	// the real network on BindAddr:BindPort.
	Transport memberlist.Transport
}

// DefaultConfig returns the defaults, tuned for a datacenter VPC (sub-ms
// RTT). TUNING.md has the measurements behind each figure here and the
// commands that reproduce them (loopback, two shared cores):
//
//   - ProbeInterval 100 ms, ProbeTimeout 40 ms: ten probes a second per
//     node (one small UDP packet each way, trivial in a VPC). In two 10-minute
//     soaks with both cores busy, answered probes took about 1 ms at the
//     99th percentile and 91 ms at worst; a late ack only starts the
//     indirect probes. memberlist's LAN default (1 s) measured 6-8 s from a
//     kill to dead everywhere.
//   - SuspicionMult 4: a suspected node has at least 400 ms (up to 10
//     nodes; 800 ms at 100) to refute; the worst scheduling stall in those
//     soaks was 320 ms. SuspicionMaxTimeoutMult 3: a suspicion starts at
//     three times that minimum (1.2 s up to 10 nodes) and shrinks to it
//     with the two confirmations Lifeguard waits for (SuspicionMult-2; at 3
//     nodes nobody is left to confirm and the minimum applies at once). A
//     crashed node is confirmed by every prober, so detection measured the
//     same as with 2 (p50 about 0.6 s, p95 under 0.85 s at 3-10 nodes),
//     while a suspicion nobody confirms (one bad path, one stalled prober)
//     gets 1.2 s to be refuted.
//   - IndirectChecks 3, AwarenessMaxMultiplier 8: a missed direct ack
//     leads to suspicion only if three other members' probes and a TCP
//     ping fail too; a prober whose helpers' nacks do not arrive (so the
//     fault is likely its own) raises its health score and slows its
//     probing, up to 8 times, so an overloaded node accuses less often.
//   - GossipInterval 50 ms to 4 nodes: a metadata change reached all of 100
//     members in about 0.2 s (p50); idle ticks send nothing.
//   - PushPullInterval 15 s (memberlist stretches it to 30 s at 50 members,
//     45 s at 100): the bound on how late a member that every gossip copy
//     missed learns a change.
func DefaultConfig() Config {
	return Config{
		BindAddr:                "0.0.0.0",
		BindPort:                7946,
		ClusterName:             "dropmesh",
		ProbeInterval:           100 * time.Millisecond,
		ProbeTimeout:            40 * time.Millisecond,
		GossipInterval:          50 * time.Millisecond,
		GossipNodes:             4,
		PushPullInterval:        15 * time.Second,
		SuspicionMult:           4,
		SuspicionMaxTimeoutMult: 3,
		IndirectChecks:          3,
		AwarenessMaxMultiplier:  8,
		RetransmitMult:          4,
		GossipToTheDeadTime:     30 * time.Second,
		DeadNodeReclaimTime:     5 * time.Second,
		TCPTimeout:              3 * time.Second,
		StateInterval:           100 * time.Millisecond,
		TombstoneTimeout:        24 * time.Hour,
		BroadcastTimeout:        2 * time.Second,
		JoinBackoff:             200 * time.Millisecond,
		JoinBackoffMax:          5 * time.Second,
		EventBuffer:             1024,
	}
}

// validate checks c and fills Meta.ID; it returns an error wrapping
// ErrInvalidConfig (or ErrInvalidMeta / ErrMetaTooLarge) naming the field.
func (c *Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if !validNodeID(c.NodeID) {
		return bad("node id %q: use 1-63 lowercase letters, digits and '-'", c.NodeID)
	}
	if c.Meta.ID == "" {
		c.Meta.ID = c.NodeID
	}
	if c.Meta.ID != c.NodeID {
		return bad("meta id %q differs from node id %q", c.Meta.ID, c.NodeID)
	}
	if _, err := encodeMeta(c.Meta); err != nil {
		return err
	}
	if c.Transport == nil {
		if net.ParseIP(c.BindAddr) == nil {
			return bad("bind address %q is not an IP address", c.BindAddr)
		}
		if c.BindPort < 0 || c.BindPort > 65535 {
			return bad("bind port %d", c.BindPort)
		}
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		return bad("advertise address %q is not an IP address", c.AdvertiseAddr)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		return bad("advertise port %d", c.AdvertisePort)
	}
	if c.ClusterName == "" || len(c.ClusterName) > memberlist.LabelMaxSize {
		return bad("cluster name must be 1-%d bytes", memberlist.LabelMaxSize)
	}
	if len(c.Keys) == 0 {
		return bad("no gossip key: gossip is always encrypted")
	}
	for i, k := range c.Keys {
		if len(k) != KeySize {
			return bad("gossip key %d is %d bytes, want %d", i, len(k), KeySize)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"probe interval", c.ProbeInterval}, {"probe timeout", c.ProbeTimeout},
		{"gossip interval", c.GossipInterval}, {"gossip-to-the-dead time", c.GossipToTheDeadTime},
		{"tcp timeout", c.TCPTimeout}, {"dead node reclaim time", c.DeadNodeReclaimTime}, {"state interval", c.StateInterval},
		{"tombstone timeout", c.TombstoneTimeout}, {"broadcast timeout", c.BroadcastTimeout},
		{"join backoff", c.JoinBackoff}, {"join backoff max", c.JoinBackoffMax},
	} {
		if d.v <= 0 {
			return bad("%s must be positive, got %v", d.name, d.v)
		}
	}
	if c.PushPullInterval < 0 {
		return bad("push/pull interval must not be negative, got %v", c.PushPullInterval)
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		return bad("probe timeout %v must be below the probe interval %v", c.ProbeTimeout, c.ProbeInterval)
	}
	if c.JoinBackoffMax < c.JoinBackoff {
		return bad("join backoff max %v is below join backoff %v", c.JoinBackoffMax, c.JoinBackoff)
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"gossip nodes", c.GossipNodes}, {"suspicion mult", c.SuspicionMult},
		{"suspicion max timeout mult", c.SuspicionMaxTimeoutMult}, {"indirect checks", c.IndirectChecks},
		{"awareness max multiplier", c.AwarenessMaxMultiplier}, {"retransmit mult", c.RetransmitMult},
		{"event buffer", c.EventBuffer},
	} {
		if n.v < 1 {
			return bad("%s must be at least 1, got %d", n.name, n.v)
		}
	}
	return nil
}

// memberlistConfig builds memberlist's configuration from c; d carries the
// delegates, keyring the shared keyring.
func (c *Config) memberlistConfig(keyring *memberlist.Keyring, logger *slog.Logger) *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.NodeID
	mc.BindAddr, mc.BindPort = c.BindAddr, c.BindPort
	mc.AdvertiseAddr, mc.AdvertisePort = c.AdvertiseAddr, c.AdvertisePort
	if c.AdvertiseAddr != "" && c.AdvertisePort == 0 {
		mc.AdvertisePort = c.BindPort
	}
	mc.Label = c.ClusterName
	mc.Keyring = keyring
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	mc.ProbeInterval, mc.ProbeTimeout = c.ProbeInterval, c.ProbeTimeout
	mc.GossipInterval, mc.GossipNodes = c.GossipInterval, c.GossipNodes
	mc.PushPullInterval = c.PushPullInterval
	mc.SuspicionMult, mc.SuspicionMaxTimeoutMult = c.SuspicionMult, c.SuspicionMaxTimeoutMult
	mc.IndirectChecks, mc.AwarenessMaxMultiplier = c.IndirectChecks, c.AwarenessMaxMultiplier
	mc.RetransmitMult = c.RetransmitMult
	mc.GossipToTheDeadTime = c.GossipToTheDeadTime
	mc.DeadNodeReclaimTime = c.DeadNodeReclaimTime
	mc.TCPTimeout = c.TCPTimeout
	mc.Transport = c.Transport
	if c.OnProbeRTT != nil {
		mc.Ping = &pingDelegate{onRTT: c.OnProbeRTT}
	}
	mc.Logger = newMemberlistLogger(logger)
	return mc
}
