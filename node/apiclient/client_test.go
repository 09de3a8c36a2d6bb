package apiclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/api"
	"github.com/dropmesh/dropmesh/node/api/apitest"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

func TestNewRefusesBadAddresses(t *testing.T) {
	for _, addrs := range [][]string{nil, {""}, {"ftp://x:1"}, {"http://"}, {"http://a:1/?q=1"}} {
		if _, err := New(Config{Addrs: addrs}); err == nil {
			t.Errorf("%q accepted", addrs)
		}
	}
	c, err := New(Config{Addrs: []string{"10.0.0.2:9999", "https://agent.example.com/"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Addrs(); got[0] != "https://10.0.0.2:9999" || got[1] != "https://agent.example.com" {
		t.Fatalf("addrs %v", got)
	}
}

func TestFailsOverToTheNextAgent(t *testing.T) {
	srv, hits := serve(t, apitest.NewFake("node-1"))
	c := client(t, deadAddr(t), hostPort(srv))
	nodes, err := c.Nodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 3 || hits.Load() != 1 {
		t.Fatalf("nodes %d, hits %d", len(nodes), hits.Load())
	}
	// A write goes straight to the agent that answered last.
	if _, err := c.CreateWorkspace(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 2 {
		t.Fatalf("hits %d", hits.Load())
	}
}

func TestWriteThroughFollowerAndFailoverWhenItsLeaderIsDown(t *testing.T) {
	leader, follower := apitest.NewFake("node-1"), apitest.NewFake("node-2")
	ls, _ := serve(t, leader)
	follower.SetLeader(false, "node-1", hostPort(ls))
	fs, _ := serve(t, follower)

	c := client(t, hostPort(fs))
	res, err := c.Deploy(t.Context(), []byte(webSpec), 0)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	leader.View(func(s *raftfsm.State) { _, found = s.Services[res.Service] })
	if !found {
		t.Fatal("the write did not reach the leader")
	}

	// The follower's leader is gone: no_leader, retried, then given up.
	follower.SetLeader(false, "node-9", deadAddr(t))
	before := follower.StateJSON()
	start := time.Now()
	err = c.Undeploy(t.Context(), "shop/prod/web")
	if Code(err) != control.CodeNoLeader {
		t.Fatalf("err %v, want no_leader", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("retried past RetryFor")
	}
	if follower.StateJSON() != before {
		t.Fatal("the follower's state changed")
	}

	// With the leader's own address in the list, the client gets through.
	c2 := client(t, hostPort(fs), hostPort(ls))
	if err := c2.Undeploy(t.Context(), "shop/prod/web"); err != nil {
		t.Fatal(err)
	}
	leader.View(func(s *raftfsm.State) { _, found = s.Services[res.Service] })
	if found {
		t.Fatal("undeploy did not land")
	}
}

func TestAPIErrors(t *testing.T) {
	srv, _ := serve(t, apitest.NewFake("node-1"))
	c := client(t, hostPort(srv))
	_, err := c.Service(t.Context(), "shop/prod/nothing")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound || !IsNotFound(err) || !strings.Contains(err.Error(), "nothing") {
		t.Fatalf("err %#v", err)
	}
	_, err = c.Deploy(t.Context(), []byte(webSpec+"colour: red\n"), 0)
	if Code(err) != control.CodeInvalid || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("err %v", err)
	}
	if _, err := c.Service(t.Context(), "not a name"); err == nil || !errors.Is(err, raftfsm.ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}
	bad, _ := New(Config{Addrs: []string{hostPort(srv)}, APIKey: "wrong", CACert: testCA().CertPEM()})
	if _, err := bad.Nodes(t.Context()); Code(err) != control.CodeUnauthorized {
		t.Fatalf("wrong key: %v", err)
	}
}

// hangUp accepts a request and closes the connection without an answer.
func hangUp(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := newTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestWritesAreNotRetriedWhenTheyMayHaveArrived(t *testing.T) {
	srv, n := hangUp(t)
	c := client(t, hostPort(srv))
	if err := c.RebootNode(t.Context(), "node-1"); err == nil {
		t.Fatal("no error")
	}
	if n.Load() != 1 {
		t.Fatalf("a write that may have arrived was sent %d times", n.Load())
	}
	n.Store(0)
	if _, err := c.Nodes(t.Context()); !errors.Is(err, ErrNoAgent) {
		t.Fatalf("read: %v", err)
	}
	if n.Load() < 2 {
		t.Fatalf("a read was tried %d times", n.Load())
	}
}

func TestRetriesAfter503AndResendsTheUpload(t *testing.T) {
	fake := apitest.NewFake("node-1")
	real, _ := serve(t, fake)
	h := real.Config.Handler
	var first atomic.Bool
	flaky := newTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(false, true) {
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 3))
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"no_leader","message":"electing"}`))
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(flaky.Close)
	c := client(t, hostPort(flaky))
	payload := bytes.Repeat([]byte("context bytes "), 1000)
	info, err := c.UploadContext(t.Context(), bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(payload)) {
		t.Fatalf("upload arrived with %d bytes, sent %d", info.Size, len(payload))
	}
	rc, err := c.FetchContext(t.Context(), info.Digest)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, payload) {
		t.Fatal("fetched context differs")
	}
}

func TestBlockingReadWithIndex(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv, _ := serve(t, fake)
	c := client(t, hostPort(srv))
	var m Meta
	if _, err := c.Services(t.Context(), "", StoreMeta(&m)); err != nil {
		t.Fatal(err)
	}
	if m.Index != fake.Index() {
		t.Fatalf("meta index %d, state %d", m.Index, fake.Index())
	}
	type result struct {
		services []raftfsm.Service
		meta     Meta
		err      error
	}
	done := make(chan result, 1)
	go func() {
		var m2 Meta
		s, err := c.Services(context.Background(), "", WaitIndex(m.Index, 20*time.Second), StoreMeta(&m2))
		done <- result{s, m2, err}
	}()
	if _, err := fake.Deploy(t.Context(), control.DeployRequest{Spec: mustSpec(t, webSpec)}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || len(r.services) != 1 || r.meta.Index <= m.Index {
			t.Fatalf("blocking read %+v", r)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the blocking read did not return after the write")
	}
	// With nothing new the read waits out its wait and returns the same index.
	var m3 Meta
	if _, err := c.Nodes(t.Context(), WaitIndex(fake.Index(), 10*time.Millisecond), StoreMeta(&m3)); err != nil || m3.Index != fake.Index() {
		t.Fatalf("timed-out blocking read: %v %+v", err, m3)
	}
}

func TestFollowLogs(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv, _ := serve(t, fake)
	c := client(t, hostPort(srv))
	fake.SetLogs("c1", "one\n")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	rc, err := c.ContainerLogs(ctx, "c1", LogsQuery{Follow: true, Since: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	if l, _ := br.ReadString('\n'); l != "one\n" {
		t.Fatalf("line %q", l)
	}
	fake.AppendLogs("c1", "two\n")
	if l, _ := br.ReadString('\n'); l != "two\n" {
		t.Fatalf("line %q", l)
	}
	fake.CloseLogs("c1")
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("rest %q %v", rest, err)
	}
	if _, err := c.ContainerLogs(ctx, "missing", LogsQuery{}); !IsNotFound(err) {
		t.Fatalf("missing container: %v", err)
	}
}

func TestDeadlineIsSent(t *testing.T) {
	var seen atomic.Value
	srv := newTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Get(control.HeaderTimeout))
		_, _ = w.Write([]byte(`[]`))
	}))
	t.Cleanup(srv.Close)
	c := client(t, hostPort(srv))
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if _, err := c.Nodes(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := time.ParseDuration(seen.Load().(string))
	if err != nil || d <= 0 || d > 3*time.Second {
		t.Fatalf("deadline header %q", seen.Load())
	}
}

// TestEveryMethod calls every typed method once against a fake.
func TestEveryMethod(t *testing.T) {
	fake := apitest.NewFake("node-1")
	srv, _ := serve(t, fake)
	c := client(t, hostPort(srv))
	ctx := t.Context()
	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	p, err := c.Ping(ctx)
	check("ping", err)
	if p.Node != "node-1" {
		t.Fatalf("ping %+v", p)
	}
	_, err = c.Cluster(ctx, Consistent())
	check("cluster", err)
	doc, err := c.OpenAPI(ctx)
	check("openapi", err)
	if doc["openapi"] != api.OpenAPIVersion {
		t.Fatalf("openapi %v", doc["openapi"])
	}
	ids, err := c.AddNodes(ctx, control.AddNodesRequest{Count: 1})
	check("add nodes", err)
	if len(ids) != 1 {
		t.Fatalf("ids %v", ids)
	}
	check("reboot", c.RebootNode(ctx, "node-3"))
	check("remove", c.RemoveNode(ctx, "node-3"))
	ws, err := c.CreateWorkspace(ctx, "demo")
	check("create workspace", err)
	check("project", c.CreateProject(ctx, "demo", "shop"))
	check("env", c.CreateEnvironment(ctx, ws.ID, "shop", "staging"))
	info, err := c.Workspace(ctx, "demo")
	check("workspace", err)
	if len(info.Projects) != 1 {
		t.Fatalf("workspace %+v", info)
	}
	list, err := c.Workspaces(ctx)
	check("workspaces", err)
	if len(list) != 2 {
		t.Fatalf("workspaces %+v", list)
	}
	check("delete workspace", c.DeleteWorkspace(ctx, "demo"))
	res, err := c.DeploySpec(ctx, mustSpec(t, webSpec))
	check("deploy", err)
	_, err = c.Deploy(ctx, []byte(`{"project":"shop","env":"prod","service":"api","image":"redis:7","port":6379}`), 0)
	check("deploy json", err)
	svcs, err := c.Services(ctx, "default")
	check("services", err)
	if len(svcs) != 2 {
		t.Fatalf("services %d", len(svcs))
	}
	d, err := c.Service(ctx, "default/shop/prod/web")
	check("service", err)
	if d.Name != "shop/prod/web" {
		t.Fatalf("detail %+v", d.Name)
	}
	h, err := c.ServiceHealth(ctx, "shop/prod/web")
	check("health", err)
	if len(h.Instances) != 1 && len(h.Instances) != 2 {
		t.Fatalf("health %+v", h)
	}
	deps, err := c.Deploys(ctx, "shop/prod/web")
	check("deploys", err)
	if len(deps) != 1 {
		t.Fatalf("deploys %+v", deps)
	}
	prog, err := c.DeployProgress(ctx, res.DeployID)
	check("progress", err)
	if prog.Deploy.ID != res.DeployID {
		t.Fatalf("progress %+v", prog)
	}
	insts, err := c.Instances(ctx, InstanceFilter{Service: "shop/prod/web"})
	check("instances", err)
	if len(insts) != 2 {
		t.Fatalf("instances %+v", insts)
	}
	fake.SetHealth("c1", control.HealthAnswer{Status: "healthy"})
	ha, err := c.ContainerHealth(ctx, "c1", 8080, time.Now().Add(-time.Minute))
	check("container health", err)
	if ha.Status != "healthy" {
		t.Fatalf("health %+v", ha)
	}
	fake.SetLogs("c1", "a\nb\n")
	rc, err := c.ContainerLogs(ctx, "c1", LogsQuery{Tail: 1})
	check("logs", err)
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "b\n" {
		t.Fatalf("logs %q", b)
	}
	fake.AddAgentLog(control.LogEntry{Time: time.Now(), Level: "INFO", Message: "hi"})
	al, err := c.AgentLogs(ctx, "", time.Now().Add(-time.Hour), 10)
	check("agent logs", err)
	if len(al) != 1 {
		t.Fatalf("agent logs %+v", al)
	}
	_, err = c.AgentStats(ctx, "")
	check("stats", err)
	ev, err := c.Events(ctx, EventQuery{Kind: "deploy.", Service: "shop/prod/web", Limit: 10})
	check("events", err)
	if len(ev) != 1 {
		t.Fatalf("events %+v", ev)
	}
	check("snapshot", c.CreateSnapshot(ctx, control.SnapshotRequest{Name: "snap", Context: "sha256:" + strings.Repeat("d", 64)}))
	snaps, err := c.Snapshots(ctx)
	check("snapshots", err)
	if len(snaps) != 1 {
		t.Fatalf("snapshots %+v", snaps)
	}
	exp, err := c.ExportState(ctx, true)
	check("export", err)
	if len(exp.Services) != 2 || exp.Services[1].Secrets["DB_PASSWORD"] != "s3cret" {
		t.Fatalf("export %+v", exp.Services)
	}
	check("put user", c.PutUser(ctx, control.UserRequest{Name: "ann", Password: "longenough", Role: raftfsm.RoleViewer}))
	users, err := c.Users(ctx)
	check("users", err)
	if len(users) != 2 {
		t.Fatalf("users %+v", users)
	}
	check("delete user", c.DeleteUser(ctx, "ann"))
	domain := "example.com"
	check("settings", c.UpdateSettings(ctx, control.SettingsRequest{Domain: &domain}))
	st, err := c.Settings(ctx)
	check("get settings", err)
	if st.Domain != domain {
		t.Fatalf("settings %+v", st)
	}
	wh, err := c.PutWebhook(ctx, raftfsm.Webhook{URL: "https://hooks.example.com/a"})
	check("webhook", err)
	whs, err := c.Webhooks(ctx)
	check("webhooks", err)
	if len(whs) != 1 {
		t.Fatalf("webhooks %+v", whs)
	}
	check("delete webhook", c.DeleteWebhook(ctx, wh.ID))
	check("registry", c.PutRegistry(ctx, control.RegistryRequest{Registry: "registry.example.com", Username: "u", Password: "p"}))
	regs, err := c.Registries(ctx)
	check("registries", err)
	if len(regs) != 1 {
		t.Fatalf("registries %+v", regs)
	}
	check("delete registry", c.DeleteRegistry(ctx, "registry.example.com"))
	if _, err := c.Commit(ctx, &raftfsm.ReportInstances{At: time.Now().UTC(), Node: "node-1"}); Code(err) != control.CodeForbidden {
		t.Fatalf("a report without a node certificate: %v", err)
	}
	agent := agentClient(t, "node-1", c.Addrs()...)
	v, err := agent.Commit(ctx, &raftfsm.ReportInstances{At: time.Now().UTC(), Node: "node-1",
		Reports: []raftfsm.InstanceReport{{Instance: res.Service + "#0", Generation: 1, State: "running", Phase: "ready"}}})
	check("commit", err)
	if string(v) != "1" {
		t.Fatalf("commit value %s", v)
	}
	check("probe", agent.Probe(ctx, "127.0.0.1:1", "/health"))
	fake.SetProbeError(errors.New("refused"))
	if err := agent.Probe(ctx, "127.0.0.1:1", ""); Code(err) != control.CodeProbeFailed {
		t.Fatalf("failed probe: %v", err)
	}
	check("restart", c.Restart(ctx, "shop/prod/web"))
	check("undeploy", c.Undeploy(ctx, "shop/prod/web"))
	plain, _ := jsonMarshal(exp)
	other := apitest.NewFake("node-1")
	osrv, _ := serve(t, other)
	ir, err := client(t, hostPort(osrv)).ImportState(ctx, plain)
	check("import", err)
	if len(ir.Services) != 2 {
		t.Fatalf("import %+v", ir)
	}
}

func TestGivesUpSoonWhenNothingListens(t *testing.T) {
	c, err := New(Config{Addrs: []string{deadAddr(t), deadAddr(t)}, APIKey: testKey, RetryFor: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Nodes(t.Context())
	if !errors.Is(err, ErrNoAgent) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("took %s with nothing listening", d)
	}
}

// A client's reads after its write see the write on a lagging follower: the
// write's index travels as ?index=, and the follower answers once it has
// applied it, stale reads included.
func TestReadsAfterAWriteSeeItOnAnyAgent(t *testing.T) {
	leader, follower := apitest.NewFake("node-1"), apitest.NewFake("node-2")
	ls, _ := serve(t, leader)
	follower.SetLeader(false, "node-1", hostPort(ls))
	fs, _ := serve(t, follower)
	c := client(t, hostPort(ls))
	if _, err := c.CreateWorkspace(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	if c.WrittenIndex() != leader.Index() || c.WrittenIndex() == 0 {
		t.Fatalf("written index %d, leader at %d", c.WrittenIndex(), leader.Index())
	}
	// Routes that take no read options still answer after a write.
	if _, err := c.Ping(t.Context()); err != nil {
		t.Fatalf("ping after a write: %v", err)
	}
	if _, err := c.AgentStats(t.Context(), ""); err != nil {
		t.Fatalf("a local route after a write: %v", err)
	}
	reader := client(t, hostPort(fs))
	go func() {
		// Replication reaches the follower whenever it does: before the
		// read or while it waits, the answer must include the write.
		follower.ReplicateFrom(leader)
	}()
	var m Meta
	ws, err := reader.Workspaces(t.Context(), Stale(), AtIndex(c.WrittenIndex()), StoreMeta(&m))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range ws {
		found = found || w.Name == "demo"
	}
	if !found || m.Index < c.WrittenIndex() || !m.KnownLeader {
		t.Fatalf("stale read at the write's index: %+v, meta %+v", ws, m)
	}
}

// Config.Stale makes every read stale unless it asks to be consistent.
func TestStaleConfigMarksReads(t *testing.T) {
	fake := apitest.NewFake("node-1")
	h, err := api.New(api.Options{Controller: fake, APIKey: testKey, RequireAuthAlways: true})
	if err != nil {
		t.Fatal(err)
	}
	queries := make(chan string, 4)
	srv := newTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries <- r.URL.RawQuery
		h.ServeHTTP(w, r)
	}))
	c, err := New(Config{Addrs: []string{hostPort(srv)}, APIKey: testKey, CACert: testCA().CertPEM(), Stale: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Nodes(t.Context()); err != nil {
		t.Fatal(err)
	}
	if q := <-queries; q != "stale=true" {
		t.Fatalf("stale client's read: query %q", q)
	}
	if _, err := c.Nodes(t.Context(), Consistent()); err != nil {
		t.Fatal(err)
	}
	if q := <-queries; q != "consistent=true" {
		t.Fatalf("consistent read of a stale client: query %q", q)
	}
}
