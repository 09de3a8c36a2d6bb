package mesh

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// RaftServer is one server of the raft configuration.
type RaftServer struct {
	ID      string
	Address string
	Voter   bool
}

// VoterPolicy is the leader's voter policy. Zero fields take their defaults.
type VoterPolicy struct {
	// MaxVoters caps the number of voters (default 5). Larger means more
	// failures tolerated and slower commits.
	MaxVoters int
	// DeadServerTimeout is how long a failed (not left) server keeps its
	// place before it is removed (default 10 min): long enough for a reboot
	// or a power-cycle, short enough that a lost droplet is replaced.
	DeadServerTimeout time.Duration
	// ReconcileInterval is how often Autopilot re-plans without a
	// membership change, so the dead-server timeout is noticed (default 5 s).
	ReconcileInterval time.Duration
}

// Policy defaults.
const (
	DefaultMaxVoters         = 5
	DefaultDeadServerTimeout = 10 * time.Minute
	DefaultReconcileInterval = 5 * time.Second
)

// withDefaults fills zero (or negative) fields.
func (p VoterPolicy) withDefaults() VoterPolicy {
	if p.MaxVoters <= 0 {
		p.MaxVoters = DefaultMaxVoters
	}
	if p.DeadServerTimeout <= 0 {
		p.DeadServerTimeout = DefaultDeadServerTimeout
	}
	if p.ReconcileInterval <= 0 {
		p.ReconcileInterval = DefaultReconcileInterval
	}
	return p
}

// ChangeKind is one kind of raft configuration change.
type ChangeKind int

// Change kinds.
const (
	// AddVoter adds a new server as a voter.
	AddVoter ChangeKind = iota
	// AddNonvoter adds a new server as a non-voter.
	AddNonvoter
	// Promote makes a non-voter a voter (RaftMembership.AddVoter on an
	// existing server).
	Promote
	// Demote makes a voter a non-voter.
	Demote
	// Remove removes a server.
	Remove
)

// String returns the kind's name.
func (k ChangeKind) String() string {
	switch k {
	case AddVoter:
		return "add-voter"
	case AddNonvoter:
		return "add-nonvoter"
	case Promote:
		return "promote"
	case Demote:
		return "demote"
	case Remove:
		return "remove"
	default:
		return fmt.Sprintf("change(%d)", int(k))
	}
}

// Change is one raft configuration change and why it is made.
type Change struct {
	Kind    ChangeKind
	ID      string
	Address string // raft address, for adds and promotions
	Reason  string
}

// String formats the change for logs and test failures.
func (c Change) String() string {
	s := c.Kind.String() + " " + c.ID
	if c.Address != "" {
		s += "@" + c.Address
	}
	if c.Reason != "" {
		s += " (" + c.Reason + ")"
	}
	return s
}

// Plan returns the raft configuration changes to make now, in order, for the
// leader selfID, given the gossip members and the current raft servers. It is
// pure and deterministic (ties are broken by id, input order does not
// matter). Each change is planned from the configuration the previous ones
// leave, so applying them in order is safe, and planning again after all of
// them returns nothing.
//
// Terms: a server is healthy when it is the leader itself, or its member is
// alive and advertises the server's raft address. A candidate is an alive
// member with a valid NodeMeta.Raft address that is not a server yet.
//
// Each step takes the first rule that applies:
//
//  1. Remove a gone server: a member that left gracefully (StatusLeft) at
//     once; a member dead for at least DeadServerTimeout; a member alive with
//     another raft address (it restarted elsewhere: removed here, re-added as
//     a candidate by rule 3). A dead member within the timeout, a suspect
//     one, or a server with no member at all keeps its place (Autopilot
//     gives the last kind a dead-since time so it is eventually removed).
//  2. Target voter count = servers + candidates, capped at MaxVoters and
//     rounded down to odd: 2 -> 1, 4 -> 3, 6 or more -> 5. An even count
//     tolerates no more failures than the odd count below it and needs a
//     larger quorum.
//  3. Below the target, promote a healthy non-voter (a node that has been
//     replicating already), else add a candidate as a voter; at the target,
//     add candidates as non-voters.
//  4. Above the target, demote a voter, unhealthy ones first.
//
// Quorum guard: a voter is never removed or demoted if the healthy voters
// left would be fewer than a quorum (half plus one) of the new voter set; the
// change waits for a later plan (rule 3 may first promote enough healthy
// voters). The leader itself is never removed or demoted, and members with
// an invalid id or raft address are never added.
func Plan(now time.Time, selfID string, members []Member, servers []RaftServer, p VoterPolicy) []Change {
	pl := newPlanner(now, selfID, members, servers, p.withDefaults())
	var changes []Change
	// Each step changes the working configuration; the number of steps is
	// bounded by the removals, adds and voter flips possible, so the bound
	// below is never reached, only guarded against.
	for range 4*(len(pl.work)+len(members)) + 4 {
		c, ok := pl.next()
		if !ok {
			break
		}
		changes = append(changes, c)
		pl.apply(c)
	}
	return changes
}

// planner holds Plan's inputs and the working configuration.
type planner struct {
	now    time.Time
	selfID string
	p      VoterPolicy
	byID   map[string]Member
	sorted []Member // members sorted by id
	work   []RaftServer
}

func newPlanner(now time.Time, selfID string, members []Member, servers []RaftServer, p VoterPolicy) *planner {
	pl := &planner{now: now, selfID: selfID, p: p, byID: make(map[string]Member, len(members))}
	for _, m := range members {
		if m.ID != "" {
			if _, dup := pl.byID[m.ID]; !dup {
				pl.sorted = append(pl.sorted, m)
			}
			pl.byID[m.ID] = m
		}
	}
	slices.SortFunc(pl.sorted, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	pl.work = slices.Clone(servers)
	slices.SortFunc(pl.work, func(a, b RaftServer) int { return strings.Compare(a.ID, b.ID) })
	pl.work = slices.CompactFunc(pl.work, func(a, b RaftServer) bool { return a.ID == b.ID })
	return pl
}

// healthy: the leader, or an alive member at the server's raft address.
func (pl *planner) healthy(s RaftServer) bool {
	if s.ID == pl.selfID {
		return true
	}
	m, ok := pl.byID[s.ID]
	return ok && m.Status == StatusAlive && m.Meta.Raft == s.Address
}

// safeWithout reports whether the voters other than id keep a healthy
// quorum.
func (pl *planner) safeWithout(id string) bool {
	voters, healthy := 0, 0
	for _, s := range pl.work {
		if !s.Voter || s.ID == id {
			continue
		}
		voters++
		if pl.healthy(s) {
			healthy++
		}
	}
	return voters > 0 && healthy >= voters/2+1
}

// goneReason says why server s should be removed, or "" to keep it.
func (pl *planner) goneReason(s RaftServer) string {
	m, ok := pl.byID[s.ID]
	switch {
	case s.ID == pl.selfID || !ok:
		return ""
	case m.Status == StatusLeft:
		return "left the mesh"
	case m.Status == StatusDead && pl.now.Sub(m.Since) >= pl.p.DeadServerTimeout:
		return fmt.Sprintf("dead for %s", pl.now.Sub(m.Since).Round(time.Second))
	case m.Status == StatusAlive && validRaftAddr(m.Meta.Raft) && m.Meta.Raft != s.Address:
		return fmt.Sprintf("raft address changed from %s to %s", s.Address, m.Meta.Raft)
	default:
		return ""
	}
}

// candidates are alive members with a valid raft address not in the
// configuration, sorted by id.
func (pl *planner) candidates() []Member {
	var out []Member
	for _, m := range pl.sorted {
		if m.Status != StatusAlive || m.ID == pl.selfID || !validNodeID(m.ID) || !validRaftAddr(m.Meta.Raft) ||
			(m.Meta.ID != "" && m.Meta.ID != m.ID) {
			continue
		}
		if slices.ContainsFunc(pl.work, func(s RaftServer) bool { return s.ID == m.ID }) {
			continue
		}
		out = append(out, m)
	}
	return out
}

// next returns the next change, by the rules' priority.
func (pl *planner) next() (Change, bool) {
	// 1. Remove a gone server.
	for _, s := range pl.work {
		if reason := pl.goneReason(s); reason != "" && (!s.Voter || pl.safeWithout(s.ID)) {
			return Change{Kind: Remove, ID: s.ID, Reason: reason}, true
		}
	}
	// 2. The target voter count.
	cands := pl.candidates()
	target := min(len(pl.work)+len(cands), pl.p.MaxVoters)
	if target > 1 && target%2 == 0 {
		target--
	}
	voters := 0
	for _, s := range pl.work {
		if s.Voter {
			voters++
		}
	}
	// 3. Promote a healthy non-voter, else add a candidate.
	if voters < target {
		for _, s := range pl.work {
			if !s.Voter && pl.healthy(s) {
				return Change{Kind: Promote, ID: s.ID, Address: s.Address, Reason: fmt.Sprintf("voters %d below target %d", voters, target)}, true
			}
		}
	}
	if len(cands) > 0 {
		c := cands[0]
		if voters < target {
			return Change{Kind: AddVoter, ID: c.ID, Address: c.Meta.Raft, Reason: fmt.Sprintf("new member; voters %d below target %d", voters, target)}, true
		}
		return Change{Kind: AddNonvoter, ID: c.ID, Address: c.Meta.Raft, Reason: fmt.Sprintf("new member; %d voters meet the target %d", voters, target)}, true
	}
	// 4. Demote a surplus voter, unhealthy ones first.
	if voters > target {
		for _, wantHealthy := range []bool{false, true} {
			for _, s := range pl.work {
				if s.Voter && s.ID != pl.selfID && pl.healthy(s) == wantHealthy && pl.safeWithout(s.ID) {
					return Change{Kind: Demote, ID: s.ID, Reason: fmt.Sprintf("voters %d above target %d", voters, target)}, true
				}
			}
		}
	}
	return Change{}, false
}

// apply applies c to the working configuration.
func (pl *planner) apply(c Change) {
	i := slices.IndexFunc(pl.work, func(s RaftServer) bool { return s.ID == c.ID })
	switch c.Kind {
	case Remove:
		pl.work = slices.Delete(pl.work, i, i+1)
	case AddVoter, AddNonvoter:
		pl.work = append(pl.work, RaftServer{ID: c.ID, Address: c.Address, Voter: c.Kind == AddVoter})
		slices.SortFunc(pl.work, func(a, b RaftServer) int { return strings.Compare(a.ID, b.ID) })
	case Promote:
		pl.work[i].Voter = true
	case Demote:
		pl.work[i].Voter = false
	}
}

// validRaftAddr reports whether a is a usable raft address.
func validRaftAddr(a string) bool { return a != "" && validHostPort(a) }
