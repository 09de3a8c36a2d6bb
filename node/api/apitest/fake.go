// Package apitest is the API's test kit: Fake, an in-memory
// control.Controller over a real FSM that the tests of the API, the API
// client, the CLI, the UI, metrics and backup serve or drive. Only tests
// import it, so the agent's binary never links it.
package apitest

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/deployplan"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Fake is an in-memory control.Controller for the tests of the API, the
// CLI and the UI. Underneath is a real raftfsm.FSM: writes apply real
// commands, so reads see real state and refusals leave it unchanged. It
// records every call, can play leader or follower, and serves container
// logs, health answers and build contexts that the test sets.
type Fake struct {
	fsm *raftfsm.FSM
	// aead seals secrets and tokens with a fixed test key.
	aead cipher.AEAD

	// applyMu orders the applies, as raft's log does.
	applyMu sync.Mutex
	index   uint64
	log     []raftfsm.Command

	mu        sync.Mutex
	nodeID    string
	version   string
	leader    bool
	leaderID  string
	leaderAPI string
	seq       int
	calls     []Call
	failNext  map[string]error
	logs      map[string]*fakeLog
	health    map[string]control.HealthAnswer
	contexts  map[string][]byte
	agentLogs []control.LogEntry
	probeErr  error
	catchUp   error
	contact   *raftfsm.Contact
	// gossipRotations counts the rotations; the key ids follow from it.
	gossipRotations int
}

// Call is one recorded Controller call: the method's name and its main argument.
type Call struct {
	Method string
	Arg    any
}

// fakeLog is a container's log; followers wait on changed for more.
type fakeLog struct {
	data    []byte
	closed  bool
	changed chan struct{}
}

// FakeDefaultWorkspaceID is the id of the default workspace of a Fake.
const FakeDefaultWorkspaceID = "d3fa01"

// fakeEpoch is the fixed time of the Fake's initial state.
var fakeEpoch = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// NewFake returns a Fake that leads a cluster of node-1, node-2 and
// node-3 (all active), with the admin user and the default workspace. Its
// own id is nodeID (it need not be one of the three).
func NewFake(nodeID string) *Fake {
	block, err := aes.NewCipher(bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		panic(err) // a fixed 32-byte key cannot fail
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	f := &Fake{fsm: raftfsm.NewFSM(nil), aead: aead, nodeID: nodeID, version: "test", leader: true, leaderID: nodeID,
		failNext: map[string]error{}, logs: map[string]*fakeLog{}, health: map[string]control.HealthAnswer{}, contexts: map[string][]byte{}}
	hash, err := bcrypt.GenerateFromPassword([]byte("admin-password"), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	must := func(c raftfsm.Command) {
		if _, err := f.Apply(c); err != nil {
			panic(fmt.Sprintf("fake: initial %s: %v", c.Type(), err))
		}
	}
	must(&raftfsm.InitCluster{At: fakeEpoch, ClusterID: "fake-cluster", ClusterName: "fake", AdminName: "admin",
		AdminPasswordHash: string(hash), DefaultWorkspaceID: FakeDefaultWorkspaceID})
	for i := 1; i <= 3; i++ {
		must(&raftfsm.UpsertNode{At: fakeEpoch, Node: raftfsm.Node{ID: fmt.Sprintf("node-%d", i), Region: "nyc3",
			PrivateIP: fmt.Sprintf("10.0.0.%d", i+1), API: fmt.Sprintf("10.0.0.%d:9999", i+1)}})
	}
	return f
}

var _ control.Controller = (*Fake)(nil)

// --- test controls ---

// Apply applies a command to the state at the next index.
func (f *Fake) Apply(c raftfsm.Command) (any, error) {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	f.index++
	f.log = append(f.log, c)
	return f.fsm.ApplyCommand(f.index, c)
}

// ReplicateFrom applies the commands leader applied that f has not, as
// raft replication would: for tests of a follower that lags. Both must
// have started from NewFake and applied the same commands so far.
func (f *Fake) ReplicateFrom(leader *Fake) {
	leader.applyMu.Lock()
	missing := slices.Clone(leader.log[min(len(f.log), len(leader.log)):])
	leader.applyMu.Unlock()
	for _, c := range missing {
		_, _ = f.Apply(c)
	}
}

// Index is the raft index of the fake's state.
func (f *Fake) Index() uint64 { return f.fsm.Index() }

// FSM is the state machine under the fake.
func (f *Fake) FSM() *raftfsm.FSM { return f.fsm }

// StateJSON is the state without its index, to check that a refused request
// changed nothing.
func (f *Fake) StateJSON() string {
	var out string
	f.fsm.View(func(s *raftfsm.State) {
		c := *s
		c.Index = 0
		b, err := json.Marshal(&c)
		if err != nil {
			panic(err)
		}
		out = string(b)
	})
	return out
}

// SetLeader makes the fake the leader (leader true) or a follower of
// leaderID whose API is at leaderAPI ("" = no leader known).
func (f *Fake) SetLeader(leader bool, leaderID, leaderAPI string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leader, f.leaderID, f.leaderAPI = leader, leaderID, leaderAPI
	if leader {
		f.leaderID = f.nodeID
	}
}

// Calls returns the calls so far.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// CallCount counts the calls of one method.
func (f *Fake) CallCount(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.Method == method {
			n++
		}
	}
	return n
}

// FailNext makes the next call of method return err.
func (f *Fake) FailNext(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext[method] = err
}

// SetLogs gives container name (running on this node) a log.
func (f *Fake) SetLogs(name, text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs[name] = &fakeLog{data: []byte(text), changed: make(chan struct{})}
}

// AppendLogs adds text to a container's log, waking followers.
func (f *Fake) AppendLogs(name, text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.logs[name]
	if !ok {
		l = &fakeLog{changed: make(chan struct{})}
		f.logs[name] = l
	}
	l.data = append(l.data, text...)
	close(l.changed)
	l.changed = make(chan struct{})
}

// CloseLogs ends the followers of a container's log (the container stopped).
func (f *Fake) CloseLogs(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l, ok := f.logs[name]; ok && !l.closed {
		l.closed = true
		close(l.changed)
		l.changed = make(chan struct{})
	}
}

// SetHealth gives container name (running on this node) a health answer.
func (f *Fake) SetHealth(name string, a control.HealthAnswer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.health[name] = a
}

// SetProbeError makes ProbeAddress fail with err (nil: succeed).
func (f *Fake) SetProbeError(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.probeErr = err
}

// AddAgentLog adds a line to the agent's own log.
func (f *Fake) AddAgentLog(e control.LogEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.agentLogs = append(f.agentLogs, e)
}

// SetNodeAPI records node's API address (host:port) in the state, adding
// the node when it is new.
func (f *Fake) SetNodeAPI(node, api string) error {
	n := raftfsm.Node{ID: node, Region: "nyc3"}
	f.fsm.View(func(s *raftfsm.State) {
		if cur, ok := s.Nodes[node]; ok {
			n = *cur
		}
	})
	n.API = api
	_, err := f.Apply(&raftfsm.UpsertNode{At: f.now(), Node: n})
	return err
}

// Report applies an agent's instance report from node.
func (f *Fake) Report(node string, reports ...raftfsm.InstanceReport) error {
	_, err := f.Apply(&raftfsm.ReportInstances{At: f.now(), Node: node, Reports: reports})
	return err
}

// Advance moves instances of a deploy to its generation, as the leader's
// roll-out controller does.
func (f *Fake) Advance(deployID string, instances ...string) error {
	var d raftfsm.Deploy
	f.fsm.View(func(s *raftfsm.State) {
		if p, ok := s.Deploys[deployID]; ok {
			d = *p
		}
	})
	if d.ID == "" {
		return fmt.Errorf("deploy %s: %w", deployID, raftfsm.ErrNotFound)
	}
	_, err := f.Apply(&raftfsm.AdvanceRollout{At: f.now(), DeployID: deployID, Service: d.Service, Generation: d.Generation, Instances: instances})
	return err
}

// Finish ends a deploy with status succeeded or failed.
func (f *Fake) Finish(deployID, status, reason string) error {
	_, err := f.Apply(&raftfsm.FinishDeploy{At: f.now(), DeployID: deployID, Status: status, Reason: reason})
	return err
}

// --- control.Controller ---

func (f *Fake) now() time.Time { return time.Now().UTC() }

// record notes a call and returns the error set with FailNext, if any.
func (f *Fake) record(method string, arg any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Method: method, Arg: arg})
	if err, ok := f.failNext[method]; ok {
		delete(f.failNext, method)
		return err
	}
	return nil
}

// write records a leader-only call.
func (f *Fake) write(method string, arg any) error {
	if err := f.record(method, arg); err != nil {
		return err
	}
	if !f.IsLeader() {
		return control.ErrNotLeader
	}
	return nil
}

func (f *Fake) nextSeq() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	return f.seq
}

// NodeID is the fake's node id.
func (f *Fake) NodeID() string { return f.nodeID }

// Version is "test".
func (f *Fake) Version() string { return f.version }

// View reads the state.
func (f *Fake) View(fn func(s *raftfsm.State)) { f.fsm.View(fn) }

// Changed is closed at the next state change.
func (f *Fake) Changed() <-chan struct{} { return f.fsm.Changed() }

// Consistent succeeds on the leader.
func (f *Fake) Consistent(ctx context.Context) error {
	if err := f.record("Consistent", nil); err != nil {
		return err
	}
	if !f.IsLeader() {
		return control.ErrNotLeader
	}
	return nil
}

// SetCatchingUp makes CatchUp return err (nil: caught up).
func (f *Fake) SetCatchingUp(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.catchUp = err
}

// SetContact sets what StaleContact answers (nil: the leader, just now).
func (f *Fake) SetContact(c *raftfsm.Contact) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.contact = c
}

// CatchUp returns what SetCatchingUp set. The read path's calls are not
// recorded: every read makes them.
func (f *Fake) CatchUp() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.catchUp
}

// ReadIndex returns the state's index on the leader, ErrNotLeader elsewhere.
func (f *Fake) ReadIndex(ctx context.Context) (uint64, error) {
	if !f.IsLeader() {
		return 0, control.ErrNotLeader
	}
	return f.fsm.Index(), nil
}

// WaitApplied waits until the state's index reaches idx.
func (f *Fake) WaitApplied(ctx context.Context, idx uint64) error { return f.fsm.WaitIndex(ctx, idx) }

// StaleContact returns what SetContact set.
func (f *Fake) StaleContact(ctx context.Context) raftfsm.Contact {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.contact != nil {
		return *f.contact
	}
	return raftfsm.Contact{Leader: f.leaderID, Known: f.leaderID != ""}
}

// Cluster lists the state's nodes as alive voters.
func (f *Fake) Cluster(ctx context.Context) (control.ClusterInfo, error) {
	if err := f.record("Cluster", nil); err != nil {
		return control.ClusterInfo{}, err
	}
	id, api := f.Leader()
	info := control.ClusterInfo{Leader: control.LeaderInfo{ID: id, API: api}, Term: 1, Members: []control.MemberInfo{}}
	f.fsm.View(func(s *raftfsm.State) {
		for _, n := range raftfsm.SortedKeys(s.Nodes) {
			info.Members = append(info.Members, control.MemberInfo{ID: n, Status: "alive", Raft: "voter", API: s.Nodes[n].API, Version: f.version})
		}
	})
	return info, nil
}

// IsLeader reports the role set with SetLeader.
func (f *Fake) IsLeader() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader
}

// Leader returns the leader set with SetLeader.
func (f *Fake) Leader() (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leaderID, f.leaderAPI
}

func (f *Fake) serviceKey(name string) (key string, err error) {
	f.fsm.View(func(s *raftfsm.State) { key, err = deployplan.ResolveService(s, name) })
	return key, err
}

// Deploy prepares the deploy as the agent does (deployplan.Prepare:
// workspace, hosts, build context, secrets, placement) and applies it.
func (f *Fake) Deploy(ctx context.Context, req control.DeployRequest) (raftfsm.DeployResult, error) {
	if err := f.write("Deploy", req); err != nil {
		return raftfsm.DeployResult{}, err
	}
	spec := req.Spec.Clone()
	spec.Normalize()
	if err := spec.Validate(); err != nil {
		return raftfsm.DeployResult{}, err
	}
	var (
		cmd     *raftfsm.DeployService
		prepErr error
	)
	f.fsm.View(func(s *raftfsm.State) {
		cmd, prepErr = deployplan.Prepare(s, deployplan.Request{Spec: spec, Actor: req.Actor, ExpectGeneration: req.ExpectGeneration,
			At: f.now(), DeployID: fmt.Sprintf("dep-%d", f.nextSeq()), Sealer: f.aead,
			NewWorkspaceID: func() string { return fmt.Sprintf("%06x", 0xa00000+f.nextSeq()) }})
	})
	if prepErr != nil {
		return raftfsm.DeployResult{}, prepErr
	}
	v, err := f.Apply(cmd)
	if err != nil {
		return raftfsm.DeployResult{}, err
	}
	return v.(raftfsm.DeployResult), nil
}

// Undeploy removes a service.
func (f *Fake) Undeploy(ctx context.Context, service, actor string) error {
	if err := f.write("Undeploy", service); err != nil {
		return err
	}
	key, err := f.serviceKey(service)
	if err != nil {
		return err
	}
	_, err = f.Apply(&raftfsm.UndeployService{At: f.now(), Service: key, DeployID: fmt.Sprintf("undep-%d", f.nextSeq()), Actor: actor})
	return err
}

// RestartService asks every instance of a service for a restart.
func (f *Fake) RestartService(ctx context.Context, service, actor string) error {
	if err := f.write("RestartService", service); err != nil {
		return err
	}
	key, err := f.serviceKey(service)
	if err != nil {
		return err
	}
	var ids []string
	f.fsm.View(func(s *raftfsm.State) {
		for _, in := range s.ServiceInstances(key) {
			ids = append(ids, in.ID)
		}
	})
	for _, id := range ids {
		if _, err := f.Apply(&raftfsm.RestartInstance{At: f.now(), Instance: id, Reason: "restart requested by " + actor}); err != nil {
			return err
		}
	}
	return nil
}

// CreateWorkspace creates a workspace.
func (f *Fake) CreateWorkspace(ctx context.Context, name string) (control.WorkspaceInfo, error) {
	if err := f.write("CreateWorkspace", name); err != nil {
		return control.WorkspaceInfo{}, err
	}
	id := fmt.Sprintf("%06x", 0xb00000+f.nextSeq())
	if _, err := f.Apply(&raftfsm.CreateWorkspace{At: f.now(), ID: id, Name: name}); err != nil {
		return control.WorkspaceInfo{}, err
	}
	return control.WorkspaceInfo{ID: id, Name: name, Projects: []control.ProjectInfo{}, Services: []raftfsm.Service{}, Instances: []raftfsm.Instance{}}, nil
}

func (f *Fake) workspaceID(ref string) (string, error) {
	var id string
	f.fsm.View(func(s *raftfsm.State) {
		if w := s.ResolveWorkspace(ref); w != nil {
			id = w.ID
		}
	})
	if id == "" {
		return "", fmt.Errorf("workspace %q: %w", ref, raftfsm.ErrNotFound)
	}
	return id, nil
}

// DeleteWorkspace removes an empty workspace.
func (f *Fake) DeleteWorkspace(ctx context.Context, ref string) error {
	if err := f.write("DeleteWorkspace", ref); err != nil {
		return err
	}
	id, err := f.workspaceID(ref)
	if err != nil {
		return err
	}
	_, err = f.Apply(&raftfsm.DeleteWorkspace{At: f.now(), ID: id})
	return err
}

// CreateProject creates a project.
func (f *Fake) CreateProject(ctx context.Context, workspace, name string) error {
	if err := f.write("CreateProject", workspace+"/"+name); err != nil {
		return err
	}
	id, err := f.workspaceID(workspace)
	if err != nil {
		return err
	}
	_, err = f.Apply(&raftfsm.CreateProject{At: f.now(), WorkspaceID: id, Name: name})
	return err
}

// CreateEnvironment creates an environment.
func (f *Fake) CreateEnvironment(ctx context.Context, workspace, project, name string) error {
	if err := f.write("CreateEnvironment", workspace+"/"+project+"/"+name); err != nil {
		return err
	}
	id, err := f.workspaceID(workspace)
	if err != nil {
		return err
	}
	_, err = f.Apply(&raftfsm.CreateEnvironment{At: f.now(), WorkspaceID: id, Project: project, Name: name})
	return err
}

// AddNodes returns the names the new nodes would get; it creates nothing.
func (f *Fake) AddNodes(ctx context.Context, req control.AddNodesRequest) ([]string, error) {
	if err := f.write("AddNodes", req); err != nil {
		return nil, err
	}
	var n int
	f.fsm.View(func(s *raftfsm.State) { n = len(s.Nodes) })
	var ids []string
	for i := range req.Count {
		ids = append(ids, fmt.Sprintf("node-%d", n+i+1))
	}
	return ids, nil
}

// RemoveNode forgets a node without instances.
func (f *Fake) RemoveNode(ctx context.Context, id string) error {
	if err := f.write("RemoveNode", id); err != nil {
		return err
	}
	_, err := f.Apply(&raftfsm.RemoveNode{At: f.now(), Node: id, Reason: "removed through the API"})
	return err
}

// RebootNode marks a node as rebooting.
func (f *Fake) RebootNode(ctx context.Context, id string) error {
	if err := f.write("RebootNode", id); err != nil {
		return err
	}
	_, err := f.Apply(&raftfsm.SetNodeStatus{At: f.now(), Node: id, Status: raftfsm.NodeRebooting, Reason: "reboot requested", Reboot: true})
	return err
}

// PutUser adds or changes a user (bcrypt at the minimum cost).
func (f *Fake) PutUser(ctx context.Context, req control.UserRequest) error {
	if err := f.write("PutUser", req.Name); err != nil {
		return err
	}
	cmd := &raftfsm.PutUser{At: f.now(), Name: req.Name, Role: req.Role}
	if req.Password != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(req.Password), bcrypt.MinCost)
		if err != nil {
			return fmt.Errorf("%w: password: %v", raftfsm.ErrInvalid, err)
		}
		cmd.PasswordHash = string(hash)
	}
	_, err := f.Apply(cmd)
	return err
}

// DeleteUser removes a user.
func (f *Fake) DeleteUser(ctx context.Context, name string) error {
	if err := f.write("DeleteUser", name); err != nil {
		return err
	}
	_, err := f.Apply(&raftfsm.DeleteUser{At: f.now(), Name: name})
	return err
}

// CreateToken makes and commits an API token.
func (f *Fake) CreateToken(ctx context.Context, req control.TokenRequest, actor string) (control.TokenCreated, error) {
	if err := f.write("CreateToken", req.Name); err != nil {
		return control.TokenCreated{}, err
	}
	text, tok, err := raftfsm.MakeAPIToken(req.Name, req.Role, actor)
	if err != nil {
		return control.TokenCreated{}, err
	}
	tok.User = req.User
	at := f.now()
	if _, err := f.Apply(&raftfsm.CreateAPIToken{At: at, Token: tok}); err != nil {
		return control.TokenCreated{}, err
	}
	tok.CreatedAt = at
	return control.TokenCreated{Token: text, Info: control.NewTokenInfo(&tok)}, nil
}

// RevokeToken removes an API token by id or name.
func (f *Fake) RevokeToken(ctx context.Context, ref string) error {
	if err := f.write("RevokeToken", ref); err != nil {
		return err
	}
	var id string
	f.View(func(s *raftfsm.State) {
		if t, ok := s.TokenByRef(ref); ok {
			id = t.ID
		}
	})
	if id == "" {
		return fmt.Errorf("API token %s: %w", ref, raftfsm.ErrNotFound)
	}
	_, err := f.Apply(&raftfsm.RevokeAPIToken{At: f.now(), ID: id})
	return err
}

// RecordTokenUse applies a batch of token uses (any fake may: it is its own leader).
func (f *Fake) RecordTokenUse(ctx context.Context, uses map[string]time.Time) error {
	if err := f.record("RecordTokenUse", len(uses)); err != nil {
		return err
	}
	_, err := f.Apply(&raftfsm.RecordTokenUse{At: f.now(), Uses: uses})
	return err
}

// UpdateSettings seals the tokens and applies the settings.
func (f *Fake) UpdateSettings(ctx context.Context, req control.SettingsRequest) error {
	if err := f.write("UpdateSettings", req); err != nil {
		return err
	}
	cmd := &raftfsm.UpdateSettings{At: f.now(), Domain: req.Domain, UIHost: req.UIHost, Regions: req.Regions,
		DropletSize: req.DropletSize, BaseSnapshot: req.BaseSnapshot, DesiredNodes: req.DesiredNodes, HealthInterval: req.HealthInterval,
		DeadNodeGrace: req.DeadNodeGrace, Backup: req.Backup}
	if req.EgressAllow != nil {
		if _, err := f.Apply(&raftfsm.SetEgressAllow{At: f.now(), Ranges: *req.EgressAllow}); err != nil {
			return err
		}
	}
	for _, t := range []struct {
		label string
		plain *string
		dst   **raftfsm.Sealed
	}{{raftfsm.LabelDOToken, req.DOToken, &cmd.DOToken}, {raftfsm.LabelCFToken, req.CFToken, &cmd.CFToken}} {
		if t.plain == nil {
			continue
		}
		v, err := raftfsm.Seal(f.aead, t.label, []byte(*t.plain))
		if err != nil {
			return err
		}
		*t.dst = &v
	}
	_, err := f.Apply(cmd)
	return err
}

// PutWebhook adds or replaces a webhook.
func (f *Fake) PutWebhook(ctx context.Context, w raftfsm.Webhook) error {
	if err := f.write("PutWebhook", w); err != nil {
		return err
	}
	if w.Format == "" {
		w.Format = raftfsm.WebhookGeneric
	}
	if err := raftfsm.SealWebhookURL(f.aead, &w); err != nil {
		return err
	}
	_, err := f.Apply(&raftfsm.PutSealedWebhook{At: f.now(), Webhook: w})
	return err
}

// DeleteWebhook removes a webhook.
func (f *Fake) DeleteWebhook(ctx context.Context, id string) error {
	if err := f.write("DeleteWebhook", id); err != nil {
		return err
	}
	_, err := f.Apply(&raftfsm.DeleteWebhook{At: f.now(), ID: id})
	return err
}

// PutRegistry seals and stores registry credentials.
func (f *Fake) PutRegistry(ctx context.Context, req control.RegistryRequest) error {
	if err := f.write("PutRegistry", req.Registry); err != nil {
		return err
	}
	pw, err := raftfsm.Seal(f.aead, raftfsm.RegistryLabel(req.Registry), []byte(req.Password))
	if err != nil {
		return err
	}
	_, err = f.Apply(&raftfsm.PutRegistry{At: f.now(), Credential: raftfsm.RegistryCredential{Registry: req.Registry, Username: req.Username, Password: pw}})
	return err
}

// DeleteRegistry removes registry credentials.
func (f *Fake) DeleteRegistry(ctx context.Context, registry string) error {
	if err := f.write("DeleteRegistry", registry); err != nil {
		return err
	}
	_, err := f.Apply(&raftfsm.DeleteRegistry{At: f.now(), Registry: registry})
	return err
}

// GossipKeys answers from the fake's keyring (the derived key until a
// rotation), with no members.
func (f *Fake) GossipKeys(ctx context.Context) (control.GossipKeysInfo, error) {
	if err := f.record("GossipKeys", nil); err != nil {
		return control.GossipKeysInfo{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := fmt.Sprintf("%012x", f.gossipRotations+1)
	return control.GossipKeysInfo{Primary: id, Keys: []string{id}, Derived: f.gossipRotations == 0, Members: []control.GossipMember{}}, nil
}

// RotateGossipKey completes a rotation at once: the fake has no mesh to
// wait for.
func (f *Fake) RotateGossipKey(ctx context.Context) (control.GossipKeysInfo, error) {
	if err := f.write("RotateGossipKey", nil); err != nil {
		return control.GossipKeysInfo{}, err
	}
	f.mu.Lock()
	f.gossipRotations++
	f.mu.Unlock()
	return f.GossipKeys(ctx)
}

// PutOriginCert checks the pair (as the agent does), seals the key and
// stores the certificate.
func (f *Fake) PutOriginCert(ctx context.Context, zone, certPEM, keyPEM string) error {
	if err := f.write("PutOriginCert", zone); err != nil {
		return err
	}
	if _, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM)); err != nil {
		return fmt.Errorf("%w: origin certificate of %s: %v", raftfsm.ErrInvalid, zone, err)
	}
	key, err := raftfsm.Seal(f.aead, raftfsm.OriginKeyLabel(zone), []byte(keyPEM))
	if err != nil {
		return err
	}
	_, err = f.Apply(&raftfsm.PutOriginCert{At: f.now(), Cert: raftfsm.OriginCert{Zone: zone, CertPEM: certPEM, Key: key}})
	return err
}

// SetACMEConfig commits the ACME configuration.
func (f *Fake) SetACMEConfig(ctx context.Context, cfg raftfsm.ACMEConfig) error {
	if err := f.write("SetACMEConfig", cfg.Directory); err != nil {
		return err
	}
	_, err := f.Apply(&raftfsm.SetACMEConfig{At: f.now(), Config: cfg})
	return err
}

// DeleteOriginCert removes a zone's certificate.
func (f *Fake) DeleteOriginCert(ctx context.Context, zone string) error {
	if err := f.write("DeleteOriginCert", zone); err != nil {
		return err
	}
	_, err := f.Apply(&raftfsm.DeleteOriginCert{At: f.now(), Zone: zone})
	return err
}

// ExportState exports the deployments, opening secrets when asked.
func (f *Fake) ExportState(ctx context.Context, plainSecrets bool) (raftfsm.ExportDocument, error) {
	if err := f.record("ExportState", plainSecrets); err != nil {
		return raftfsm.ExportDocument{}, err
	}
	var doc raftfsm.ExportDocument
	f.fsm.View(func(s *raftfsm.State) { doc = raftfsm.Export(s, f.now()) })
	if plainSecrets {
		for i, spec := range doc.Services {
			plain, err := raftfsm.OpenSecrets(f.aead, raftfsm.ServiceKey(spec.Workspace, spec.Project, spec.Env, spec.Service), spec)
			if err != nil {
				return doc, err
			}
			if len(plain) > 0 {
				doc.Services[i].Secrets, doc.Services[i].SealedSecrets = plain, nil
			}
		}
		for i, w := range doc.Webhooks {
			u, err := raftfsm.WebhookURL(f.aead, w)
			if err != nil {
				return doc, err
			}
			doc.Webhooks[i].URL, doc.Webhooks[i].SealedURL, doc.Webhooks[i].Short = u, "", ""
		}
		doc.Registries = nil
	} else {
		doc.DropSecrets()
	}
	return doc, nil
}

// ImportState seals plain secrets, places every service round-robin and
// applies the document as one command.
func (f *Fake) ImportState(ctx context.Context, doc raftfsm.ExportDocument) (raftfsm.ImportResult, error) {
	if err := f.write("ImportState", len(doc.Services)); err != nil {
		return raftfsm.ImportResult{}, err
	}
	if err := doc.Validate(); err != nil {
		return raftfsm.ImportResult{}, err
	}
	cmd := &raftfsm.ImportState{At: f.now(), Placements: map[string][]raftfsm.Assignment{}, DeployIDs: map[string]string{}}
	var active []string
	f.fsm.View(func(s *raftfsm.State) {
		for _, id := range raftfsm.SortedKeys(s.Nodes) {
			if s.Nodes[id].Status == raftfsm.NodeActive {
				active = append(active, id)
			}
		}
	})
	if len(active) == 0 {
		return raftfsm.ImportResult{}, fmt.Errorf("%w: no active node", raftfsm.ErrConflict)
	}
	for i := range doc.Services {
		spec := doc.Services[i].Clone()
		spec.Normalize()
		key := raftfsm.ServiceKey(spec.Workspace, spec.Project, spec.Env, spec.Service)
		if err := raftfsm.SealSecrets(f.aead, key, &spec); err != nil {
			return raftfsm.ImportResult{}, err
		}
		var placement []raftfsm.Assignment
		for slot := range spec.Replicas {
			node := active[slot%len(active)]
			if len(spec.Nodes) > 0 {
				node = spec.Nodes[slot]
			}
			placement = append(placement, raftfsm.Assignment{Slot: slot, Node: node})
		}
		doc.Services[i] = spec
		cmd.Placements[key] = placement
		cmd.DeployIDs[key] = fmt.Sprintf("imp-%d", f.nextSeq())
	}
	doc.Webhooks = slices.Clone(doc.Webhooks)
	for i := range doc.Webhooks {
		if doc.Webhooks[i].SealedURL == "" {
			if err := raftfsm.SealWebhookURL(f.aead, &doc.Webhooks[i]); err != nil {
				return raftfsm.ImportResult{}, err
			}
		}
	}
	cmd.Document = doc
	v, err := f.Apply(cmd)
	if err != nil {
		return raftfsm.ImportResult{}, err
	}
	return v.(raftfsm.ImportResult), nil
}

// CreateSnapshot records a custom snapshot as building.
func (f *Fake) CreateSnapshot(ctx context.Context, req control.SnapshotRequest) error {
	if err := f.write("CreateSnapshot", req); err != nil {
		return err
	}
	_, err := f.Apply(&raftfsm.PutSnapshot{At: f.now(), Snapshot: raftfsm.Snapshot{Name: req.Name, Kind: raftfsm.SnapshotCustom,
		Status: raftfsm.SnapshotBuilding, WantRegions: req.Regions, SourceNode: f.nodeID}})
	return err
}

// Commit applies an agent report; other command types are refused.
func (f *Fake) Commit(ctx context.Context, cmd raftfsm.Command) (any, error) {
	if err := f.write("Commit", cmd.Type().String()); err != nil {
		return nil, err
	}
	switch cmd.Type() {
	case raftfsm.CmdReportInstances, raftfsm.CmdReportHealth, raftfsm.CmdRecordCronRun, raftfsm.CmdPutBuildContext, raftfsm.CmdAppendEvent:
	default:
		return nil, fmt.Errorf("%w: %s is not an agent report", raftfsm.ErrInvalid, cmd.Type())
	}
	return f.Apply(cmd)
}

// ContainerHealth answers for containers set with SetHealth.
func (f *Fake) ContainerHealth(ctx context.Context, name string, port int, since time.Time) (control.HealthAnswer, error) {
	if err := f.record("ContainerHealth", name); err != nil {
		return control.HealthAnswer{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.health[name]
	if !ok {
		return control.HealthAnswer{}, fmt.Errorf("container %s: %w", name, control.ErrNotLocal)
	}
	return a, nil
}

// ContainerLogs writes the log set with SetLogs; with Follow it goes on
// with what AppendLogs adds until CloseLogs or ctx ends.
func (f *Fake) ContainerLogs(ctx context.Context, name string, opts control.LogOptions, w io.Writer) error {
	if err := f.record("ContainerLogs", name); err != nil {
		return err
	}
	f.mu.Lock()
	l, ok := f.logs[name]
	if !ok {
		f.mu.Unlock()
		return fmt.Errorf("container %s: %w", name, control.ErrNotLocal)
	}
	data, sent, closed, changed := slices.Clone(l.data), len(l.data), l.closed, l.changed
	f.mu.Unlock()
	if opts.Tail > 0 {
		lines := strings.SplitAfter(string(data), "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		data = []byte(strings.Join(lines[max(0, len(lines)-opts.Tail):], ""))
	}
	if _, err := w.Write(data); err != nil || !opts.Follow {
		return err
	}
	for !closed {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
		f.mu.Lock()
		more := slices.Clone(l.data[sent:])
		sent, closed, changed = len(l.data), l.closed, l.changed
		f.mu.Unlock()
		if len(more) > 0 {
			if _, err := w.Write(more); err != nil {
				return err
			}
		}
	}
	return nil
}

// ProbeAddress fails with the error set by SetProbeError.
func (f *Fake) ProbeAddress(ctx context.Context, addr, path string) error {
	if err := f.record("ProbeAddress", addr+path); err != nil {
		return err
	}
	if !strings.Contains(addr, ":") {
		return fmt.Errorf("%w: probe address %q", raftfsm.ErrInvalid, addr)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.probeErr
}

// AgentLogs returns the lines added with AddAgentLog.
func (f *Fake) AgentLogs(since time.Time, limit int) []control.LogEntry {
	_ = f.record("AgentLogs", limit)
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []control.LogEntry
	for _, e := range f.agentLogs {
		if !e.Time.Before(since) {
			out = append(out, e)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}

// StoreContext keeps an upload by its sha256 and records this node as holder.
func (f *Fake) StoreContext(ctx context.Context, r io.Reader) (control.ContextInfo, error) {
	if err := f.record("StoreContext", nil); err != nil {
		return control.ContextInfo{}, err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return control.ContextInfo{}, fmt.Errorf("%w: build context: %v", raftfsm.ErrInvalid, err)
	}
	if len(data) == 0 {
		return control.ContextInfo{}, fmt.Errorf("%w: build context is empty", raftfsm.ErrInvalid)
	}
	sum := sha256.Sum256(data)
	info := control.ContextInfo{Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(data))}
	f.mu.Lock()
	f.contexts[info.Digest] = data
	f.mu.Unlock()
	if _, err := f.Apply(&raftfsm.PutBuildContext{At: f.now(), Digest: info.Digest, Size: info.Size, Node: f.nodeID}); err != nil {
		return info, err
	}
	return info, nil
}

// OpenContext opens an upload kept by StoreContext.
func (f *Fake) OpenContext(digest string) (io.ReadCloser, int64, error) {
	_ = f.record("OpenContext", digest)
	f.mu.Lock()
	defer f.mu.Unlock()
	data, ok := f.contexts[digest]
	if !ok {
		return nil, 0, fmt.Errorf("build context %s: %w", digest, raftfsm.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(data)), int64(len(data)), nil
}

// Stats returns fixed figures.
func (f *Fake) Stats(ctx context.Context) (control.NodeStats, error) {
	if err := f.record("Stats", nil); err != nil {
		return control.NodeStats{}, err
	}
	return control.NodeStats{Node: f.nodeID, CPUPercent: 12.5, MemUsedBytes: 1 << 30, MemTotalBytes: 4 << 30, Containers: 3, Load1: 0.5}, nil
}

// SelfSignedPair makes a self-signed certificate for names (the first is its
// common name), valid for a day, and its key, both PEM encoded: an origin
// certificate for tests.
func SelfSignedPair(names ...string) (certPEM, keyPEM string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})), nil
}
