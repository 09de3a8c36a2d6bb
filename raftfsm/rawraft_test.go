package raftfsm

import (
	"io"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// rawFSM is the least a raft FSM can do: the baseline of the commit
// benchmarks measures raft, bolt and TCP, not our state machine.
type rawFSM struct{}

func (rawFSM) Apply(*raft.Log) any                 { return nil }
func (rawFSM) Snapshot() (raft.FSMSnapshot, error) { return rawSnapshot{}, nil }
func (rawFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type rawSnapshot struct{}

func newRawFSM() raft.FSM { return rawFSM{} }
func newOurFSM() raft.FSM { return NewFSM(nil) }

func (rawSnapshot) Persist(s raft.SnapshotSink) error { return s.Close() }
func (rawSnapshot) Release()                          {}

// rawCluster starts size servers of plain hashicorp/raft with raft-boltdb
// stores over raft's own plain TCP transport, with the timings of
// DefaultStoreConfig (and the same log cache), each with the FSM newFSM
// makes, and returns the leader. It is the baseline the TLS store is
// measured against: with rawFSM, the whole of what dropmesh adds; with
// dropmesh's FSM, what the TLS transport and its checks add.
func rawCluster(t testing.TB, size int, newFSM func() raft.FSM) *raft.Raft {
	t.Helper()
	sc := DefaultStoreConfig()
	base := t.TempDir()
	var servers []raft.Server
	var nodes []*raft.Raft
	type parts struct {
		id    string
		trans *raft.NetworkTransport
		dir   string
	}
	var ps []parts
	for i := 1; i <= size; i++ {
		id := "raw-" + strconv.Itoa(i)
		trans, err := raft.NewTCPTransport("127.0.0.1:0", nil, sc.MaxPool, sc.TransportTimeout, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, parts{id: id, trans: trans, dir: filepath.Join(base, id)})
		servers = append(servers, raft.Server{ID: raft.ServerID(id), Address: trans.LocalAddr(), Suffrage: raft.Voter})
	}
	for _, p := range ps {
		rc := raft.DefaultConfig()
		rc.LocalID = raft.ServerID(p.id)
		rc.HeartbeatTimeout, rc.ElectionTimeout = sc.HeartbeatTimeout, sc.ElectionTimeout
		rc.LeaderLeaseTimeout, rc.CommitTimeout = sc.LeaderLeaseTimeout, sc.CommitTimeout
		rc.MaxAppendEntries, rc.BatchApplyCh = sc.MaxAppendEntries, true
		rc.Logger = hclog.NewNullLogger()
		bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(base, p.id+".db")})
		if err != nil {
			t.Fatal(err)
		}
		cached, err := raft.NewLogCache(1024, bolt)
		if err != nil {
			t.Fatal(err)
		}
		snaps, err := raft.NewFileSnapshotStore(p.dir, 1, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		r, err := raft.NewRaft(rc, newFSM(), cached, bolt, snaps, p.trans)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, r)
		t.Cleanup(func() {
			_ = r.Shutdown().Error()
			_ = p.trans.Close()
			_ = bolt.Close()
		})
	}
	var leader *raft.Raft
	waitFor(t, 10*time.Second, "a raw raft leader", func() bool {
		for _, r := range nodes {
			if r.State() == raft.Leader {
				leader = r
				return true
			}
		}
		return false
	})
	return leader
}
