package raftfsm

import (
	"context"
	"errors"
	"net"
	"slices"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
)

// Fast elections after a leader's process dies.
//
// raft alone notices a dead leader only when a follower's heartbeat timer
// runs out (one to two HeartbeatTimeouts of silence), and then the first
// follower to notice is refused by the other, which still has a leader,
// until that one's timer runs out too: about 0.6 s on loopback, up to 1 s.
// When the leader's process dies (a crash, a kill, an OOM) rather than its
// machine or its network, its kernel closes its connections, and a
// follower sees its leader's raft connection end at once. The follower
// then dials the leader's raft port: refused means nothing listens there
// any more, and the follower starts an election with raft's own
// leadership-transfer path (a TimeoutNow it sends itself), which the other
// voters grant although they still know the old leader, when the
// candidate's log is as current as theirs. Anything short of that proof
// (the dial connects, times out or finds no route, the leader speaks
// again) leaves the timers to decide, as before: a lost machine, a paused
// process or a partition is detected as it always was.
//
// Only one follower starts at once: the voters that remain are ranked by
// id, the first starts at once and each next one waits leaderLossStagger
// more, and starts only if no election began meanwhile (two at once would
// split the vote), or if one began and brought no leader: the first is
// behind on the log (the others refuse it) or has not seen the leader go.

// leaderLossStagger is how long each next-ranked follower waits for an
// election started by the one ranked before it.
const leaderLossStagger = 250 * time.Millisecond

// A next-ranked follower looks at raft every leaderLossPoll, at most
// leaderLossPolls times, and takes an election that has brought no leader
// for leaderLossElection as failed.
const (
	leaderLossPoll     = 25 * time.Millisecond
	leaderLossPolls    = 80
	leaderLossElection = 150 * time.Millisecond
)

// leaderLossProbeTimeout bounds the dial that checks the leader's port;
// leaderLossProbes dials leaderLossProbeEvery apart are made at most.
const (
	leaderLossProbeTimeout = 100 * time.Millisecond
	leaderLossProbes       = 6
	leaderLossProbeEvery   = 50 * time.Millisecond
)

// peerConnEnded is told by the stream that an accepted connection from
// node peer ended; it never blocks.
func (s *Store) peerConnEnded(peer string) {
	select {
	case s.connEnded <- peer:
	default: // a check is pending: it looks at the leader of its time
	}
}

// watchLeaderLoss runs the checks peerConnEnded asks for.
func (s *Store) watchLeaderLoss() {
	defer s.wg.Done()
	for {
		select {
		case peer := <-s.connEnded:
			s.checkLeaderLoss(peer)
		case <-s.done:
			return
		}
	}
}

// checkLeaderLoss starts an election when peer is this follower's leader
// and leaderGone proves it gone, in the turn of this follower's rank.
func (s *Store) checkLeaderLoss(peer string) {
	if s.raft.State() != raft.Follower {
		return
	}
	leaderAddr, leaderID := s.raft.LeaderWithID()
	if string(leaderID) != peer || leaderAddr == "" {
		return
	}
	term, lost := s.raft.CurrentTerm(), time.Now()
	if !s.leaderGone(peer, leaderAddr, lost) {
		return
	}
	rank, self, ok := s.rankAfter(peer)
	if !ok {
		return
	}
	if rank > 0 && !s.noLeaderComes(peer, lost, term, time.Duration(rank)*leaderLossStagger) {
		return
	}
	s.logger.Warn("raft leader's process is gone (its connection ended, its port refuses): starting an election",
		"node", s.cfg.NodeID, "leader", peer, "leader_addr", string(leaderAddr), "rank", rank)
	req := &raft.TimeoutNowRequest{RPCHeader: raft.RPCHeader{
		ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(s.cfg.NodeID), Addr: []byte(self),
	}}
	if err := s.transport.TimeoutNow(raft.ServerID(s.cfg.NodeID), self, req, &raft.TimeoutNowResponse{}); err != nil {
		s.logger.Warn("raft fast election not started", "node", s.cfg.NodeID, "err", err)
	}
}

// noLeaderComes watches raft, leaderLossPoll apart, for a next-ranked
// follower: true once no election has begun for first (the followers
// ranked before this one did not start one), or once an election begun
// has brought no leader for leaderLossElection (the candidate was behind
// on the log, or its votes were split). It is false as soon as a leader is
// known, this node is no longer a follower, or the lost leader has spoken
// to this node since the loss (it restarted, maybe leading again), and
// after leaderLossPolls looks.
func (s *Store) noLeaderComes(peer string, lost time.Time, term uint64, first time.Duration) bool {
	began := time.Now()
	var elected time.Time // when the term last moved: an election began
	tick := time.NewTicker(leaderLossPoll)
	defer tick.Stop()
	for i := 0; i < leaderLossPolls; i++ {
		select {
		case <-tick.C:
		case <-s.done:
			return false
		}
		if _, id := s.raft.LeaderWithID(); s.raft.State() != raft.Follower || (id != "" && string(id) != peer) {
			return false // another follower's election, or raft's own, got there first
		}
		if s.raft.LastContact().After(lost) {
			return false
		}
		if now := s.raft.CurrentTerm(); now != term {
			term, elected = now, time.Now()
			continue
		}
		if (elected.IsZero() && time.Since(began) >= first) || (!elected.IsZero() && time.Since(elected) >= leaderLossElection) {
			return true
		}
	}
	return false
}

// leaderGone probes the leader's raft port until it refuses (true), or
// the leader is heard from again, or it has been tried leaderLossProbes
// times (false). A dying process closes its connections before its
// listener, so the first probe may still connect. Silence alone is no
// proof: a follower cut off from everyone sees its leader fall silent
// too, and an election it started would only raise its term (raft's
// pre-vote, which this path skips, is what keeps such a follower from
// disrupting the cluster when it comes back).
func (s *Store) leaderGone(peer string, addr raft.ServerAddress, ended time.Time) bool {
	for i := 0; i < leaderLossProbes; i++ {
		if i > 0 {
			wait := time.NewTimer(leaderLossProbeEvery)
			select {
			case <-wait.C:
			case <-s.done:
				wait.Stop()
				return false
			}
			if s.raft.LastContact().After(ended) {
				return false // it still speaks to us
			}
			if a, id := s.raft.LeaderWithID(); s.raft.State() != raft.Follower || string(id) != peer || a != addr {
				return false // raft moved on by itself
			}
		}
		if s.refuses(addr) {
			return true
		}
	}
	return false
}

// refuses reports whether a TCP dial to addr is refused: no process
// listens there (a dial that connects or times out proves nothing).
func (s *Store) refuses(addr raft.ServerAddress) bool {
	d := &net.Dialer{Timeout: leaderLossProbeTimeout}
	if s.stream.localIP != nil {
		d.LocalAddr = &net.TCPAddr{IP: s.stream.localIP}
	}
	ctx, cancel := context.WithTimeout(context.Background(), leaderLossProbeTimeout)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", string(addr))
	if err == nil {
		// Someone listens: close before any handshake. The leader logs a
		// refused connection; this happens only when one of its raft
		// connections to us ends while it lives, which is rare.
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// rankAfter ranks this node among the voters of the configuration other
// than the lost leader, by id, and returns its own configured address.
func (s *Store) rankAfter(lost string) (rank int, self raft.ServerAddress, ok bool) {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return 0, "", false
	}
	var ids []string
	for _, sv := range f.Configuration().Servers {
		if sv.Suffrage != raft.Voter || string(sv.ID) == lost {
			continue
		}
		ids = append(ids, string(sv.ID))
		if string(sv.ID) == s.cfg.NodeID {
			self, ok = sv.Address, true
		}
	}
	if !ok {
		return 0, "", false // not a voter: not ours to start
	}
	slices.Sort(ids)
	return slices.Index(ids, s.cfg.NodeID), self, true
}
