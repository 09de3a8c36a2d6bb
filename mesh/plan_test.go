package mesh

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func raftAddr(id string) string { return id + ".internal:7947" }

func aliveM(id string) Member {
	return Member{ID: id, Addr: id + ":7946", Meta: NodeMeta{ID: id, Raft: raftAddr(id)}, Status: StatusAlive, Since: t0.Add(-time.Hour)}
}

func withStatus(m Member, s Status, ago time.Duration) Member {
	m.Status, m.Since = s, t0.Add(-ago)
	return m
}

func voter(id string) RaftServer    { return RaftServer{ID: id, Address: raftAddr(id), Voter: true} }
func nonvoter(id string) RaftServer { return RaftServer{ID: id, Address: raftAddr(id)} }

func aliveAll(ids ...string) []Member {
	var out []Member
	for _, id := range ids {
		out = append(out, aliveM(id))
	}
	return out
}

func voters(ids ...string) []RaftServer {
	var out []RaftServer
	for _, id := range ids {
		out = append(out, voter(id))
	}
	return out
}

// kinds renders changes as "kind id" strings, the form the table uses.
func kinds(cs []Change) []string {
	out := []string{}
	for _, c := range cs {
		s := c.Kind.String() + " " + c.ID
		if c.Kind == AddVoter || c.Kind == AddNonvoter || c.Kind == Promote {
			s += "@" + c.Address
		}
		out = append(out, s)
	}
	return out
}

func TestPlan(t *testing.T) {
	policy := VoterPolicy{MaxVoters: 5, DeadServerTimeout: 10 * time.Minute}
	moved := aliveM("n2")
	moved.Meta.Raft = "n2-new.internal:7947"
	badRaft := aliveM("n5")
	badRaft.Meta.Raft = "not an address"
	noRaft := aliveM("n6")
	noRaft.Meta.Raft = ""
	wrongID := aliveM("n7")
	wrongID.Meta.ID = "n8"

	cases := []struct {
		name    string
		members []Member
		servers []RaftServer
		policy  VoterPolicy
		want    []string
	}{
		{"single node: nothing to do", aliveAll("n0"), voters("n0"), policy, nil},
		{"second node becomes a non-voter (keep voters odd)", aliveAll("n0", "n1"), voters("n0"),
			policy, []string{"add-nonvoter n1@n1.internal:7947"}},
		{"third node: promote the non-voter, add the new one as voter",
			aliveAll("n0", "n1", "n2"), []RaftServer{voter("n0"), nonvoter("n1")},
			policy, []string{"promote n1@n1.internal:7947", "add-voter n2@n2.internal:7947"}},
		{"grow 1 -> 5 voters", aliveAll("n0", "n1", "n2", "n3", "n4"), voters("n0"), policy,
			[]string{"add-voter n1@n1.internal:7947", "add-voter n2@n2.internal:7947", "add-voter n3@n3.internal:7947", "add-voter n4@n4.internal:7947"}},
		{"4 alive candidates -> 3 voters + 1 non-voter", aliveAll("n0", "n1", "n2", "n3"), voters("n0"), policy,
			[]string{"add-voter n1@n1.internal:7947", "add-voter n2@n2.internal:7947", "add-nonvoter n3@n3.internal:7947"}},
		{"6th member becomes a non-voter", aliveAll("n0", "n1", "n2", "n3", "n4", "n5"), voters("n0", "n1", "n2", "n3", "n4"),
			policy, []string{"add-nonvoter n5@n5.internal:7947"}},
		{"a voter leaves: removed at once, non-voter promoted",
			append(aliveAll("n0", "n1", "n2", "n4", "n5"), withStatus(aliveM("n3"), StatusLeft, time.Second)),
			append(voters("n0", "n1", "n2", "n3", "n4"), nonvoter("n5")),
			policy, []string{"remove n3", "promote n5@n5.internal:7947"}},
		{"a non-voter leaves: removed",
			append(aliveAll("n0", "n1", "n2"), withStatus(aliveM("n3"), StatusLeft, time.Second)),
			append(voters("n0", "n1", "n2"), nonvoter("n3")),
			policy, []string{"remove n3"}},
		{"dead within the timeout: nothing",
			append(aliveAll("n0", "n1", "n2", "n4", "n5"), withStatus(aliveM("n3"), StatusDead, 9*time.Minute)),
			append(voters("n0", "n1", "n2", "n3", "n4"), nonvoter("n5")),
			policy, nil},
		{"dead past the timeout: removed, non-voter promoted",
			append(aliveAll("n0", "n1", "n2", "n4", "n5"), withStatus(aliveM("n3"), StatusDead, 11*time.Minute)),
			append(voters("n0", "n1", "n2", "n3", "n4"), nonvoter("n5")),
			policy, []string{"remove n3", "promote n5@n5.internal:7947"}},
		{"dead past the timeout, no spare: removed, then demote to an odd count",
			append(aliveAll("n0", "n1"), withStatus(aliveM("n2"), StatusDead, 11*time.Minute)),
			voters("n0", "n1", "n2"),
			policy, []string{"remove n2", "demote n1"}},
		{"suspect voter keeps its place",
			append(aliveAll("n0", "n1"), withStatus(aliveM("n2"), StatusSuspect, time.Hour)),
			voters("n0", "n1", "n2"), policy, nil},
		{"server unknown to the mesh keeps its place", aliveAll("n0", "n1"), voters("n0", "n1", "n2"), policy, nil},
		{"restart with the same id and address keeps its place", aliveAll("n0", "n1", "n2"), voters("n0", "n1", "n2"), policy, nil},
		{"raft address changed: remove and re-add",
			append(aliveAll("n0", "n1"), moved), voters("n0", "n1", "n2"),
			policy, []string{"remove n2", "add-voter n2@n2-new.internal:7947"}},
		{"never below quorum: moved voter kept while another voter is dead",
			[]Member{aliveM("n0"), moved, withStatus(aliveM("n1"), StatusDead, time.Minute)}, voters("n0", "n1", "n2"),
			policy, nil},
		{"never below quorum: left voter kept when the rest has no quorum",
			[]Member{aliveM("n0"), aliveM("n1"), withStatus(aliveM("n2"), StatusDead, time.Minute),
				withStatus(aliveM("n3"), StatusDead, time.Minute), withStatus(aliveM("n4"), StatusLeft, time.Second)},
			voters("n0", "n1", "n2", "n3", "n4"), policy, nil},
		{"never removes the leader itself, even when it left",
			[]Member{withStatus(aliveM("n0"), StatusLeft, time.Hour), aliveM("n1"), aliveM("n2")},
			voters("n0", "n1", "n2"), policy, nil},
		{"never demotes the leader: two voters -> the other is demoted",
			aliveAll("n0", "n1"), voters("n0", "n1"), policy, []string{"demote n1"}},
		{"four healthy voters -> three",
			aliveAll("n0", "n1", "n2", "n3"), voters("n0", "n1", "n2", "n3"), policy, []string{"demote n1"}},
		{"four voters, one dead: the dead one is demoted first",
			append(aliveAll("n0", "n1", "n3"), withStatus(aliveM("n2"), StatusDead, time.Minute)),
			voters("n0", "n1", "n2", "n3"), policy, []string{"demote n2"}},
		{"candidates without a usable raft address, suspect or with a foreign id are not added",
			[]Member{aliveM("n0"), badRaft, noRaft, wrongID, withStatus(aliveM("n9"), StatusSuspect, time.Second)},
			voters("n0"), policy, nil},
		{"MaxVoters 3", aliveAll("n0", "n1", "n2", "n3", "n4"), voters("n0"), VoterPolicy{MaxVoters: 3},
			[]string{"add-voter n1@n1.internal:7947", "add-voter n2@n2.internal:7947", "add-nonvoter n3@n3.internal:7947", "add-nonvoter n4@n4.internal:7947"}},
		{"MaxVoters lowered: demote to the new cap", aliveAll("n0", "n1", "n2", "n3", "n4"), voters("n0", "n1", "n2", "n3", "n4"),
			VoterPolicy{MaxVoters: 3}, []string{"demote n1", "demote n2"}},
		{"zero policy takes the defaults (5 voters)", aliveAll("n0", "n1", "n2", "n3", "n4", "n5"), voters("n0"), VoterPolicy{},
			[]string{"add-voter n1@n1.internal:7947", "add-voter n2@n2.internal:7947", "add-voter n3@n3.internal:7947", "add-voter n4@n4.internal:7947", "add-nonvoter n5@n5.internal:7947"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := kinds(Plan(t0, "n0", tc.members, tc.servers, tc.policy))
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(got, want) {
				t.Errorf("Plan =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			// Deterministic whatever the input order.
			m2, s2 := slices.Clone(tc.members), slices.Clone(tc.servers)
			slices.Reverse(m2)
			slices.Reverse(s2)
			if again := kinds(Plan(t0, "n0", m2, s2, tc.policy)); !slices.Equal(again, got) {
				t.Errorf("Plan with reversed input = %v, want %v", again, got)
			}
		})
	}
}

// TestPlanProperties checks Plan's guarantees over random clusters: applying
// a plan step by step never leaves fewer healthy voters than a quorum of
// the new voter set when a voter is removed or demoted, never touches the
// leader, keeps the voter count odd and within MaxVoters when the plan is
// complete, and re-planning the result changes nothing.
func TestPlanProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	statuses := []Status{StatusAlive, StatusAlive, StatusAlive, StatusSuspect, StatusDead, StatusLeft}
	for iter := range 3000 {
		n := 1 + rng.IntN(9)
		var members []Member
		var servers []RaftServer
		for i := range n {
			id := fmt.Sprintf("n%d", i)
			m := aliveM(id)
			if i > 0 {
				m.Status = statuses[rng.IntN(len(statuses))]
				m.Since = t0.Add(-time.Duration(rng.IntN(20)) * time.Minute)
				if rng.IntN(10) == 0 {
					m.Meta.Raft = id + "-moved.internal:7947"
				}
			}
			if i == 0 || rng.IntN(10) != 0 {
				members = append(members, m)
			}
			if i == 0 || rng.IntN(2) == 0 {
				servers = append(servers, RaftServer{ID: id, Address: raftAddr(id), Voter: i == 0 || rng.IntN(2) == 0})
			}
		}
		policy := VoterPolicy{MaxVoters: []int{1, 3, 5, 7}[rng.IntN(4)], DeadServerTimeout: 10 * time.Minute}
		changes := Plan(t0, "n0", members, servers, policy)
		cfg := slices.Clone(servers)
		byID := map[string]Member{}
		for _, m := range members {
			byID[m.ID] = m
		}
		healthy := func(s RaftServer) bool {
			m, ok := byID[s.ID]
			return s.ID == "n0" || ok && m.Status == StatusAlive && m.Meta.Raft == s.Address
		}
		quorumOK := func() bool {
			v, h := 0, 0
			for _, s := range cfg {
				if s.Voter {
					v++
					if healthy(s) {
						h++
					}
				}
			}
			return v > 0 && h >= v/2+1
		}
		for _, c := range changes {
			if c.ID == "n0" && (c.Kind == Remove || c.Kind == Demote) {
				t.Fatalf("iter %d: plan touches the leader: %v", iter, changes)
			}
			i := slices.IndexFunc(cfg, func(s RaftServer) bool { return s.ID == c.ID })
			wasVoter := i >= 0 && cfg[i].Voter
			switch c.Kind {
			case AddVoter, AddNonvoter:
				if i >= 0 {
					t.Fatalf("iter %d: adds existing server %s: %v", iter, c.ID, changes)
				}
				cfg = append(cfg, RaftServer{ID: c.ID, Address: c.Address, Voter: c.Kind == AddVoter})
			case Promote:
				if i < 0 || cfg[i].Voter {
					t.Fatalf("iter %d: bad promote %s: %v", iter, c.ID, changes)
				}
				cfg[i].Voter = true
			case Demote:
				if !wasVoter {
					t.Fatalf("iter %d: bad demote %s: %v", iter, c.ID, changes)
				}
				cfg[i].Voter = false
			case Remove:
				if i < 0 {
					t.Fatalf("iter %d: removes unknown %s: %v", iter, c.ID, changes)
				}
				cfg = slices.Delete(cfg, i, i+1)
			}
			if (c.Kind == Remove && wasVoter || c.Kind == Demote) && !quorumOK() {
				t.Fatalf("iter %d: %v leaves no healthy quorum: config %+v, members %+v", iter, c, cfg, members)
			}
		}
		if again := Plan(t0, "n0", members, cfg, policy); len(again) != 0 {
			t.Fatalf("iter %d: re-plan after applying %v gives %v (config %+v, members %+v)", iter, changes, again, cfg, members)
		}
		v := 0
		for _, s := range cfg {
			if s.Voter {
				v++
			}
		}
		if v > policy.MaxVoters && quorumOK() {
			t.Fatalf("iter %d: %d voters above MaxVoters %d: %+v", iter, v, policy.MaxVoters, cfg)
		}
	}
}
