package raftfsm

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestEveryCommandTypeHasAHandlerAndName(t *testing.T) {
	for ct := CmdInvalid + 1; ct < cmdEnd; ct++ {
		h, ok := handlerFor(ct)
		if !ok {
			t.Fatalf("%s has no handler", ct)
		}
		if got := h.new().Type(); got != ct {
			t.Fatalf("handler of %s builds a %s", ct, got)
		}
		if strings.HasPrefix(ct.String(), "command(") {
			t.Fatalf("command type %d has no name", ct)
		}
	}
	if _, ok := handlerFor(cmdEnd); ok {
		t.Fatal("a handler beyond the last type")
	}
}

func TestDecodeRefusesBadEntries(t *testing.T) {
	good, err := Encode(&DeleteUser{At: t0, Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":          nil,
		"one byte":       {1},
		"bad version":    append([]byte{9}, good[1:]...),
		"unknown type":   {1, 250, '{', '}'},
		"zero type":      {1, 0, '{', '}'},
		"not json":       {1, byte(CmdDeleteUser), 'x'},
		"unknown field":  append([]byte{1, byte(CmdDeleteUser)}, []byte(`{"name":"x","evil":1}`)...),
		"wrong type":     append([]byte{1, byte(CmdDeleteUser)}, []byte(`{"name":5}`)...),
		"trailing value": append([]byte{1, byte(CmdDeleteUser)}, []byte(`{"name":"x"} {}`)...),
	}
	for name, entry := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Decode(entry); err == nil {
				t.Fatal("decoded")
			}
			f := newFixture(t)
			before := f.stateJSON()
			f.index++
			r := f.fsm.Apply(rawLog(f.index, entry)).(*Result)
			if r.Err == nil {
				t.Fatal("applied")
			}
			if f.stateJSON() != before {
				t.Fatal("state changed")
			}
		})
	}
	if _, err := Decode([]byte{1, 250, '{', '}'}); !errors.Is(err, ErrUnknownCommand) {
		t.Fatalf("unknown type: %v, want ErrUnknownCommand", err)
	}
}

func TestInitCluster(t *testing.T) {
	f := newFixture(t)
	f.view(func(s *State) {
		if !s.Settings.Initialized || s.Settings.ClusterName != "test" || s.Users["admin"].Role != RoleAdmin {
			t.Fatalf("settings %+v", s.Settings)
		}
		if s.ResolveWorkspace("").ID != testWS {
			t.Fatal("no default workspace")
		}
	})
	f.refuse(&InitCluster{At: t0, ClusterID: "other", ClusterName: "x", AdminName: "admin", AdminPasswordHash: "$2a$x", DefaultWorkspaceID: "abcdef"})
	g := &fixture{t: t, fsm: NewFSM(nil)}
	g.refuse(&InitCluster{At: t0, ClusterID: "c", ClusterName: "Bad Name", AdminName: "admin", AdminPasswordHash: "$2a$x", DefaultWorkspaceID: testWS})
	g.refuse(&InitCluster{At: t0, ClusterID: "c", ClusterName: "ok", AdminName: "admin", AdminPasswordHash: "plain", DefaultWorkspaceID: testWS})
	g.refuse(&InitCluster{ClusterID: "c", ClusterName: "ok", AdminName: "admin", AdminPasswordHash: "$2a$x", DefaultWorkspaceID: testWS})
}

func TestUpdateSettings(t *testing.T) {
	f := newFixture(t)
	aead := testAEAD(t)
	tok, err := Seal(aead, LabelDOToken, []byte("dop_v1_secret"))
	if err != nil {
		t.Fatal(err)
	}
	domain, n := "example.com", 3
	f.must(&UpdateSettings{At: t0, Domain: &domain, DOToken: &tok, Regions: []string{"nyc3", "fra1"}, DesiredNodes: &n})
	f.view(func(s *State) {
		plain, err := Open(aead, LabelDOToken, s.Settings.DOToken)
		if err != nil || string(plain) != "dop_v1_secret" || s.Settings.Domain != domain || s.Settings.DesiredNodes != 3 || len(s.Settings.Regions) != 2 {
			t.Fatalf("settings %+v (%v)", s.Settings, err)
		}
		if _, err := Open(aead, LabelCFToken, s.Settings.DOToken); err == nil {
			t.Fatal("a sealed value opened under another label")
		}
	})
	bad := "bad;domain"
	f.refuse(&UpdateSettings{At: t0, Domain: &bad})
	plain := Sealed("dop_v1_plaintext")
	f.refuse(&UpdateSettings{At: t0, CFToken: &plain})
	f.refuse(&UpdateSettings{At: t0, Regions: []string{"NYC 3"}})
	f.refuse(&UpdateSettings{At: t0, Backup: &BackupSettings{Enabled: true}})
	neg := -1
	f.refuse(&UpdateSettings{At: t0, DesiredNodes: &neg})

	// Before InitCluster a change would be overwritten by it: refused as a
	// conflict the caller retries.
	g := &fixture{t: t, fsm: NewFSM(nil)}
	if err := g.refuse(&UpdateSettings{At: t0, Domain: &domain}); !errors.Is(err, ErrConflict) {
		t.Fatalf("settings before init: %v, want ErrConflict", err)
	}
}

func TestUsers(t *testing.T) {
	f := newFixture(t)
	f.must(&PutUser{At: t0, Name: "dev", PasswordHash: "$2a$10$x", Role: RoleDeployer})
	f.must(&PutUser{At: t0, Name: "dev", Role: RoleViewer}) // role change keeps the hash
	f.view(func(s *State) {
		if u := s.Users["dev"]; u.Role != RoleViewer || u.PasswordHash != "$2a$10$x" {
			t.Fatalf("user %+v", u)
		}
	})
	f.refuse(&PutUser{At: t0, Name: "new", Role: RoleViewer})                             // no password
	f.refuse(&PutUser{At: t0, Name: "x", PasswordHash: "$2a$1", Role: "root"})            // bad role
	f.refuse(&PutUser{At: t0, Name: "Bad User", PasswordHash: "$2a$1", Role: RoleViewer}) // bad name
	f.refuse(&PutUser{At: t0, Name: "admin", Role: RoleViewer})                           // last admin
	f.refuse(&DeleteUser{At: t0, Name: "admin"})                                          // last admin
	f.refuse(&DeleteUser{At: t0, Name: "ghost"})                                          // missing
	f.must(&DeleteUser{At: t0, Name: "dev"})
}

func TestNodes(t *testing.T) {
	f := newFixture(t)
	f.view(func(s *State) {
		if len(s.Nodes) != 3 || s.Nodes["node-1"].Status != NodeActive {
			t.Fatalf("nodes %v", s.Nodes)
		}
	})
	f.refuse(&UpsertNode{At: t0, Node: Node{ID: "Node_1"}})
	f.refuse(&UpsertNode{At: t0, Node: Node{ID: "node-9", PublicIP: "1.2.3"}})
	f.refuse(&UpsertNode{At: t0, Node: Node{ID: "node-9", API: "127.0.0.1:99;rm"}})

	f.refuse(&RecordPings{Results: []PingResult{{Node: "node-2", OK: false}}}) // no time stamp
	f.must(&RecordPings{At: t0, Results: []PingResult{{Node: "node-2", OK: false}, {Node: "ghost", OK: false}}})
	f.must(&RecordPings{At: t0, Results: []PingResult{{Node: "node-2", OK: false}}})
	f.view(func(s *State) {
		if s.Nodes["node-2"].ConsecutiveFailedPings != 2 {
			t.Fatalf("failed pings %d", s.Nodes["node-2"].ConsecutiveFailedPings)
		}
	})
	f.must(&SetNodeStatus{At: t0, Node: "node-2", Status: NodeRebooting, Reason: "5 failed pings", Reboot: true})
	f.view(func(s *State) {
		n := s.Nodes["node-2"]
		if n.Status != NodeRebooting || n.Reboots != 1 || n.ConsecutiveFailedPings != 0 {
			t.Fatalf("node %+v", n)
		}
		if e := s.Events.Items[len(s.Events.Items)-1]; e.Kind != EventHealReboot || e.Node != "node-2" {
			t.Fatalf("event %+v", e)
		}
	})
	f.refuse(&SetNodeStatus{At: t0, Node: "node-2", Status: "sleeping"})
	f.refuse(&SetNodeStatus{At: t0, Node: "ghost", Status: NodeDead})

	f.deploy("d1", webSpec(), "node-1", "node-3")
	f.refuse(&RemoveNode{At: t0, Node: "node-1"}) // still has an instance
	f.must(&RemoveNode{At: t0, Node: "node-2"})
	f.refuse(&RemoveNode{At: t0, Node: "node-2"})
}

func TestWorkspaces(t *testing.T) {
	f := newFixture(t)
	f.must(&CreateWorkspace{At: t0, ID: "abc123", Name: "acme"})
	f.refuse(&CreateWorkspace{At: t0, ID: "abc123", Name: "other"})
	f.refuse(&CreateWorkspace{At: t0, ID: "def456", Name: "acme"})
	f.refuse(&CreateWorkspace{At: t0, ID: "XYZ", Name: "x"})
	f.must(&CreateProject{At: t0, WorkspaceID: "abc123", Name: "shop"})
	f.refuse(&CreateProject{At: t0, WorkspaceID: "abc123", Name: "shop"})
	f.refuse(&CreateProject{At: t0, WorkspaceID: "ffffff", Name: "shop"})
	f.must(&CreateEnvironment{At: t0, WorkspaceID: "abc123", Project: "shop", Name: "staging"})
	f.refuse(&CreateEnvironment{At: t0, WorkspaceID: "abc123", Project: "nope", Name: "staging"})
	f.refuse(&CreateEnvironment{At: t0, WorkspaceID: "abc123", Project: "shop", Name: "stag;ing"})
	f.must(&DeleteWorkspace{At: t0, ID: "abc123"})
	f.refuse(&DeleteWorkspace{At: t0, ID: testWS}) // the default workspace stays
	f.refuse(&DeleteWorkspace{At: t0, ID: "abc123"})
}

func TestDeployCreatesServiceInstancesAndRollout(t *testing.T) {
	f := newFixture(t)
	r := f.deploy("d1", webSpec(), "node-1", "node-2")
	key := ServiceKey(testWS, "shop", "prod", "web")
	if r.Service != key || r.Generation != 1 {
		t.Fatalf("result %+v", r)
	}
	f.view(func(s *State) {
		svc := s.Services[key]
		if svc.Generation != 1 || svc.LiveGeneration != 0 || len(svc.Revisions) != 1 {
			t.Fatalf("service %+v", svc)
		}
		ins := s.ServiceInstances(key)
		if len(ins) != 2 || ins[0].Node != "node-1" || ins[1].Node != "node-2" || ins[0].DesiredGeneration != 0 {
			t.Fatalf("instances %+v %+v", ins[0], ins[1])
		}
		if s.Deploys["d1"].Status != DeployRolling || s.Workspaces[testWS].Projects["shop"].Envs["prod"] == nil {
			t.Fatal("deploy or scope missing")
		}
	})
	id0 := InstanceID(key, 0)
	f.must(&AdvanceRollout{At: t0, DeployID: "d1", Service: key, Generation: 1, Instances: []string{id0}})
	f.must(&ReportInstances{At: t0, Node: "node-1", Reports: []InstanceReport{{Instance: id0, Generation: 1, ContainerID: "abc", State: "running", Phase: "routed", Address: "127.0.0.2:32768"}}})
	// Bad reports are refused whole: a good report beside a bad one is not applied.
	good := InstanceReport{Instance: id0, Generation: 1, ContainerID: "zzz", State: "running"}
	for name, bad := range map[string]InstanceReport{
		"address":    {Instance: id0, Generation: 1, Address: "127.0.0.2:32768;rm"},
		"long error": {Instance: id0, Generation: 1, Error: strings.Repeat("e", 4001)},
		"long phase": {Instance: id0, Generation: 1, Phase: strings.Repeat("p", 65)},
	} {
		if err := f.refuse(&ReportInstances{At: t0, Node: "node-1", Reports: []InstanceReport{good, bad}}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("report with a bad %s: %v", name, err)
		}
	}
	f.refuse(&ReportInstances{At: t0, Node: "ghost", Reports: []InstanceReport{good}})
	f.refuse(&ReportInstances{Node: "node-1", Reports: []InstanceReport{good}})
	// A report from a node the instance is not on is stale and ignored.
	f.must(&ReportInstances{At: t0, Node: "node-3", Reports: []InstanceReport{{Instance: id0, Generation: 9, State: "running"}}})
	f.must(&FinishDeploy{At: t0, DeployID: "d1", Status: DeploySucceeded})
	f.view(func(s *State) {
		in := s.Instances[id0]
		if in.DesiredGeneration != 1 || in.Generation != 1 || in.ContainerID != "abc" {
			t.Fatalf("instance %+v", in)
		}
		if s.Services[key].LiveGeneration != 1 {
			t.Fatal("not live")
		}
	})
	f.refuse(&FinishDeploy{At: t0, DeployID: "d1", Status: DeployFailed}) // already finished

	// Scale down to one replica on node-3: slot 0 moves, slot 1 goes away.
	spec := webSpec()
	spec.Replicas = 1
	r2 := f.deploy("d2", spec, "node-3")
	f.view(func(s *State) {
		ins := s.ServiceInstances(key)
		if len(ins) != 1 || ins[0].Node != "node-3" || ins[0].DesiredGeneration != 1 || ins[0].ContainerID != "" {
			t.Fatalf("after scale-down %+v", ins)
		}
		if r2.Generation != 2 || s.Deploys["d2"].PrevGeneration != 1 {
			t.Fatalf("deploy %+v", s.Deploys["d2"])
		}
	})
}

func TestDeployRefusals(t *testing.T) {
	f := newFixture(t)
	place := []Assignment{{Slot: 0, Node: "node-1"}, {Slot: 1, Node: "node-2"}}
	bad := func(mut func(c *DeployService)) {
		t.Helper()
		c := &DeployService{At: t0, DeployID: "dx", WorkspaceID: testWS, Spec: webSpec(), Placement: place}
		mut(c)
		f.refuse(c)
	}
	bad(func(c *DeployService) { c.Spec.Hosts = []string{"evil.com;"} })
	bad(func(c *DeployService) { c.Spec.Service = "We b" })
	bad(func(c *DeployService) { c.Spec.Image = "UPPER CASE:tag" })
	bad(func(c *DeployService) { c.Spec.Secrets = map[string]string{"PASSWORD": "plain"} })
	bad(func(c *DeployService) { c.Placement = place[:1] })
	bad(func(c *DeployService) {
		c.Placement = []Assignment{{Slot: 0, Node: "node-1"}, {Slot: 0, Node: "node-2"}}
	})
	bad(func(c *DeployService) {
		c.Placement = []Assignment{{Slot: 0, Node: "node-1"}, {Slot: 1, Node: "ghost"}}
	})
	bad(func(c *DeployService) { c.WorkspaceID = "ffffff" })
	bad(func(c *DeployService) { c.DeployID = "" })
	bad(func(c *DeployService) { c.ExpectGeneration = 4 })
	bad(func(c *DeployService) { c.Spec.Uses = []string{"redis"} })
	bad(func(c *DeployService) { c.At = time.Time{} })
	bad(func(c *DeployService) { c.WorkspaceID, c.WorkspaceName = "abcdef", "default" }) // name taken
	f.must(&SetNodeStatus{At: t0, Node: "node-2", Status: NodeDraining})
	bad(func(c *DeployService) {})
}

func TestDeployCreatesNamedWorkspace(t *testing.T) {
	f := newFixture(t)
	f.must(&DeployService{At: t0, DeployID: "d1", WorkspaceID: "a1b2c3", WorkspaceName: "demo", Spec: webSpec(),
		Placement: []Assignment{{Slot: 0, Node: "node-1"}, {Slot: 1, Node: "node-2"}}})
	f.view(func(s *State) {
		if w := s.ResolveWorkspace("demo"); w == nil || w.ID != "a1b2c3" {
			t.Fatal("workspace not created")
		}
	})
}

func TestSupersededDeployAndRevisions(t *testing.T) {
	f := newFixture(t)
	spec := webSpec()
	spec.Replicas = 1
	for i := 1; i <= MaxRevisions+3; i++ {
		spec.Vars = map[string]string{"V": string(rune('a' + i))}
		f.deploy("d"+string(rune('0'+i)), spec, "node-1")
	}
	key := ServiceKey(testWS, "shop", "prod", "web")
	f.view(func(s *State) {
		svc := s.Services[key]
		if len(svc.Revisions) != MaxRevisions || svc.Generation != MaxRevisions+3 {
			t.Fatalf("revisions %d gen %d", len(svc.Revisions), svc.Generation)
		}
		rolling := 0
		for _, d := range s.Deploys {
			if d.Status == DeployRolling {
				rolling++
			}
		}
		if rolling != 1 {
			t.Fatalf("%d rolling deploys, want 1 (older ones superseded)", rolling)
		}
	})
}

func TestUndeploy(t *testing.T) {
	f := newFixture(t)
	redis := ServiceSpec{Project: "shop", Env: "prod", Service: "redis", Kind: KindStateful, Image: "redis:7", Port: 6379}
	f.deploy("d0", redis, "node-1")
	web := webSpec()
	web.Uses = []string{"redis"}
	f.deploy("d1", web, "node-1", "node-2")
	rkey := ServiceKey(testWS, "shop", "prod", "redis")
	wkey := ServiceKey(testWS, "shop", "prod", "web")
	f.refuse(&UndeployService{At: t0, Service: rkey}) // web uses it
	f.must(&UndeployService{At: t0, Service: wkey})
	f.view(func(s *State) {
		if s.Services[wkey] != nil || len(s.ServiceInstances(wkey)) != 0 || s.Deploys["d1"].Status != DeployFailed {
			t.Fatal("undeploy left something behind")
		}
	})
	f.refuse(&UndeployService{At: t0, Service: wkey})
	f.must(&UndeployService{At: t0, Service: rkey})
}

func TestAdvanceRolloutRefusals(t *testing.T) {
	f := newFixture(t)
	f.deploy("d1", webSpec(), "node-1", "node-2")
	key := ServiceKey(testWS, "shop", "prod", "web")
	f.refuse(&AdvanceRollout{At: t0, Service: key, Generation: 2, Instances: []string{InstanceID(key, 0)}})
	f.refuse(&AdvanceRollout{At: t0, Service: key, Generation: 1, Instances: []string{"ghost#0"}})
	f.refuse(&AdvanceRollout{At: t0, Service: "nope/x/y/z", Generation: 1})
	f.refuse(&AdvanceRollout{At: t0, DeployID: "zzz", Service: key, Generation: 1})
}

func TestHealthHistoryRestartsAndPurge(t *testing.T) {
	f := newFixture(t)
	f.deploy("d1", webSpec(), "node-1", "node-2")
	key := ServiceKey(testWS, "shop", "prod", "web")
	id := InstanceID(key, 0)
	report := func(at time.Time, status string) {
		f.must(&ReportHealth{At: at, Node: "node-1", Results: []HealthReport{{Instance: id, Status: status, CheckedAt: at}}})
	}
	for i := 0; i < 3; i++ {
		report(t0.Add(time.Duration(i)*time.Minute), HealthHealthy)
	}
	for i := 3; i < 6; i++ {
		report(t0.Add(time.Duration(i)*time.Minute), HealthUnhealthy)
	}
	f.view(func(s *State) {
		in := s.Instances[id]
		h := in.History.Segments()
		if in.ConsecutiveUnhealthy != 3 || len(h) != 2 || h[0].Count != 3 || h[1].Status != HealthUnhealthy {
			t.Fatalf("instance %+v history %+v", in, h)
		}
	})
	// An older result than the last one is ignored; a result from another node too.
	report(t0, HealthHealthy)
	f.must(&ReportHealth{At: t0, Node: "node-2", Results: []HealthReport{{Instance: id, Status: HealthHealthy, CheckedAt: t0.Add(time.Hour)}}})
	f.view(func(s *State) {
		if s.Instances[id].Health != HealthUnhealthy {
			t.Fatal("stale result applied")
		}
	})
	f.refuse(&ReportHealth{At: t0, Node: "node-1", Results: []HealthReport{{Instance: id, Status: "great", CheckedAt: t0}}})
	f.refuse(&ReportHealth{At: t0, Node: "ghost", Results: nil})

	restartAt := t0.Add(6 * time.Minute)
	for i := 1; i <= 3; i++ {
		nonce := f.must(&RestartInstance{At: restartAt, Instance: id, Reason: "3 unhealthy checks"})
		if nonce.(int64) != int64(i) {
			t.Fatalf("nonce %v", nonce)
		}
	}
	f.view(func(s *State) {
		in := s.Instances[id]
		if !in.CrashLooping || in.Restarts != 3 || in.ConsecutiveUnhealthy != 0 || !in.NextRestartAt.Equal(restartAt.Add(4*time.Minute)) {
			t.Fatalf("after restarts %+v", in)
		}
	})
	// Healthy long enough after the last restart clears the streak.
	report(restartAt.Add(11*time.Minute), HealthHealthy)
	f.view(func(s *State) {
		if in := s.Instances[id]; in.CrashLooping || in.RestartStreak != 0 {
			t.Fatalf("streak not reset %+v", in)
		}
	})
	purged := f.must(&PurgeHistory{At: t0.Add(8 * 24 * time.Hour), Before: t0.Add(4 * time.Minute)})
	f.view(func(s *State) {
		h := s.Instances[id].History.Segments()
		if purged.(int) != 1 || h[0].Status != HealthUnhealthy || !h[0].From.Equal(t0.Add(4*time.Minute)) {
			t.Fatalf("purged %v history %+v", purged, h)
		}
	})
	f.refuse(&PurgeHistory{At: t0, Before: t0.Add(time.Hour)})
	f.refuse(&RestartInstance{At: t0, Instance: "ghost"})
}

func TestRestartBackoff(t *testing.T) {
	want := []time.Duration{0, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 30 * time.Minute, 30 * time.Minute}
	for streak, w := range want {
		if got := RestartBackoff(streak); got != w {
			t.Fatalf("streak %d: %s, want %s", streak, got, w)
		}
	}
}

func TestCronRunsAndMoves(t *testing.T) {
	f := newFixture(t)
	job := ServiceSpec{Project: "shop", Env: "prod", Service: "report", Kind: KindCron, Image: "report:1", Schedule: "*/5 * * * *"}
	f.deploy("d1", job, "node-1")
	key := ServiceKey(testWS, "shop", "prod", "report")
	id := InstanceID(key, 0)
	f.must(&RecordCronRun{At: t0, Node: "node-1", Instance: id, StartedAt: t0, FinishedAt: t0.Add(2 * time.Second), ExitCode: 3})
	f.must(&RecordCronRun{At: t0, Node: "node-1", Instance: id, StartedAt: t0.Add(-time.Hour), FinishedAt: t0, ExitCode: 0}) // older, ignored
	f.view(func(s *State) {
		in := s.Instances[id]
		if in.LastRunExit != 3 || in.Runs != 1 || in.LastRunDuration.D() != 2*time.Second {
			t.Fatalf("cron %+v", in)
		}
	})
	f.refuse(&RecordCronRun{At: t0, Node: "node-1", Instance: id, StartedAt: t0, FinishedAt: t0.Add(-time.Second)})

	f.must(&MoveInstance{At: t0, Instance: id, Node: "node-2", Reason: "node-1 dead"})
	f.view(func(s *State) {
		if in := s.Instances[id]; in.Node != "node-2" || in.Runs != 0 {
			t.Fatalf("moved %+v", in)
		}
	})
	f.refuse(&MoveInstance{At: t0, Instance: id, Node: "ghost"})
	redis := ServiceSpec{Project: "shop", Env: "prod", Service: "redis", Kind: KindStateful, Image: "redis:7", Port: 6379}
	f.deploy("d2", redis, "node-1")
	f.refuse(&MoveInstance{At: t0, Instance: InstanceID(ServiceKey(testWS, "shop", "prod", "redis"), 0), Node: "node-2"})
	f.must(&SetStranded{At: t0, Service: ServiceKey(testWS, "shop", "prod", "redis"), Reason: "node-1 is dead"})
	f.refuse(&SetStranded{At: t0, Service: "ghost"})
}

func TestCloudIntents(t *testing.T) {
	f := newFixture(t)
	f.must(&RecordIntent{At: t0, Intent: Intent{ID: "i1", Kind: IntentCreateDroplet, Target: "test-node-4", Params: map[string]string{"region": "nyc3"}}})
	f.refuse(&RecordIntent{At: t0, Intent: Intent{ID: "i1", Kind: IntentCreateDroplet, Target: "x"}})
	f.refuse(&RecordIntent{At: t0, Intent: Intent{ID: "i2", Kind: "launch_missiles", Target: "x"}})
	f.view(func(s *State) {
		if p := s.Cloud.PendingIntents(); len(p) != 1 || p[0].ID != "i1" {
			t.Fatalf("pending %v", p)
		}
	})
	f.must(&ResolveIntent{At: t0, IntentID: "i1", Retry: true, Error: "429"})
	f.must(&ResolveIntent{At: t0, IntentID: "i1", Status: IntentDone, Changes: CloudChanges{
		Droplet:     &Droplet{Name: "test-node-4", NodeID: "node-4", ID: 44, Region: "nyc3", Status: DropletActive, PublicIP: "127.0.0.5"},
		NextNodeSeq: 4,
	}})
	f.refuse(&ResolveIntent{At: t0, IntentID: "i1", Status: IntentDone})
	f.refuse(&ResolveIntent{At: t0, IntentID: "ghost", Status: IntentDone})
	f.refuse(&ResolveIntent{At: t0, Changes: CloudChanges{DNS: &DNSHost{Host: "bad host", IPs: []string{"1.1.1.1"}}}})
	f.must(&ResolveIntent{At: t0, Changes: CloudChanges{DNS: &DNSHost{Host: "shop.example.com", IPs: []string{"1.1.1.1"}, Proxied: true}}})
	f.view(func(s *State) {
		in := s.Cloud.Intents["i1"]
		if in.Status != IntentDone || in.Attempts != 2 || s.Cloud.Droplets["test-node-4"].ID != 44 || s.Cloud.NextNodeSeq != 4 {
			t.Fatalf("cloud %+v %+v", in, s.Cloud)
		}
		if s.Cloud.DNS["shop.example.com"].IPs[0] != "1.1.1.1" {
			t.Fatal("dns not recorded")
		}
	})
	f.must(&PutSnapshot{At: t0, Snapshot: Snapshot{Name: "dropmesh-base", Kind: SnapshotBase, Status: SnapshotBuilding, Phase: "installing", Progress: 40}})
	f.refuse(&PutSnapshot{At: t0, Snapshot: Snapshot{Name: "Bad Name", Kind: SnapshotBase, Status: SnapshotReady}})
	f.refuse(&PutSnapshot{At: t0, Snapshot: Snapshot{Name: "ok", Kind: SnapshotBase, Status: SnapshotReady, Progress: 101}})
}

func TestEventsWebhooksRegistriesContexts(t *testing.T) {
	f := newFixture(t)
	seq := f.must(&AppendEvent{At: t0, Event: Event{Kind: EventEdge, Severity: SeverityError, Message: "nginx -t failed"}}).(uint64)
	f.refuse(&AppendEvent{At: t0, Event: Event{Kind: "", Message: "x"}})
	f.refuse(&AppendEvent{At: t0, Event: Event{Kind: "k", Message: "x", Severity: "loud"}})
	f.must(&AdvanceNotified{At: t0, Seq: seq})
	f.refuse(&AdvanceNotified{At: t0, Seq: seq + 100})

	f.must(&PutWebhook{At: t0, Webhook: Webhook{ID: "ops", URL: "https://hooks.example.com/x", Format: WebhookSlack}})
	f.refuse(&PutWebhook{At: t0, Webhook: Webhook{ID: "bad", URL: "ftp://x", Format: WebhookSlack}})
	f.refuse(&PutWebhook{At: t0, Webhook: Webhook{ID: "bad", URL: "https://x.example.com", Format: "teams"}})
	f.must(&DeleteWebhook{At: t0, ID: "ops"})
	f.refuse(&DeleteWebhook{At: t0, ID: "ops"})

	pw, _ := Seal(testAEAD(t), RegistryLabel("127.0.0.1:5000"), []byte("pw"))
	f.must(&PutRegistry{At: t0, Credential: RegistryCredential{Registry: "127.0.0.1:5000", Username: "u", Password: pw}})
	f.refuse(&PutRegistry{At: t0, Credential: RegistryCredential{Registry: "reg;istry", Username: "u", Password: pw}})
	f.refuse(&PutRegistry{At: t0, Credential: RegistryCredential{Registry: "ghcr.io", Username: "u", Password: "plain"}})
	f.refuse(&DeleteRegistry{Registry: "127.0.0.1:5000"}) // no time stamp
	f.must(&DeleteRegistry{At: t0, Registry: "127.0.0.1:5000"})
	f.refuse(&DeleteRegistry{At: t0, Registry: "127.0.0.1:5000"}) // gone already

	digest := "sha256:" + strings.Repeat("ab", 32)
	f.must(&PutBuildContext{At: t0, Digest: digest, Size: 100, Node: "node-1"})
	f.must(&PutBuildContext{At: t0, Digest: digest, Size: 100, Node: "node-2"})
	f.refuse(&PutBuildContext{At: t0, Digest: "sha256:xyz", Size: 1, Node: "node-1"})
	f.must(&PutBuildContext{At: t0, Digest: digest, Node: "node-1", Dropped: true})
	f.view(func(s *State) {
		if h := s.Contexts[digest].Holders; len(h) != 1 || h[0] != "node-2" {
			t.Fatalf("holders %v", h)
		}
	})
}

func TestEventLogIsBounded(t *testing.T) {
	var l EventLog
	n := MaxEvents + eventTrimStep + 1
	for i := 0; i < n; i++ {
		l.add(Event{Kind: "k", Message: "m"})
		if len(l.Items) > MaxEvents+eventTrimStep {
			t.Fatalf("log grew to %d", len(l.Items))
		}
	}
	if len(l.Items) != MaxEvents || l.Items[0].Seq != uint64(n-MaxEvents+1) || l.NextSeq != uint64(n) {
		t.Fatalf("len %d first %d next %d", len(l.Items), l.Items[0].Seq, l.NextSeq)
	}
	if got := l.Since(uint64(n-2), 0); len(got) != 2 {
		t.Fatalf("since: %d events", len(got))
	}
	if got := l.Since(0, 5); len(got) != 5 || got[4].Seq != uint64(n) {
		t.Fatalf("limit: %v", got)
	}
}

func TestFailedDeployRevertsInstancesAtomically(t *testing.T) {
	f := newFixture(t)
	f.deploy("d1", webSpec(), "node-1", "node-2")
	key := ServiceKey(testWS, "shop", "prod", "web")
	ids := []string{InstanceID(key, 0), InstanceID(key, 1)}
	f.must(&AdvanceRollout{At: t0, DeployID: "d1", Service: key, Generation: 1, Instances: ids})
	f.must(&FinishDeploy{At: t0, DeployID: "d1", Status: DeploySucceeded})
	spec := webSpec()
	spec.Image = "127.0.0.1:5000/shop/web:1.5"
	f.deploy("d2", spec, "node-1", "node-2")
	f.must(&AdvanceRollout{At: t0, DeployID: "d2", Service: key, Generation: 2, Instances: ids[:1]})
	reverted := f.must(&FinishDeploy{At: t0, DeployID: "d2", Status: DeployFailed, Reason: "health check failed"})
	if reverted.(int) != 1 {
		t.Fatalf("reverted %v", reverted)
	}
	f.view(func(s *State) {
		for _, id := range ids {
			if in := s.Instances[id]; in.DesiredGeneration != 1 {
				t.Fatalf("%s desires %d after the failed deploy", id, in.DesiredGeneration)
			}
		}
		if s.Services[key].LiveGeneration != 1 {
			t.Fatal("live generation moved")
		}
		if last := s.Events.Items[len(s.Events.Items)-1]; last.Kind != EventRollback {
			t.Fatalf("last event %+v, want a rollback", last)
		}
	})
}
