package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/dropmesh/dropmesh/node/testkit"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// The browser kit: a headless Chromium driven by chromedp, for this
// package's browser tests (against the in-memory fake) and for the
// end-to-end test in package ui_test (against a real local mesh), hence the
// exported names.

// Browser is one tab of the test Chromium, on the UI at a base address.
type Browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string
}

// Chromium is one headless browser shared by the browser tests; each test
// works in a tab of its own.
type Chromium struct {
	ctx context.Context
	dir string
}

// ChromiumPath is Chromium's path ($DROPMESH_CHROMIUM, else Debian's
// chromium); without one the test fails in CI and is skipped elsewhere.
func ChromiumPath(t *testing.T) string {
	t.Helper()
	if path := os.Getenv("DROPMESH_CHROMIUM"); path != "" {
		if _, err := os.Stat(path); err != nil {
			testkit.Unavailable(t, "Chromium at $DROPMESH_CHROMIUM="+path, "point DROPMESH_CHROMIUM at a Chromium, or unset it to use Debian's")
		}
		return path
	}
	return testkit.RequireTool(t, "chromium")
}

// NewChromium starts Chromium with extra command-line options, or skips the
// test when there is none (ChromiumPath). Screenshots go to
// $DROPMESH_ARTIFACTS, else testdata/screenshots.
func NewChromium(t *testing.T, extra ...chromedp.ExecAllocatorOption) *Chromium {
	t.Helper()
	path := ChromiumPath(t)
	dir := os.Getenv("DROPMESH_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("testdata", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // the tests run as root
		chromedp.Headless,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("lang", "en-US"),
	)
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	start := time.Now()
	if err := chromedp.Do(ctx); err != nil { // starts the browser, with no timeout of its own
		t.Fatalf("start Chromium: %v", err)
	}
	t.Logf("%6.2fs start Chromium", time.Since(start).Seconds())
	return &Chromium{ctx: ctx, dir: dir}
}

// Tab opens a tab on the UI at base (such as http://127.0.0.2:8080) for
// one test. Tabs share the browser's cookies.
func (c *Chromium) Tab(t *testing.T, base string) *Browser {
	t.Helper()
	ctx, cancel := chromedp.NewContext(c.ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	// Accept every confirm() dialog (undeploy, restart...), as a user would.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return &Browser{t: t, ctx: ctx, base: base, dir: c.dir}
}

// Do runs actions with a deadline, failing the test with what it was doing.
func (b *Browser) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	defer func(start time.Time) { b.t.Logf("%6.2fs do %s", time.Since(start).Seconds(), what) }(time.Now())
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// Open navigates to a path of the UI at the tab's base address.
func (b *Browser) Open(path string) {
	b.t.Helper()
	b.OpenURL(b.base + path)
}

// OpenURL navigates to an absolute address (another node's UI).
func (b *Browser) OpenURL(u string) {
	b.t.Helper()
	b.Do("open "+u, chromedp.Navigate(u))
}

// WaitJS waits up to 20 s until a JavaScript expression is true in the page.
func (b *Browser) WaitJS(what, expr string) {
	b.t.Helper()
	b.WaitJSWithin(20*time.Second, what, expr)
}

// WaitJSWithin waits up to timeout until a JavaScript expression is true in
// the page. It checks every 50 ms and rides over navigations (an evaluation
// in a page that is being replaced fails; the next one runs in the new page).
func (b *Browser) WaitJSWithin(timeout time.Duration, what, expr string) {
	b.t.Helper()
	defer func(start time.Time) { b.t.Logf("%6.2fs wait %s", time.Since(start).Seconds(), what) }(time.Now())
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		cancel()
		if err == nil && ok {
			return
		}
		lastErr = err
		select {
		case <-deadline.C:
			ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + (document.body ? document.body.innerText.slice(0, 1500) : "")`))
			cancel()
			b.t.Fatalf("waiting for %s (%s): last error %v\npage:\n%s", what, expr, lastErr, body)
		case <-tick.C:
		}
	}
}

// Fill sets form fields, by element id, as typing would: the value, then
// input and change events. Events matter: a live refresh keeps a form the
// user is editing (one that had input) and replaces any other. It works in
// the page, not through DevTools DOM node ids, which a refresh or a late
// navigation event can leave stale.
func (b *Browser) Fill(what string, fields map[string]string) {
	b.t.Helper()
	data, err := json.Marshal(fields)
	if err != nil {
		b.t.Fatal(err)
	}
	missing := JS[string](b, `(() => {
		for (const [id, v] of Object.entries(`+string(data)+`)) {
			const el = document.getElementById(id);
			if (!el) return id;
			el.value = v;
			el.dispatchEvent(new Event("input", {bubbles: true}));
			el.dispatchEvent(new Event("change", {bubbles: true}));
		}
		return "";
	})()`)
	if missing != "" {
		b.t.Fatalf("%s: the page has no #%s", what, missing)
	}
	b.t.Logf("filled %s", what)
}

// Click clicks the element a CSS selector finds, in the page, as soon as
// there is one (within 20 s). It does not go through DevTools DOM node ids:
// a live refresh that swaps the element in between would make such a
// click fail ("Could not find node with given id").
func (b *Browser) Click(what, sel string) {
	b.t.Helper()
	b.click(what, sel, "el.click()")
}

// ClickConfirm is Click for an element whose click opens a confirm()
// dialog (which the tab accepts): the click runs after the evaluation
// returns, so the dialog does not hold the evaluation up.
func (b *Browser) ClickConfirm(what, sel string) {
	b.t.Helper()
	b.click(what, sel, "setTimeout(() => el.click(), 0)")
}

func (b *Browser) click(what, sel, do string) {
	b.t.Helper()
	defer func(start time.Time) { b.t.Logf("%6.2fs click %s", time.Since(start).Seconds(), what) }(time.Now())
	expr := fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el) return false; %s; return true })()`, sel, do)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("click %s (%s): nothing to click (last error %v)", what, sel, err)
		}
		select {
		case <-b.ctx.Done():
			b.t.Fatalf("click %s: %v", what, b.ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// JS evaluates an expression in the tab's page and returns its value.
func JS[T any](b *Browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// Shot saves a PNG of the whole page as name.png in the artifacts directory.
func (b *Browser) Shot(name string) {
	b.t.Helper()
	defer func(start time.Time) { b.t.Logf("%6.2fs shot %s", time.Since(start).Seconds(), name) }(time.Now())
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	// From the top, so the sticky header is drawn where it belongs.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)); err != nil {
		b.t.Fatalf("scroll up for %s: %v", name, err)
	}
	// Chromium sometimes measures a page it is laying out (a live refresh
	// swapping the main block in) as 0 px wide and refuses: try again.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	for err != nil && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		}
	}
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// NoHorizontalScroll fails the test when the page is wider than the window.
func (b *Browser) NoHorizontalScroll(page string) {
	b.t.Helper()
	if w := JS[[]int](b, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
		b.t.Errorf("%s scrolls sideways on a %d px wide screen: %d px wide", page, w[1], w[0])
	}
}

// TextOf returns the trimmed text of the elements a CSS selector finds.
func TextOf(b *Browser, sel string) []string {
	return JS[[]string](b, fmt.Sprintf(`[...document.querySelectorAll(%q)].map(e => e.textContent.trim())`, sel))
}

// TestBrowser drives the UI in a real browser: one Chromium, a tab per scenario.
func TestBrowser(t *testing.T) {
	c := NewChromium(t)
	t.Run("DeployWatchUndeploy", func(t *testing.T) { browserDeployWatchUndeploy(t, c) })
	t.Run("OnboardingAndNoLeader", func(t *testing.T) { browserOnboardingAndNoLeader(t, c) })
}

func browserDeployWatchUndeploy(t *testing.T, c *Chromium) {
	f := newFake(t, true)
	u := newTestUI(t, f, Config{EventInterval: 100 * time.Millisecond, LogLines: 50})
	b := c.Tab(t, u.ts.URL)

	// Sign in.
	b.Open("/services")
	b.WaitJS("the sign-in page", `location.pathname === "/login" && !!document.querySelector("#login-form")`)
	b.Do("type the credentials", chromedp.SendKeys(chromedp.ID("username"), adminName), chromedp.SendKeys(chromedp.ID("password"), adminPass))
	b.Shot("login")
	b.Click("sign in", "#login-submit")
	b.WaitJS("the services page after sign-in", `location.pathname === "/services" && !!document.querySelector("#deploy-form")`)

	// Deploy the sample through the form.
	b.Fill("the deploy form", map[string]string{
		"d-project":  "sample",
		"d-service":  "web",
		"d-image":    sampleImage,
		"d-port":     "8080",
		"d-hosts":    "web.example.test",
		"d-replicas": "2",
		"d-health":   "/health",
		"d-vars":     "LOG_LEVEL=info\nGREETING=hello",
	})
	b.Shot("services-deploy-form")
	b.Click("submit the deploy", "#deploy-submit")
	b.WaitJS("the service page", `location.pathname === "/s/`+sampleKey+`" && document.querySelectorAll("#instances .phase").length === 2`)
	if d := f.deployList(); len(d) != 1 || d[0].Spec.Image != sampleImage || d[0].Spec.Replicas != 2 || d[0].Spec.Vars["GREETING"] != "hello" {
		t.Fatalf("deploy request %+v", d)
	}
	b.WaitJS("the live stream", `document.getElementById("live-dot").classList.contains("on")`)

	// From here on the page must change without a reload: mark it.
	JS[bool](b, `window.__sameDocument = true`)

	// The reconciler's side: phases, then health.
	f.advance(sampleKey, "dep-1", 1)
	for _, phase := range []string{"pulling", "health 1/3", "ready"} {
		f.reportPhase(sampleKey, 1, phase)
		b.WaitJS("phase "+phase, fmt.Sprintf(`[...document.querySelectorAll("#instances .phase")].every(e => e.textContent.trim() === %q)`, phase))
		if phase == "health 1/3" {
			b.Shot("service-deploying")
		}
	}
	// A week of history, as the health loop would have written it: healthy,
	// a degraded stretch, an outage, then healthy again.
	now := time.Now().UTC()
	for h := 7*24 - 1; h >= 0; h-- {
		status := raftfsm.HealthHealthy
		switch {
		case h >= 100 && h < 104:
			status = raftfsm.HealthDegraded
		case h >= 30 && h < 32, h == 9:
			status = raftfsm.HealthUnhealthy
		case h == 20:
			status = raftfsm.HealthStarting
		}
		f.reportHealth(sampleKey, status, now.Add(-time.Duration(h)*time.Hour-time.Minute))
	}
	f.reportHealth(sampleKey, raftfsm.HealthHealthy, now)
	f.must(&raftfsm.FinishDeploy{At: now, DeployID: "dep-1", Status: raftfsm.DeploySucceeded})
	b.WaitJS("both instances healthy", `[...document.querySelectorAll("#instances .health .badge")].map(e => e.textContent.trim()).join() === "healthy,healthy"`)
	b.WaitJS("the deploy succeeded", `!!document.querySelector(".badge.dp-succeeded")`)
	if !JS[bool](b, `window.__sameDocument === true`) {
		t.Fatalf("the page reloaded to show the changes")
	}
	b.WaitJS("the health timeline", `document.querySelectorAll("#health svg rect.unhealthy").length >= 4 && document.querySelectorAll("#health svg rect.degraded").length >= 2`)
	b.Shot("service")

	// Logs: follow, filter, and the cap on lines kept in the page.
	b.Click("open the logs", "[data-logs]")
	b.WaitJS("the tail of the log", `!document.getElementById("logs").hidden && document.getElementById("logs-lines").textContent.includes("old line 3")`)
	f.logLines <- "GET /health 200 2ms"
	f.logLines <- "ERROR database timeout after 5s"
	b.WaitJS("followed lines", `document.getElementById("logs-lines").textContent.includes("database timeout")`)
	b.Do("filter the log", chromedp.SendKeys(chromedp.ID("logs-filter"), "error"))
	if shown := JS[[]string](b, `[...document.querySelectorAll("#logs-lines div")].filter(d => !d.hidden).map(d => d.textContent)`); len(shown) != 1 || !strings.Contains(shown[0], "ERROR") {
		t.Errorf("filtered lines %q", shown)
	}
	b.Shot("service-logs")
	JS[bool](b, `(() => { const f = document.getElementById("logs-filter"); f.value = ""; f.dispatchEvent(new Event("input")); return true })()`)
	for i := 0; i < 300; i++ {
		f.logLines <- fmt.Sprintf("noisy line %d", i)
	}
	b.WaitJS("the noisy lines", `document.getElementById("logs-lines").textContent.includes("noisy line 299")`)
	if n := JS[int](b, `document.querySelectorAll("#logs-lines div").length`); n > 50 {
		t.Errorf("%d log lines in the page, the cap is 50", n)
	}
	// Pause holds new lines back until resumed.
	b.Click("pause", "#logs-pause")
	received := JS[int](b, `+document.getElementById("logs").dataset.received`)
	f.logLines <- "while paused"
	b.WaitJS("the line to arrive", fmt.Sprintf(`+document.getElementById("logs").dataset.received > %d`, received))
	if JS[bool](b, `document.getElementById("logs-lines").textContent.includes("while paused")`) {
		t.Errorf("a line showed while paused")
	}
	b.Click("resume", "#logs-pause")
	b.WaitJS("the held line after resume", `document.getElementById("logs-lines").textContent.includes("while paused")`)
	b.Click("close the logs", "#logs-close")

	// The other pages.
	f.must(&raftfsm.PutSnapshot{At: now, Snapshot: raftfsm.Snapshot{Name: "dropmesh-base-1", Kind: raftfsm.SnapshotBase, Status: raftfsm.SnapshotReady,
		ID: 4242, Progress: 100, Regions: []string{"nyc3", "fra1"}, WantRegions: []string{"nyc3", "fra1"}}})
	f.must(&raftfsm.PutSnapshot{At: now, Snapshot: raftfsm.Snapshot{Name: "base-node20", Kind: raftfsm.SnapshotCustom, Status: raftfsm.SnapshotBuilding,
		Phase: "copying to fra1", Progress: 70, Regions: []string{"nyc3"}, WantRegions: []string{"nyc3", "fra1"}}})
	f.must(&raftfsm.AppendEvent{At: now, Event: raftfsm.Event{Kind: raftfsm.EventNodeStatus, Severity: raftfsm.SeverityWarn, Node: "node-3",
		Message: "node-3 missed 2 pings"}})
	for _, p := range []struct{ path, name, ready string }{
		{"/", "overview", "#stat-services"},
		{"/services", "services", ".svc"},
		{"/infrastructure", "infrastructure", ".node"},
		{"/snapshots", "snapshots", "progress"},
		{"/admin", "admin", "#agent-log"},
	} {
		b.Open(p.path)
		b.WaitJS(p.name, fmt.Sprintf(`!!document.querySelector(%q)`, p.ready))
		b.Shot(p.name)
		b.NoHorizontalScroll(p.name)
	}

	// Notifications: a webhook added through the form is listed, its secret cut short.
	b.Open("/notifications")
	b.WaitJS("the notifications page", `!!document.getElementById("add-webhook")`)
	b.Fill("the webhook form", map[string]string{
		"w-url":    "https://hooks.slack.com/services/T0/B0/browserSecret1234",
		"w-format": "slack",
		"w-events": "deploy.failed, heal.",
	})
	b.Click("add the webhook", "#webhook-submit")
	b.WaitJS("the webhook in the list", `location.pathname === "/notifications" && document.querySelectorAll("#webhooks tr[data-webhook]").length === 1 && `+
		`document.querySelector("#webhooks tr[data-webhook]").innerText.includes("hooks.slack.com/services/…1234")`)
	if hooks := f.webhooks(); len(hooks) != 1 || hooks[0].Format != raftfsm.WebhookSlack || len(hooks[0].Kinds) != 2 {
		t.Fatalf("webhooks after the form: %+v", hooks)
	}
	b.Shot("notifications")
	b.NoHorizontalScroll("notifications")

	// The overview follows the state live too.
	b.Open("/")
	b.WaitJS("the overview's stream", `document.getElementById("live-dot").classList.contains("on")`)
	JS[bool](b, `window.__sameDocument = true`)
	if got := TextOf(b, "#stat-healthy"); len(got) != 1 || got[0] != "2" {
		t.Fatalf("healthy on the overview: %v", got)
	}
	f.reportHealth(sampleKey, raftfsm.HealthUnhealthy, time.Now().UTC())
	b.WaitJS("two unhealthy", `document.getElementById("stat-unhealthy").textContent.trim() === "2"`)
	if !JS[bool](b, `window.__sameDocument === true`) {
		t.Errorf("the overview reloaded")
	}

	// On a phone: no sideways scrolling, and the pages still read well.
	b.Do("phone size", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	for _, p := range []struct{ path, name string }{{"/", "phone-overview"}, {"/services", "phone-services"}, {"/s/" + sampleKey, "phone-service"},
		{"/infrastructure", "phone-infrastructure"}, {"/notifications", "phone-notifications"}, {"/admin", "phone-admin"}} {
		b.Open(p.path)
		b.WaitJS(p.name, `!!document.querySelector("main h1")`)
		b.NoHorizontalScroll(p.name)
		b.Shot(p.name)
	}
	b.Do("laptop size", chromedp.EmulateViewport(1280, 900))

	// Undeploy through the UI: the totals follow.
	b.Open("/s/" + sampleKey)
	b.WaitJS("the service page", `!!document.getElementById("undeploy")`)
	b.ClickConfirm("undeploy", "#undeploy")
	b.WaitJS("the services page after the undeploy", `location.pathname === "/services" && document.body.innerText.includes("Undeployed sample/prod/web")`)
	b.Open("/")
	b.WaitJS("the totals after the undeploy", `document.getElementById("stat-services").textContent.trim() === "0" && document.getElementById("stat-unhealthy").textContent.trim() === "0"`)
	b.Shot("overview-after-undeploy")
	if calls := f.callList(); !strings.Contains(strings.Join(calls, ";"), "undeploy "+sampleKey) {
		t.Errorf("no undeploy reached the node: %v", calls)
	}
}

func browserOnboardingAndNoLeader(t *testing.T, c *Chromium) {
	f := newFake(t, false)
	u := newTestUI(t, f, Config{EventInterval: 100 * time.Millisecond})
	b := c.Tab(t, u.ts.URL)
	b.Open("/login")
	b.WaitJS("the sign-in form", `!!document.getElementById("login-form")`)
	b.Fill("the sign-in form", map[string]string{"username": adminName, "password": adminPass})
	b.Click("sign in", "#login-submit")
	b.WaitJS("the setup page", `location.pathname === "/setup" && !!document.getElementById("do-form")`)
	b.Shot("setup-digitalocean")
	b.Fill("the DigitalOcean token", map[string]string{"do-token": "dop_v1_0123456789abcdef"})
	b.Click("give the token", "#do-form button")
	b.WaitJS("the snapshot step", `!!document.getElementById("step-snapshot")`)
	JS[bool](b, `window.__sameDocument = true`)
	f.must(&raftfsm.PutSnapshot{At: time.Now().UTC(), Snapshot: raftfsm.Snapshot{Name: "dropmesh-base", Kind: raftfsm.SnapshotBase,
		Status: raftfsm.SnapshotBuilding, Phase: "installing docker", Progress: 45, WantRegions: []string{"nyc3"}}})
	b.WaitJS("the snapshot's progress, live", `document.querySelector("#step-snapshot progress") && document.querySelector("#step-snapshot progress").value === 45`)
	b.Shot("setup-snapshot")
	f.must(&raftfsm.PutSnapshot{At: time.Now().UTC(), Snapshot: raftfsm.Snapshot{Name: "dropmesh-base", Kind: raftfsm.SnapshotBase,
		Status: raftfsm.SnapshotReady, Progress: 100, ID: 99, Regions: []string{"nyc3"}, WantRegions: []string{"nyc3"}}})
	b.WaitJS("the Cloudflare step, live", `!!document.getElementById("cf-form") && window.__sameDocument === true`)
	b.Shot("setup-cloudflare")
	b.Fill("the Cloudflare form", map[string]string{"cf-token": "cf-token-123", "cf-domain": "example.test"})
	b.Click("finish", "#cf-form button")
	b.WaitJS("the overview", `location.pathname === "/" && document.body.innerText.includes("Setup complete")`)

	// The leader goes away: a friendly page that retries by itself.
	f.setLeader("")
	b.Open("/services")
	b.WaitJS("the waiting page", `document.body.innerText.includes("Waiting for a leader")`)
	b.Shot("no-leader")
	f.setLeader("node-1")
	b.WaitJS("the page back by itself", `location.pathname === "/services" && !!document.querySelector("main h1")`)
}
