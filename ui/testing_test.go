package ui

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode) // no route listing on every test server
	os.Exit(m.Run())
}

const (
	testWS       = "9fe5e6"
	adminName    = "admin"
	adminPass    = "admin-password-1"
	sampleImage  = "local/sample:latest"
	testUITimout = 5 * time.Second
)

var testKey = bytes.Repeat([]byte{0x42}, 32)

// fakeNode is an in-memory Node over a real raftfsm.FSM: every action goes
// through real commands, the way the agent's do, so the state the pages show
// is the state the commands make. Tests drive the reconciler's side (phases,
// health) with more real commands.
type fakeNode struct {
	t    testing.TB
	fsm  *raftfsm.FSM
	aead cipher.AEAD
	id   string

	mu        sync.Mutex
	index     uint64
	leader    string
	deploys   []control.DeployRequest
	calls     []string
	agentLogs []control.LogEntry
	// peerLogs are other nodes' own logs; a node without an entry does not answer.
	peerLogs map[string][]control.LogEntry
	stats    control.NodeStats
	contexts map[string][]byte
	// failNext makes the next action return this error.
	failNext error
	// logLines feeds followed log streams.
	logLines chan string
}

// newFake builds a cluster of three active nodes; node-1 is this node and
// leads. local sets local mode (no cloud onboarding).
func newFake(t testing.TB, local bool) *fakeNode {
	t.Helper()
	block, err := aes.NewCipher(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeNode{t: t, fsm: raftfsm.NewFSM(nil), aead: aead, id: "node-1", leader: "node-1",
		contexts: map[string][]byte{}, logLines: make(chan string, 1000),
		stats: control.NodeStats{Node: "node-1", CPUPercent: 23.5, MemUsedBytes: 700 << 20, MemTotalBytes: 2 << 30, Containers: 2, Load1: 0.42}}
	hash, err := bcrypt.GenerateFromPassword([]byte(adminPass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	f.must(&raftfsm.InitCluster{At: f.now(), ClusterID: "c0ffee", ClusterName: "demo", LocalMode: local, AdminName: adminName,
		AdminPasswordHash: string(hash), DefaultWorkspaceID: testWS})
	regions := []string{"nyc3", "fra1"}
	f.must(&raftfsm.UpdateSettings{At: f.now(), Regions: regions})
	for i := 1; i <= 3; i++ {
		f.must(&raftfsm.UpsertNode{At: f.now(), Node: raftfsm.Node{ID: fmt.Sprintf("node-%d", i), Region: regions[(i-1)%2],
			DropletID: 1000 + i, PublicIP: fmt.Sprintf("203.0.113.%d", i), PrivateIP: fmt.Sprintf("10.10.0.%d", i),
			API: fmt.Sprintf("127.0.0.%d:9999", i+1), UI: fmt.Sprintf("127.0.0.%d:8080", i+1), Version: "test"}})
	}
	f.agentLogs = []control.LogEntry{
		{Time: f.now(), Level: "INFO", Message: "agent started", Attrs: map[string]any{"node": "node-1"}},
		{Time: f.now(), Level: "WARN", Message: "slow raft commit", Attrs: map[string]any{"ms": 120}},
	}
	return f
}

func (f *fakeNode) now() time.Time { return time.Now().UTC() }

// apply applies a command at the next raft index.
func (f *fakeNode) apply(c raftfsm.Command) (any, error) {
	f.mu.Lock()
	f.index++
	idx := f.index
	f.mu.Unlock()
	return f.fsm.ApplyCommand(idx, c)
}

func (f *fakeNode) must(c raftfsm.Command) any {
	f.t.Helper()
	v, err := f.apply(c)
	if err != nil {
		f.t.Fatalf("apply %s: %v", c.Type(), err)
	}
	return v
}

func (f *fakeNode) record(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	if err := f.failNext; err != nil {
		f.failNext = nil
		return err
	}
	return nil
}

func (f *fakeNode) callList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeNode) deployList() []control.DeployRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.deploys)
}

func (f *fakeNode) setLeader(id string) {
	f.mu.Lock()
	f.leader = id
	f.mu.Unlock()
}

func (f *fakeNode) NodeID() string                 { return f.id }
func (f *fakeNode) Version() string                { return "test" }
func (f *fakeNode) View(fn func(s *raftfsm.State)) { f.fsm.View(fn) }
func (f *fakeNode) Changed() <-chan struct{}       { return f.fsm.Changed() }

func (f *fakeNode) IsLeader() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader == f.id
}

func (f *fakeNode) Leader() (string, string) {
	f.mu.Lock()
	id := f.leader
	f.mu.Unlock()
	var api string
	f.View(func(s *raftfsm.State) {
		if n, ok := s.Nodes[id]; ok {
			api = n.API
		}
	})
	return id, api
}

func (f *fakeNode) Cluster(ctx context.Context) (control.ClusterInfo, error) {
	id, api := f.Leader()
	info := control.ClusterInfo{Leader: control.LeaderInfo{ID: id, API: api}, Term: 3}
	f.View(func(s *raftfsm.State) {
		for _, nid := range raftfsm.SortedKeys(s.Nodes) {
			n := s.Nodes[nid]
			info.Members = append(info.Members, control.MemberInfo{ID: nid, Status: "alive", Raft: "voter", API: n.API, UI: n.UI,
				Region: n.Region, Version: "test", Since: n.JoinedAt})
		}
	})
	return info, nil
}

// resolve turns a service name or key into a key, as the agent does.
func (f *fakeNode) resolve(name string) (string, error) {
	n, err := raftfsm.ParseServiceName(name)
	if err != nil {
		return "", err
	}
	var key string
	f.View(func(s *raftfsm.State) {
		if ws := s.ResolveWorkspace(n.Workspace); ws != nil {
			key = raftfsm.ServiceKey(ws.ID, n.Project, n.Env, n.Service)
			if _, ok := s.Services[key]; !ok {
				key = ""
			}
		}
	})
	if key == "" {
		return "", fmt.Errorf("service %s: %w", name, raftfsm.ErrNotFound)
	}
	return key, nil
}

func (f *fakeNode) Deploy(ctx context.Context, req control.DeployRequest) (raftfsm.DeployResult, error) {
	if err := f.record("deploy"); err != nil {
		return raftfsm.DeployResult{}, err
	}
	spec := req.Spec.Clone()
	spec.Normalize()
	if err := spec.Validate(); err != nil {
		return raftfsm.DeployResult{}, err
	}
	f.mu.Lock()
	f.deploys = append(f.deploys, req)
	n := len(f.deploys)
	f.mu.Unlock()
	cmd := &raftfsm.DeployService{At: f.now(), DeployID: fmt.Sprintf("dep-%d", n), Actor: req.Actor, ExpectGeneration: req.ExpectGeneration}
	var err error
	f.View(func(s *raftfsm.State) {
		if ws := s.ResolveWorkspace(spec.Workspace); ws != nil {
			cmd.WorkspaceID = ws.ID
		} else {
			cmd.WorkspaceID, cmd.WorkspaceName = fmt.Sprintf("a%05x", n), spec.Workspace
		}
		key := raftfsm.ServiceKey(cmd.WorkspaceID, spec.Project, spec.Env, spec.Service)
		if spec.Build != "" {
			if _, ok := s.Contexts[spec.Build]; !ok {
				err = fmt.Errorf("%w: build context %s was not uploaded", raftfsm.ErrInvalid, spec.Build)
				return
			}
		}
		if prev, ok := s.Services[key]; ok && spec.Secrets == nil && spec.SealedSecrets == nil {
			spec.SealedSecrets = prev.Spec.Clone().SealedSecrets
		}
		if err = raftfsm.SealSecrets(f.aead, key, &spec); err != nil {
			return
		}
		nodes := spec.Nodes
		if len(nodes) == 0 {
			for _, id := range raftfsm.SortedKeys(s.Nodes) {
				if s.Nodes[id].Status == raftfsm.NodeActive {
					nodes = append(nodes, id)
				}
			}
		}
		if len(nodes) == 0 {
			err = fmt.Errorf("%w: no active node", raftfsm.ErrConflict)
			return
		}
		for slot := 0; slot < spec.Replicas; slot++ {
			cmd.Placement = append(cmd.Placement, raftfsm.Assignment{Slot: slot, Node: nodes[slot%len(nodes)]})
		}
	})
	if err != nil {
		return raftfsm.DeployResult{}, err
	}
	cmd.Spec = spec
	v, err := f.apply(cmd)
	if err != nil {
		return raftfsm.DeployResult{}, err
	}
	return v.(raftfsm.DeployResult), nil
}

func (f *fakeNode) Undeploy(ctx context.Context, service, actor string) error {
	if err := f.record("undeploy " + service); err != nil {
		return err
	}
	key, err := f.resolve(service)
	if err != nil {
		return err
	}
	_, err = f.apply(&raftfsm.UndeployService{At: f.now(), Service: key, Actor: actor})
	return err
}

func (f *fakeNode) RestartService(ctx context.Context, service, actor string) error {
	if err := f.record("restart " + service); err != nil {
		return err
	}
	key, err := f.resolve(service)
	if err != nil {
		return err
	}
	var ids []string
	f.View(func(s *raftfsm.State) {
		for _, in := range s.ServiceInstances(key) {
			ids = append(ids, in.ID)
		}
	})
	for _, id := range ids {
		if _, err := f.apply(&raftfsm.RestartInstance{At: f.now(), Instance: id, Reason: "restart requested by " + actor}); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeNode) AddNodes(ctx context.Context, req control.AddNodesRequest) ([]string, error) {
	if err := f.record(fmt.Sprintf("add %d %s", req.Count, req.Region)); err != nil {
		return nil, err
	}
	if req.Count < 1 || req.Count > 50 {
		return nil, fmt.Errorf("%w: count %d: want 1 to 50", raftfsm.ErrInvalid, req.Count)
	}
	var ids []string
	var seq int
	f.View(func(s *raftfsm.State) { seq = max(s.Cloud.NextNodeSeq, len(s.Nodes)) })
	for i := 0; i < req.Count; i++ {
		seq++
		id := fmt.Sprintf("node-%d", seq)
		region := req.Region
		if region == "" {
			region = "nyc3"
		}
		if _, err := f.apply(&raftfsm.RecordIntent{At: f.now(), Intent: raftfsm.Intent{ID: "int-" + id, Kind: raftfsm.IntentCreateDroplet,
			Target: "dm-" + id, Params: map[string]string{"node": id, "region": region}}}); err != nil {
			return ids, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func (f *fakeNode) RemoveNode(ctx context.Context, id string) error {
	if err := f.record("remove " + id); err != nil {
		return err
	}
	_, err := f.apply(&raftfsm.SetNodeStatus{At: f.now(), Node: id, Status: raftfsm.NodeDraining, Reason: "removal requested"})
	return err
}

func (f *fakeNode) RebootNode(ctx context.Context, id string) error {
	if err := f.record("reboot " + id); err != nil {
		return err
	}
	_, err := f.apply(&raftfsm.SetNodeStatus{At: f.now(), Node: id, Status: raftfsm.NodeRebooting, Reason: "reboot requested", Reboot: true})
	return err
}

func (f *fakeNode) PutUser(ctx context.Context, req control.UserRequest) error {
	if err := f.record("put user " + req.Name); err != nil {
		return err
	}
	if err := raftfsm.ValidateUserName(req.Name); err != nil {
		return err
	}
	if !req.Role.Valid() {
		return fmt.Errorf("%w: role %q: want admin, deployer or viewer", raftfsm.ErrInvalid, req.Role)
	}
	cmd := &raftfsm.PutUser{At: f.now(), Name: req.Name, Role: req.Role}
	if req.Password != "" {
		if len(req.Password) < 8 || len(req.Password) > 72 {
			return fmt.Errorf("%w: password: 8 to 72 characters", raftfsm.ErrInvalid)
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(req.Password), bcrypt.MinCost)
		if err != nil {
			return err
		}
		cmd.PasswordHash = string(hash)
	}
	_, err := f.apply(cmd)
	return err
}

func (f *fakeNode) DeleteUser(ctx context.Context, name string) error {
	if err := f.record("delete user " + name); err != nil {
		return err
	}
	_, err := f.apply(&raftfsm.DeleteUser{At: f.now(), Name: name})
	return err
}

func (f *fakeNode) UpdateSettings(ctx context.Context, req control.SettingsRequest) error {
	if err := f.record("settings"); err != nil {
		return err
	}
	cmd := &raftfsm.UpdateSettings{At: f.now(), Domain: req.Domain, UIHost: req.UIHost, Regions: req.Regions,
		DropletSize: req.DropletSize, DesiredNodes: req.DesiredNodes, HealthInterval: req.HealthInterval}
	seal := func(label string, plain *string) (*raftfsm.Sealed, error) {
		if plain == nil {
			return nil, nil
		}
		if strings.ContainsAny(*plain, " \t\n") || *plain == "" {
			return nil, fmt.Errorf("%w: %s: want a token without spaces", raftfsm.ErrInvalid, label)
		}
		s, err := raftfsm.Seal(f.aead, label, []byte(*plain))
		return &s, err
	}
	var err error
	if cmd.DOToken, err = seal(raftfsm.LabelDOToken, req.DOToken); err != nil {
		return err
	}
	if cmd.CFToken, err = seal(raftfsm.LabelCFToken, req.CFToken); err != nil {
		return err
	}
	_, err = f.apply(cmd)
	return err
}

func (f *fakeNode) CreateSnapshot(ctx context.Context, req control.SnapshotRequest) error {
	if err := f.record("snapshot " + req.Name); err != nil {
		return err
	}
	if err := raftfsm.ValidateSnapshotName(req.Name); err != nil {
		return err
	}
	if err := raftfsm.ValidateContextDigest(req.Context); err != nil {
		return err
	}
	_, err := f.apply(&raftfsm.PutSnapshot{At: f.now(), Snapshot: raftfsm.Snapshot{Name: req.Name, Kind: raftfsm.SnapshotCustom,
		Status: raftfsm.SnapshotBuilding, Phase: "building image", Progress: 5, WantRegions: req.Regions}})
	return err
}

func (f *fakeNode) PutWebhook(ctx context.Context, w raftfsm.Webhook) error {
	if err := f.record("put webhook " + w.ID); err != nil {
		return err
	}
	if w.Format == "" {
		w.Format = raftfsm.WebhookGeneric
	}
	_, err := f.apply(&raftfsm.PutWebhook{At: f.now(), Webhook: w})
	return err
}

func (f *fakeNode) DeleteWebhook(ctx context.Context, id string) error {
	if err := f.record("delete webhook " + id); err != nil {
		return err
	}
	_, err := f.apply(&raftfsm.DeleteWebhook{At: f.now(), ID: id})
	return err
}

// ContainerLogs writes the tail lines, then (following) whatever the test
// sends on logLines until the stream's context ends.
func (f *fakeNode) ContainerLogs(ctx context.Context, name string, opts control.LogOptions, w io.Writer) error {
	for i := 1; i <= min(opts.Tail, 3); i++ {
		if _, err := fmt.Fprintf(w, "%s old line %d\n", name, i); err != nil {
			return err
		}
	}
	if !opts.Follow {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case line := <-f.logLines:
			if _, err := io.WriteString(w, line+"\n"); err != nil {
				return err
			}
		}
	}
}

func (f *fakeNode) AgentLogs(since time.Time, limit int) []control.LogEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.agentLogs)
}

// PeerAgentLogs returns this node's log, or another node's from peerLogs
// (an error for a node that has none there: it did not answer).
func (f *fakeNode) PeerAgentLogs(ctx context.Context, nodeID string, since time.Time, limit int) ([]control.LogEntry, error) {
	if nodeID == f.id {
		return f.AgentLogs(since, limit), nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	lines, ok := f.peerLogs[nodeID]
	if !ok {
		return nil, fmt.Errorf("the agent log of node %s: %w", nodeID, errBoom)
	}
	return slices.Clone(lines), nil
}

func (f *fakeNode) StoreContext(ctx context.Context, r io.Reader) (control.ContextInfo, error) {
	if err := f.record("store context"); err != nil {
		return control.ContextInfo{}, err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return control.ContextInfo{}, err
	}
	if len(data) == 0 {
		return control.ContextInfo{}, fmt.Errorf("%w: empty build context", raftfsm.ErrInvalid)
	}
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	f.mu.Lock()
	f.contexts[digest] = data
	f.mu.Unlock()
	if _, err := f.apply(&raftfsm.PutBuildContext{At: f.now(), Digest: digest, Size: int64(len(data)), Node: f.id}); err != nil {
		return control.ContextInfo{}, err
	}
	return control.ContextInfo{Digest: digest, Size: int64(len(data))}, nil
}

func (f *fakeNode) Stats(ctx context.Context) (control.NodeStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats, nil
}

// The reconciler's side, for tests.

// instances returns the ids and nodes of a service's instances.
func (f *fakeNode) instances(key string) []raftfsm.Instance {
	var out []raftfsm.Instance
	f.View(func(s *raftfsm.State) {
		for _, in := range s.ServiceInstances(key) {
			out = append(out, *in)
		}
	})
	return out
}

// advance moves every instance of the service to generation gen (the
// roll-out controller's step).
func (f *fakeNode) advance(key, deployID string, gen int64) {
	f.t.Helper()
	var ids []string
	for _, in := range f.instances(key) {
		ids = append(ids, in.ID)
	}
	f.must(&raftfsm.AdvanceRollout{At: f.now(), DeployID: deployID, Service: key, Generation: gen, Instances: ids})
}

// reportPhase reports every instance of the service at a phase, as its
// node's agent would.
func (f *fakeNode) reportPhase(key string, gen int64, phase string) {
	f.t.Helper()
	for _, in := range f.instances(key) {
		container := strings.ReplaceAll(strings.TrimPrefix(key, ""), "/", "_") + fmt.Sprintf("_%d", in.Slot)
		f.must(&raftfsm.ReportInstances{At: f.now(), Node: in.Node, Reports: []raftfsm.InstanceReport{{Instance: in.ID, Generation: gen,
			ContainerID: "c" + fmt.Sprint(in.Slot), Container: container, State: "running", Phase: phase}}})
	}
}

// reportHealth reports every instance of the service with a health status.
func (f *fakeNode) reportHealth(key, status string, at time.Time) {
	f.t.Helper()
	for _, in := range f.instances(key) {
		f.must(&raftfsm.ReportHealth{At: at, Node: in.Node, Results: []raftfsm.HealthReport{{Instance: in.ID, Status: status, CheckedAt: at}}})
	}
}

// testUI is a UI handler over a fake on an httptest server.
type testUI struct {
	t    testing.TB
	fake *fakeNode
	srv  *server
	ts   *httptest.Server
	logs *bytes.Buffer
}

func newTestUI(t testing.TB, fake *fakeNode, cfg Config) *testUI {
	t.Helper()
	return newTestUIOver(t, fake, fake, cfg)
}

// newTestUIOver serves node (a fake or a wrapper of one).
func newTestUIOver(t testing.TB, fake *fakeNode, node Node, cfg Config) *testUI {
	t.Helper()
	logs := &bytes.Buffer{}
	s, err := newServer(Options{Node: node, SessionKey: testKey, Config: cfg,
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return &testUI{t: t, fake: fake, srv: s, ts: newHTTPTest(t, s), logs: logs}
}

func newHTTPTest(t testing.TB, s *server) *httptest.Server {
	ts := httptest.NewServer(s.routes())
	t.Cleanup(ts.Close)
	return ts
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// client is a browser-like HTTP client with a cookie jar that does not
// follow redirects, so tests see them.
type client struct {
	t    testing.TB
	base string
	hc   *http.Client
	ip   string
	// header is added to every request (X-Real-IP, as the local edge sets it).
	header http.Header
}

func (u *testUI) client() *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		u.t.Fatal(err)
	}
	return &client{t: u.t, base: u.ts.URL, hc: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// response is a read answer.
type response struct {
	Status int
	Header http.Header
	Body   string
}

func (r response) location() string { return r.Header.Get("Location") }

func (c *client) do(req *http.Request) response {
	c.t.Helper()
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read: %v", req.Method, req.URL, err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: string(body)}
}

func (c *client) get(path string) response {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.do(req)
}

func (c *client) post(path string, form url.Values) response {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// postMultipart sends a multipart form; files maps a field to (name, content).
func (c *client) postMultipart(path string, form url.Values, files map[string][2]string) response {
	c.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, vs := range form {
		for _, v := range vs {
			if err := mw.WriteField(k, v); err != nil {
				c.t.Fatal(err)
			}
		}
	}
	for field, f := range files {
		w, err := mw.CreateFormFile(field, f[0])
		if err != nil {
			c.t.Fatal(err)
		}
		if _, err := io.WriteString(w, f[1]); err != nil {
			c.t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		c.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, c.base+path, &buf)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return c.do(req)
}

var csrfPattern = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrfOf finds the first CSRF token in a page.
func csrfOf(t testing.TB, body string) string {
	t.Helper()
	m := csrfPattern.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf_token in the page:\n%s", body)
	}
	return m[1]
}

// login signs in and fails the test unless it lands on want.
func (c *client) login(user, pass string) response {
	c.t.Helper()
	page := c.get("/login")
	if page.Status != http.StatusOK {
		c.t.Fatalf("GET /login: %d", page.Status)
	}
	return c.post("/login", url.Values{"username": {user}, "password": {pass}, "csrf_token": {csrfOf(c.t, page.Body)}})
}

func (c *client) mustLogin(user, pass string) {
	c.t.Helper()
	if r := c.login(user, pass); r.Status != http.StatusSeeOther {
		c.t.Fatalf("sign in as %s: status %d, want 303:\n%s", user, r.Status, r.Body)
	}
}

// token returns the CSRF token of the signed-in session (from a page).
func (c *client) token() string {
	c.t.Helper()
	r := c.get("/")
	if r.Status != http.StatusOK {
		c.t.Fatalf("GET /: %d", r.Status)
	}
	return csrfOf(c.t, r.Body)
}

// stateJSON is the state without its index, to check a refused action
// changed nothing.
func (f *fakeNode) stateFingerprint() string {
	st := f.fsm.Clone()
	st.Index = 0
	var b strings.Builder
	fmt.Fprintf(&b, "%d services %d users %d instances %d deploys %d events %+v", len(st.Services), len(st.Users), len(st.Instances),
		len(st.Deploys), len(st.Events.Items), st.Settings)
	return b.String()
}

var errBoom = errors.New("the droplet API is down")

// sampleForm is the deploy form for the sample service.
func sampleForm(token string) url.Values {
	return url.Values{"csrf_token": {token}, "workspace": {"default"}, "project": {"sample"}, "env": {"prod"}, "service": {"web"},
		"kind": {"service"}, "image": {sampleImage}, "port": {"8080"}, "hosts": {"web.example.test"}, "replicas": {"2"},
		"health_path": {"/health"}, "vars": {"LOG_LEVEL=info\nGREETING=hello world"}, "secrets": {"API_KEY=s3cret"}}
}

const sampleKey = testWS + "/sample/prod/web"

// controlDeploy wraps a spec in a deploy request by the admin.
func controlDeploy(spec raftfsm.ServiceSpec) control.DeployRequest {
	return control.DeployRequest{Spec: spec, Actor: adminName}
}
