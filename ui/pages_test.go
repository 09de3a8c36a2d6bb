package ui

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// statOf reads a figure of the overview (by the id of its element).
func statOf(t testing.TB, body, id string) string {
	t.Helper()
	m := regexp.MustCompile(`id="` + id + `">(\d+)`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s figure in the page", id)
	}
	return m[1]
}

func TestEveryPageRenders(t *testing.T) {
	f := newFake(t, true)
	u := newTestUI(t, f, Config{})
	c := u.client()
	c.mustLogin(adminName, adminPass)
	if r := c.postMultipart("/services/deploy", sampleForm(c.token()), nil); r.Status != http.StatusSeeOther {
		t.Fatalf("deploy: %d", r.Status)
	}
	f.reportPhase(sampleKey, 1, "health 1/3")
	f.reportHealth(sampleKey, raftfsm.HealthHealthy, time.Now().UTC())
	f.must(&raftfsm.PutSnapshot{At: time.Now().UTC(), Snapshot: raftfsm.Snapshot{Name: "dropmesh-base-1", Kind: raftfsm.SnapshotBase,
		Status: raftfsm.SnapshotBuilding, Phase: "installing docker", Progress: 40, WantRegions: []string{"nyc3", "fra1"}, Regions: []string{"nyc3"}}})
	for _, path := range []string{"/", "/infrastructure", "/services", servicePath(sampleKey), "/snapshots", "/admin", "/notifications", "/services?edit=" + sampleKey} {
		r := c.get(path)
		if r.Status != http.StatusOK {
			t.Errorf("GET %s: %d\n%s", path, r.Status, r.Body)
			continue
		}
		if !strings.Contains(r.Body, `<main id="main"`) || !strings.Contains(r.Body, "</html>") {
			t.Errorf("GET %s: not a whole page", path)
		}
		frag := c.get(path + map[bool]string{true: "&", false: "?"}[strings.Contains(path, "?")] + "fragment=main")
		if frag.Status != http.StatusOK || strings.Contains(frag.Body, "<html") || strings.Contains(frag.Body, "<main") {
			t.Errorf("GET %s fragment: %d, want only the main block", path, frag.Status)
		}
		if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
	}
	infra := c.get("/infrastructure").Body
	for _, want := range []string{"node-1", "10.10.0.2", "203.0.113.3", "1002", "voter", "alive", "24%", "700.0 MiB", "sample/prod/web"} {
		if !strings.Contains(infra, want) {
			t.Errorf("infrastructure page lacks %q", want)
		}
	}
	if !strings.Contains(infra, "this agent cannot fetch other nodes") {
		t.Errorf("infrastructure page does not say remote figures are missing")
	}
	snaps := c.get("/snapshots").Body
	for _, want := range []string{"dropmesh-base-1", "installing docker", `value="40"`, "fra1 · copying"} {
		if !strings.Contains(snaps, want) {
			t.Errorf("snapshots page lacks %q", want)
		}
	}
	admin := c.get("/admin").Body
	for _, want := range []string{"agent started", "slow raft commit", "Raft term", "admin", "not set"} {
		if !strings.Contains(admin, want) {
			t.Errorf("admin page lacks %q", want)
		}
	}
	edit := c.get("/services?edit=" + sampleKey).Body
	for _, want := range []string{"Edit and redeploy sample/prod/web", "LOG_LEVEL=info", "Leave empty to keep API_KEY", `value="web.example.test"`} {
		if !strings.Contains(edit, want) {
			t.Errorf("edit form lacks %q", want)
		}
	}
	if strings.Contains(edit, "s3cret") {
		t.Errorf("the edit form shows a secret")
	}
}

func TestDeployFlow(t *testing.T) {
	f := newFake(t, true)
	u := newTestUI(t, f, Config{})
	c := u.client()
	c.mustLogin(adminName, adminPass)
	home := c.get("/").Body
	if statOf(t, home, "stat-services") != "0" {
		t.Fatalf("services before the deploy")
	}
	r := c.postMultipart("/services/deploy", sampleForm(c.token()), nil)
	if r.Status != http.StatusSeeOther || r.location() != servicePath(sampleKey) {
		t.Fatalf("deploy: %d to %q\n%s", r.Status, r.location(), r.Body)
	}
	deploys := f.deployList()
	if len(deploys) != 1 {
		t.Fatalf("%d deploys recorded", len(deploys))
	}
	spec := deploys[0].Spec
	if spec.Image != sampleImage || spec.Port != 8080 || spec.Replicas != 2 || spec.Health.Path != "/health" ||
		spec.Vars["GREETING"] != "hello world" || spec.Secrets["API_KEY"] != "s3cret" || deploys[0].Actor != adminName ||
		len(spec.Hosts) != 1 || spec.Hosts[0] != "web.example.test" {
		t.Fatalf("deploy request %+v", deploys[0])
	}
	page := c.get(servicePath(sampleKey))
	if !strings.Contains(page.Body, "Deploying sample/prod/web, generation 1.") {
		t.Errorf("no flash after the deploy")
	}
	// The reconciler's phases show, per instance, as the CLI shows them.
	f.advance(sampleKey, "dep-1", 1)
	for _, phase := range []string{"pulling", "health 1/3", "ready"} {
		f.reportPhase(sampleKey, 1, phase)
		body := c.get(servicePath(sampleKey) + "?fragment=main").Body
		if n := strings.Count(body, ">"+phase+"<"); n < 2 {
			t.Errorf("phase %q shows %d times, want once per instance", phase, n)
		}
	}
	f.reportHealth(sampleKey, raftfsm.HealthHealthy, time.Now().UTC())
	f.must(&raftfsm.FinishDeploy{At: time.Now().UTC(), DeployID: "dep-1", Status: raftfsm.DeploySucceeded})
	home = c.get("/").Body
	if statOf(t, home, "stat-services") != "1" || statOf(t, home, "stat-healthy") != "2" {
		t.Errorf("overview after the deploy: services %s, healthy %s", statOf(t, home, "stat-services"), statOf(t, home, "stat-healthy"))
	}
	// Secrets never reach a page.
	if strings.Contains(c.get(servicePath(sampleKey)).Body, "s3cret") {
		t.Errorf("a secret is on the service page")
	}

	// Redeploy keeps the sealed secrets and moves the generation on.
	tok := c.token()
	if r := c.post(servicePath(sampleKey)+"/redeploy", url.Values{"csrf_token": {tok}}); r.Status != http.StatusSeeOther {
		t.Fatalf("redeploy: %d\n%s", r.Status, r.Body)
	}
	if d := f.deployList(); len(d) != 2 || d[1].ExpectGeneration != 1 || len(d[1].Spec.SealedSecrets) != 1 {
		t.Fatalf("redeploy request %+v", d[len(d)-1])
	}
	if r := c.post(servicePath(sampleKey)+"/restart", url.Values{"csrf_token": {tok}}); r.Status != http.StatusSeeOther {
		t.Fatalf("restart: %d", r.Status)
	}
	// Undeploy: the totals follow.
	if r := c.post(servicePath(sampleKey)+"/undeploy", url.Values{"csrf_token": {tok}}); r.Status != http.StatusSeeOther || r.location() != "/services" {
		t.Fatalf("undeploy: %d %q", r.Status, r.location())
	}
	home = c.get("/").Body
	if statOf(t, home, "stat-services") != "0" || statOf(t, home, "stat-healthy") != "0" {
		t.Errorf("totals after the undeploy: services %s healthy %s", statOf(t, home, "stat-services"), statOf(t, home, "stat-healthy"))
	}
	if r := c.get(servicePath(sampleKey)); r.Status != http.StatusNotFound {
		t.Errorf("undeployed service page: %d", r.Status)
	}
}

func TestDeployRefusedShowsErrorNextToForm(t *testing.T) {
	f := newFake(t, true)
	u := newTestUI(t, f, Config{})
	c := u.client()
	c.mustLogin(adminName, adminPass)
	cases := map[string]func(url.Values){
		"port \"http\": want a number":       func(v url.Values) { v.Set("port", "http") },
		"environment line 2: want KEY=value": func(v url.Values) { v.Set("vars", "A=1\nnot a pair") },
		"image \"UPPER CASE\"":               func(v url.Values) { v.Set("image", "UPPER CASE") },
		"service \"Web_1\"":                  func(v url.Values) { v.Set("service", "Web_1") },
		"a service needs a port":             func(v url.Values) { v.Del("port") },
	}
	for want, change := range cases {
		before := f.stateFingerprint()
		form := sampleForm(c.token())
		change(form)
		r := c.postMultipart("/services/deploy", form, nil)
		if r.Status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", want, r.Status)
			continue
		}
		if !strings.Contains(r.Body, `<p class="form-error" role="alert">`) || !strings.Contains(strings.ToLower(r.Body), strings.ToLower(htmlEscape(want))) {
			t.Errorf("%s: the message is not next to the form: %s", want, regexp.MustCompile(`form-error[^<]*`).FindString(r.Body))
		}
		if !strings.Contains(r.Body, `value="sample"`) || !strings.Contains(r.Body, `data-url="/services"`) {
			t.Errorf("%s: the form lost the user's input or its address", want)
		}
		if strings.Contains(r.Body, "goroutine") || strings.Contains(r.Body, ".go:") {
			t.Errorf("%s: a stack trace on the page", want)
		}
		if f.stateFingerprint() != before {
			t.Errorf("%s: a refused deploy changed the state", want)
		}
	}
}

func htmlEscape(s string) string { return strings.ReplaceAll(s, `"`, "&#34;") }

// tarOf makes a tar archive with one file.
func tarOf(t testing.TB, name, content string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestDeployBuildContext(t *testing.T) {
	f := newFake(t, true)
	u := newTestUI(t, f, Config{})
	c := u.client()
	c.mustLogin(adminName, adminPass)
	ctxTar := tarOf(t, "Dockerfile", "FROM scratch\n")
	form := sampleForm(c.token())
	form.Del("image")
	r := c.postMultipart("/services/deploy", form, map[string][2]string{"context": {"ctx.tar", ctxTar}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("deploy with a context: %d\n%s", r.Status, r.Body)
	}
	d := f.deployList()
	if len(d) != 1 || !strings.HasPrefix(d[0].Spec.Build, "sha256:") || d[0].Spec.Image != "" {
		t.Fatalf("deploy request %+v", d)
	}
	if !strings.Contains(c.get(servicePath(sampleKey)).Body, "build sha256:") {
		t.Errorf("the service page does not show the build source")
	}
	// Both an image and a context: refused, nothing deployed.
	r = c.postMultipart("/services/deploy", sampleForm(c.token()), map[string][2]string{"context": {"ctx.tar", ctxTar}})
	if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "give one, not both") {
		t.Errorf("image and context: %d", r.Status)
	}
	// Too large: 413, nothing stored.
	small := newTestUI(t, f, Config{MaxUploadBytes: 1024})
	c2 := small.client()
	c2.mustLogin(adminName, adminPass)
	calls := len(f.callList())
	r = c2.postMultipart("/services/deploy", form, map[string][2]string{"context": {"big.tar", strings.Repeat("x", 4096)}})
	if r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("an upload over the limit: %d, want 413", r.Status)
	}
	if len(f.callList()) != calls {
		t.Errorf("an upload over the limit reached the node")
	}
}

func TestActionErrorsAreShownPlainly(t *testing.T) {
	f := newFake(t, true)
	u := newTestUI(t, f, Config{})
	c := u.client()
	c.mustLogin(adminName, adminPass)
	tok := c.token()
	cases := []struct {
		err    error
		status int
		text   string
	}{
		{fmt.Errorf("%w: node-2 is the only active node", raftfsm.ErrConflict), http.StatusConflict, "node-2 is the only active node"},
		{fmt.Errorf("node node-2: %w", raftfsm.ErrNotFound), http.StatusNotFound, "Node node-2: not found"},
		{control.ErrNotLeader, http.StatusServiceUnavailable, "Leadership moved"},
		{control.ErrNoLeader, http.StatusServiceUnavailable, "no leader right now"},
		{errBoom, http.StatusInternalServerError, "The droplet API is down"},
	}
	for _, tc := range cases {
		f.mu.Lock()
		f.failNext = tc.err
		f.mu.Unlock()
		r := c.post("/nodes/node-2/remove", url.Values{"csrf_token": {tok}})
		if r.Status != tc.status || !strings.Contains(r.Body, tc.text) {
			t.Errorf("%v: %d, want %d with %q", tc.err, r.Status, tc.status, tc.text)
		}
		if !strings.Contains(r.Body, `class="flash flash-error"`) || !strings.Contains(r.Body, "node-grid") {
			t.Errorf("%v: not shown on the infrastructure page", tc.err)
		}
	}
	// Add servers: the error next to its form, the count kept.
	r := c.post("/nodes/add", url.Values{"csrf_token": {tok}, "count": {"0"}})
	if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "New servers &#34;0&#34;") || !strings.Contains(r.Body, `value="0"`) {
		t.Errorf("add 0 servers: %d", r.Status)
	}
	// And a success resets the count.
	r = c.post("/nodes/add", url.Values{"csrf_token": {tok}, "count": {"2"}, "region": {"fra1"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("add 2 servers: %d\n%s", r.Status, r.Body)
	}
	page := c.get("/infrastructure").Body
	if !strings.Contains(page, "Creating 2 new server(s): node-4, node-5.") || !strings.Contains(page, `name="count" min="1" max="50" value="1"`) {
		t.Errorf("after adding servers the page lacks the message or kept the count")
	}
	if !strings.Contains(page, "node-5") || !strings.Contains(page, "creating") {
		t.Errorf("the new servers are not listed")
	}
}

func TestPanicShowsNoStackTrace(t *testing.T) {
	f := newFake(t, true)
	u := newTestUIOver(t, f, &panickyNode{fakeNode: f}, Config{})
	c := u.client()
	c.mustLogin(adminName, adminPass)
	r := c.get("/infrastructure")
	if r.Status != http.StatusInternalServerError {
		t.Fatalf("a panicking page: %d", r.Status)
	}
	if strings.Contains(r.Body, "goroutine") || strings.Contains(r.Body, "runtime error") || strings.Contains(r.Body, ".go:") {
		t.Errorf("the error page shows internals:\n%s", r.Body)
	}
	if !strings.Contains(u.logs.String(), "panicked") {
		t.Errorf("the panic was not logged")
	}
	if r := c.get("/"); r.Status != http.StatusOK {
		t.Errorf("the UI did not survive a panic: %d", r.Status)
	}
}

// panickyNode fails in Cluster the hard way.
type panickyNode struct{ *fakeNode }

func (p *panickyNode) Cluster(ctx context.Context) (control.ClusterInfo, error) {
	var m map[string]int
	m["boom"]++ // a nil map write: a runtime panic
	return control.ClusterInfo{}, nil
}

// panickyStats fails in Stats, which the UI calls on a goroutine of its own.
type panickyStats struct{ *fakeNode }

func (p *panickyStats) Stats(ctx context.Context) (control.NodeStats, error) {
	var m map[string]int
	m["boom"]++
	return control.NodeStats{}, nil
}

func TestPanicInFiguresDoesNotEndTheAgent(t *testing.T) {
	f := newFake(t, true)
	u := newTestUIOver(t, f, &panickyStats{fakeNode: f}, Config{})
	c := u.client()
	c.mustLogin(adminName, adminPass)
	r := c.get("/infrastructure")
	if r.Status != http.StatusOK || !strings.Contains(r.Body, "figures unavailable") {
		t.Fatalf("infrastructure with panicking figures: %d", r.Status)
	}
	if !strings.Contains(u.logs.String(), "panicked") {
		t.Errorf("the panic was not logged")
	}
}

func TestUsersAndSettings(t *testing.T) {
	f := newFake(t, true)
	u := newTestUI(t, f, Config{})
	c := u.client()
	c.mustLogin(adminName, adminPass)
	tok := c.token()
	if r := c.post("/admin/users", url.Values{"csrf_token": {tok}, "name": {"alice"}, "password": {"short"}, "role": {"deployer"}}); r.Status != http.StatusBadRequest ||
		!strings.Contains(r.Body, "8 to 72 characters") || !strings.Contains(r.Body, `value="alice"`) {
		t.Errorf("a short password: %d", r.Status)
	}
	if r := c.post("/admin/users", url.Values{"csrf_token": {tok}, "name": {"alice"}, "password": {"alice-password"}, "role": {"deployer"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("add alice: %d", r.Status)
	}
	if r := c.post("/admin/users", url.Values{"csrf_token": {tok}, "form": {"role"}, "name": {"alice"}, "role": {"viewer"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("change alice's role: %d", r.Status)
	}
	if usr, _ := u.srv.lookupUser("alice"); usr == nil || usr.Role != raftfsm.RoleViewer {
		t.Fatalf("alice %+v", usr)
	}
	alice := u.client()
	alice.mustLogin("alice", "alice-password")
	// The last admin stays.
	if r := c.post("/admin/users", url.Values{"csrf_token": {tok}, "form": {"role"}, "name": {adminName}, "role": {"viewer"}}); r.Status != http.StatusConflict ||
		!strings.Contains(r.Body, "last admin") {
		t.Errorf("demote the last admin: %d", r.Status)
	}
	if r := c.post("/admin/users/admin/delete", url.Values{"csrf_token": {tok}}); r.Status != http.StatusConflict || !strings.Contains(r.Body, "cannot remove yourself") {
		t.Errorf("remove yourself: %d", r.Status)
	}
	if r := c.post("/admin/users/alice/delete", url.Values{"csrf_token": {tok}}); r.Status != http.StatusSeeOther {
		t.Fatalf("remove alice: %d", r.Status)
	}
	if r := alice.get("/"); r.Status != http.StatusSeeOther {
		t.Errorf("a removed user's session still works: %d", r.Status)
	}

	// Settings: tokens are set, never shown.
	r := c.post("/admin/settings", url.Values{"csrf_token": {tok}, "domain": {"example.test"}, "regions": {"nyc3, ams3"},
		"do_token": {"dop_v1_supersecret"}, "health_interval": {"30s"}, "desired_nodes": {"3"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("settings: %d\n%s", r.Status, r.Body)
	}
	var set raftfsm.Settings
	f.View(func(s *raftfsm.State) { set = s.Settings })
	if set.Domain != "example.test" || set.DOToken == "" || set.CFToken != "" || set.HealthInterval.D() != 30*time.Second ||
		set.DesiredNodes != 3 || strings.Join(set.Regions, ",") != "nyc3,ams3" {
		t.Fatalf("settings %+v", set)
	}
	admin := c.get("/admin").Body
	if strings.Contains(admin, "supersecret") || strings.Contains(admin, string(set.DOToken)) {
		t.Errorf("the admin page shows a token")
	}
	if !regexp.MustCompile(`DigitalOcean token <span class="badge st-healthy">set</span>`).MatchString(admin) ||
		!strings.Contains(admin, `Cloudflare token <span class="badge ">not set</span>`) {
		t.Errorf("the admin page does not say which tokens are set")
	}
	if r := c.post("/admin/settings", url.Values{"csrf_token": {tok}, "domain": {"not a domain"}}); r.Status != http.StatusBadRequest {
		t.Errorf("a bad domain: %d", r.Status)
	}
	if r := c.post("/admin/settings", url.Values{"csrf_token": {tok}, "health_interval": {"soon"}}); r.Status != http.StatusBadRequest {
		t.Errorf("a bad interval: %d", r.Status)
	}
	f.View(func(s *raftfsm.State) {
		if s.Settings.Domain != "example.test" {
			t.Errorf("a refused settings form changed the domain to %q", s.Settings.Domain)
		}
	})
}

func TestOnboarding(t *testing.T) {
	f := newFake(t, false)
	u := newTestUI(t, f, Config{})
	c := u.client()
	if r := c.login(adminName, adminPass); r.location() != "/setup" {
		t.Fatalf("first sign-in goes to %q, want /setup", r.location())
	}
	page := c.get("/setup").Body
	if !strings.Contains(page, "DigitalOcean token") || !strings.Contains(page, `action="/setup/digitalocean"`) {
		t.Fatalf("setup does not ask for the DigitalOcean token first")
	}
	tok := csrfOf(t, page)
	if r := c.post("/setup/digitalocean", url.Values{"csrf_token": {tok}, "do_token": {"has spaces"}}); r.Status != http.StatusBadRequest {
		t.Errorf("a bad token: %d", r.Status)
	}
	if r := c.post("/setup/digitalocean", url.Values{"csrf_token": {tok}, "do_token": {"dop_v1_abc"}, "region": {"nyc3"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("DigitalOcean step: %d", r.Status)
	}
	page = c.get("/setup").Body
	if !strings.Contains(page, "Base snapshot") || !strings.Contains(page, "Waiting for the leader") {
		t.Fatalf("the snapshot step is not shown")
	}
	f.must(&raftfsm.PutSnapshot{At: time.Now().UTC(), Snapshot: raftfsm.Snapshot{Name: "dm-base", Kind: raftfsm.SnapshotBase,
		Status: raftfsm.SnapshotBuilding, Phase: "installing docker", Progress: 35}})
	frag := c.get("/setup?fragment=main").Body
	if !strings.Contains(frag, "installing docker") || !strings.Contains(frag, `value="35"`) {
		t.Errorf("the snapshot progress is not shown")
	}
	f.must(&raftfsm.PutSnapshot{At: time.Now().UTC(), Snapshot: raftfsm.Snapshot{Name: "dm-base", Kind: raftfsm.SnapshotBase,
		Status: raftfsm.SnapshotReady, Progress: 100, ID: 77, Regions: []string{"nyc3"}}})
	page = c.get("/setup").Body
	if !strings.Contains(page, `action="/setup/cloudflare"`) {
		t.Fatalf("the Cloudflare step is not shown once the snapshot is ready")
	}
	if r := c.post("/setup/cloudflare", url.Values{"csrf_token": {tok}, "cf_token": {"cf-abc"}, "domain": {"example.test"}}); r.Status != http.StatusSeeOther || r.location() != "/" {
		t.Fatalf("Cloudflare step: %d %q", r.Status, r.location())
	}
	f.View(func(s *raftfsm.State) {
		if s.Settings.CFToken == "" || s.Settings.Domain != "example.test" || s.Settings.UIHost != "mesh.example.test" {
			t.Errorf("settings after setup: %+v", s.Settings)
		}
	})
	if r := c.get("/setup"); r.Status != http.StatusSeeOther || r.location() != "/" {
		t.Errorf("setup when done: %d %q", r.Status, r.location())
	}
	// Local mode skips onboarding.
	lu := newTestUI(t, newFake(t, true), Config{})
	if r := lu.client().login(adminName, adminPass); r.location() != "/" {
		t.Errorf("local mode first sign-in goes to %q", r.location())
	}
}

func TestStaticAssets(t *testing.T) {
	u := newTestUI(t, newFake(t, true), Config{})
	c := u.client()
	page := c.get("/login").Body
	m := regexp.MustCompile(`href="(/static/app\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no versioned stylesheet link")
	}
	r := c.get(m[1])
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/css") || !strings.Contains(r.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("stylesheet: %d %q %q", r.Status, r.Header.Get("Content-Type"), r.Header.Get("Cache-Control"))
	}
	if r := c.get("/static/app.js"); r.Status != http.StatusOK || r.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("unversioned script: %d %q", r.Status, r.Header.Get("Cache-Control"))
	}
	if r := c.get("/static/nope.js"); r.Status != http.StatusNotFound {
		t.Errorf("missing asset: %d", r.Status)
	}
}

func TestOverviewBoundsTheDeploysItDraws(t *testing.T) {
	f := newFake(t, true)
	u := newTestUI(t, f, Config{})
	for i := 0; i < maxRollingShown+3; i++ {
		if _, err := f.Deploy(t.Context(), controlDeploy(raftfsm.ServiceSpec{Project: "p", Env: "prod", Service: fmt.Sprintf("s%d", i),
			Image: "app:1", Port: 80})); err != nil {
			t.Fatal(err)
		}
	}
	c := u.client()
	c.mustLogin(adminName, adminPass)
	body := c.get("/").Body
	if n := strings.Count(body, `class="deploy"`); n != maxRollingShown {
		t.Errorf("%d deploys drawn, want %d", n, maxRollingShown)
	}
	if !strings.Contains(body, "and 3 more") || statOf(t, body, "stat-services") != "13" {
		t.Errorf("the overview does not say how many more deploys run")
	}
}

func TestSignInFromAnotherSiteReloadsOnce(t *testing.T) {
	u := newTestUI(t, newFake(t, true), Config{})
	c := u.client()
	req, _ := http.NewRequest(http.MethodGet, u.ts.URL+"/services", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	r := c.do(req)
	// A redirect from a follower carries no SameSite=Strict cookie: the page
	// reloads itself from this site, where the cookie comes along.
	if r.Status != http.StatusOK || !strings.Contains(r.Body, `http-equiv="refresh" content="0"`) {
		t.Fatalf("cross-site navigation without a cookie: %d", r.Status)
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if r := c.do(req); r.Status != http.StatusSeeOther {
		t.Errorf("same-site navigation without a cookie: %d, want the sign-in redirect", r.Status)
	}
}

func TestNodeActionsAndSnapshotForm(t *testing.T) {
	f := newFake(t, true)
	u := newTestUI(t, f, Config{})
	c := u.client()
	c.mustLogin(adminName, adminPass)
	tok := c.token()
	if r := c.post("/nodes/node-3/reboot", url.Values{"csrf_token": {tok}}); r.Status != http.StatusSeeOther {
		t.Fatalf("reboot: %d", r.Status)
	}
	if r := c.post("/nodes/node-2/remove", url.Values{"csrf_token": {tok}}); r.Status != http.StatusSeeOther {
		t.Fatalf("remove: %d", r.Status)
	}
	page := c.get("/infrastructure").Body
	for _, want := range []string{"Removing node-2", `badge ns-draining">draining`, `badge ns-rebooting">rebooting`} {
		if !strings.Contains(page, want) {
			t.Errorf("infrastructure page lacks %q", want)
		}
	}
	// A custom snapshot from an uploaded context.
	form := url.Values{"csrf_token": {tok}, "name": {"base-node20"}, "regions": {"fra1"}}
	if r := c.postMultipart("/snapshots", form, nil); r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "choose a tar file") {
		t.Errorf("a snapshot without a context: %d", r.Status)
	}
	bad := url.Values{"csrf_token": {tok}, "name": {"Bad Name"}}
	if r := c.postMultipart("/snapshots", bad, map[string][2]string{"context": {"c.tar", tarOf(t, "Dockerfile", "FROM scratch\n")}}); r.Status != http.StatusBadRequest ||
		!strings.Contains(r.Body, "Snapshot name") || !strings.Contains(r.Body, `value="Bad Name"`) {
		t.Errorf("a bad snapshot name: %d", r.Status)
	}
	r := c.postMultipart("/snapshots", form, map[string][2]string{"context": {"c.tar", tarOf(t, "Dockerfile", "FROM local/base:latest\n")}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("build a snapshot: %d\n%s", r.Status, r.Body)
	}
	page = c.get("/snapshots").Body
	if !strings.Contains(page, "base-node20") || !strings.Contains(page, "building image") || !strings.Contains(page, "fra1 · copying") {
		t.Errorf("the new snapshot is not shown")
	}
	// A deployer may not build snapshots.
	if err := f.PutUser(t.Context(), controlUser("dave", "deployer")); err != nil {
		t.Fatal(err)
	}
	d := u.client()
	d.mustLogin("dave", "password-dave")
	if r := d.postMultipart("/snapshots", url.Values{"csrf_token": {d.token()}, "name": {"x"}}, nil); r.Status != http.StatusForbidden {
		t.Errorf("deployer snapshot: %d", r.Status)
	}
	if strings.Contains(d.get("/snapshots").Body, `action="/snapshots"`) || strings.Contains(d.get("/infrastructure").Body, "/reboot") {
		t.Errorf("a deployer sees admin forms")
	}
}

func controlUser(name, role string) control.UserRequest {
	return control.UserRequest{Name: name, Password: "password-" + name, Role: raftfsm.Role(role)}
}

func TestAdminShowsEachAgentsOwnLog(t *testing.T) {
	f := newFake(t, true)
	f.mu.Lock()
	f.peerLogs = map[string][]control.LogEntry{"node-2": {
		{Time: time.Now().UTC(), Level: "INFO", Message: "node-2 joined the mesh"},
		{Time: time.Now().UTC(), Level: "ERROR", Message: "node-2 lost its raft peer"},
	}}
	f.mu.Unlock()
	u := newTestUI(t, f, Config{})
	c := u.client()
	c.mustLogin(adminName, adminPass)

	// By default the serving node's own log, and a picker of every node.
	own := c.get("/admin")
	if own.Status != http.StatusOK || !strings.Contains(own.Body, "agent started") || strings.Contains(own.Body, "node-2 joined") {
		t.Fatalf("admin page: %d, want node-1's own log only", own.Status)
	}
	for _, id := range []string{"node-1", "node-2", "node-3"} {
		if !strings.Contains(own.Body, `<option value="`+id+`"`) {
			t.Errorf("the node picker lacks %s", id)
		}
	}
	if !strings.Contains(own.Body, `<option value="node-1" selected>`) {
		t.Errorf("the picker does not select the serving node")
	}

	// Another node's own log, newest first.
	peer := c.get("/admin?node=node-2")
	if peer.Status != http.StatusOK || !strings.Contains(peer.Body, `<option value="node-2" selected>`) {
		t.Fatalf("admin page for node-2: %d", peer.Status)
	}
	lost, joined := strings.Index(peer.Body, "node-2 lost its raft peer"), strings.Index(peer.Body, "node-2 joined the mesh")
	if lost < 0 || joined < 0 || lost > joined || strings.Contains(peer.Body, "agent started") {
		t.Errorf("node-2's log: want its own lines, newest first, and not node-1's")
	}
	// The live refresh keeps the choice.
	if frag := c.get("/admin?node=node-2&fragment=main"); !strings.Contains(frag.Body, "node-2 lost its raft peer") {
		t.Errorf("the refreshed fragment lost the chosen node")
	}

	// A node that does not answer, and one that does not exist: said so, on the page.
	if r := c.get("/admin?node=node-3"); r.Status != http.StatusOK || !strings.Contains(r.Body, `id="agent-log-error"`) ||
		!strings.Contains(r.Body, "node-3 did not send its log") {
		t.Errorf("a silent node: %d", r.Status)
	}
	for _, bad := range []string{"node-9", "../etc", "<script>"} {
		r := c.get("/admin?node=" + url.QueryEscape(bad))
		if r.Status != http.StatusOK || !strings.Contains(r.Body, "There is no node") || strings.Contains(r.Body, "<script>") {
			t.Errorf("node=%q: %d, want the page with a clear error", bad, r.Status)
		}
	}

	// A Node that cannot fetch peers' logs: its own only, and it says why.
	plain := newTestUIOver(t, f, struct{ Node }{f}, Config{})
	pc := plain.client()
	pc.mustLogin(adminName, adminPass)
	if r := pc.get("/admin?node=node-2"); !strings.Contains(r.Body, "cannot fetch other nodes") || strings.Contains(r.Body, "node-2 joined") {
		t.Errorf("a Node without PeerAgentLogs: %d", r.Status)
	}
	if r := pc.get("/admin"); !strings.Contains(r.Body, "agent started") {
		t.Errorf("a Node without PeerAgentLogs lost its own log")
	}
}

// TestServicePageShowsCertificateState: a service whose certificate order
// failed shows it on its page, with the CA's answer and the next attempt,
// and the old certificate's expiry is still named.
func TestServicePageShowsCertificateState(t *testing.T) {
	f := newFake(t, true)
	u := newTestUI(t, f, Config{})
	c := u.client()
	c.mustLogin(adminName, adminPass)
	if r := c.postMultipart("/services/deploy", sampleForm(c.token()), nil); r.Status != http.StatusSeeOther {
		t.Fatalf("deploy: %d", r.Status)
	}
	if strings.Contains(c.get(servicePath(sampleKey)).Body, "<dt>HTTPS</dt>") {
		t.Fatal("a service without a certificate shows one")
	}
	now := time.Now().UTC()
	key, err := raftfsm.Seal(f.aead, raftfsm.IssuedKeyLabel("svc:"+sampleKey), []byte("key"))
	if err != nil {
		t.Fatal(err)
	}
	f.must(&raftfsm.SetACMEConfig{At: now, Config: raftfsm.ACMEConfig{Enabled: true, Directory: "https://ca.example.test/dir"}})
	f.must(&raftfsm.RecordACMEOrder{At: now, Order: raftfsm.ACMEOrder{ID: "order-1", Cert: "svc:" + sampleKey, Hosts: []string{"web.example.test"}, Key: key}})
	next := now.Add(5 * time.Minute)
	f.must(&raftfsm.ResolveACMEOrder{At: now, ID: "order-1", Status: raftfsm.OrderFailed, Error: "the CA could not find the TXT record", NextAttempt: next})
	page := c.get(servicePath(sampleKey)).Body
	for _, want := range []string{"<dt>HTTPS</dt>", `class="cert-failed"`, "web.example.test", "last order failed: the CA could not find the TXT record", "next attempt"} {
		if !strings.Contains(page, want) {
			t.Errorf("service page lacks %q", want)
		}
	}
}
