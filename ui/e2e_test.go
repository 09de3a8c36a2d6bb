package ui_test

// The end-to-end browser test: a real three-node local mesh (the dropmesh
// binary's `local up`: fake cloud, agent processes, raft, gossip, Docker,
// the edge) and the UI in Chromium, the way a user meets it. It lives in
// package ui_test because it needs the node side (the binary, the runtime's
// test kit); package ui itself never imports node.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/node/testkit"
	"github.com/dropmesh/dropmesh/ui"
)

// e2eIPPrefix keeps this test's mesh on loopback addresses of its own, away
// from the other packages' clusters and meshes (mesh 127.0.1-12 and 91,
// bootstrap 77, localmode 100-199, node 200-249) and other test processes.
var e2eIPPrefix = fmt.Sprintf("127.0.%d.", 20+os.Getpid()%50)

// localUIHost is local mode's UI host name (mesh.<zone>).
const localUIHost = "mesh.example.test"

// Patience for what the real mesh does (deploys, health, elections); the
// page itself answers within the kit's default.
const meshPatience = 90 * time.Second

// localMesh is a local mesh run by the real binary, as a user would.
type localMesh struct {
	t   *testing.T
	bin string
	dir string
}

// meshNode is one node of `dropmesh local status --json`.
type meshNode struct {
	ID   string `json:"id"`
	PID  int    `json:"pid"`
	UI   string `json:"ui"`
	Role string `json:"role"`
}

func (m *localMesh) run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, m.bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// startLocalMesh runs `dropmesh local up` with three nodes and a 1 s health
// interval, and `local down` when the test ends.
func startLocalMesh(t *testing.T, bin string) *localMesh {
	t.Helper()
	m := &localMesh{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(func() {
		if t.Failed() {
			m.dumpUILog()
		}
		if out, err := m.run(2*time.Minute, "local", "down", "--dir", m.dir); err != nil {
			t.Errorf("local down: %v\n%s", err, out)
		}
	})
	start := time.Now()
	out, err := m.run(4*time.Minute, "local", "up", "--dir", m.dir, "--nodes", "3", "--base-port", freePort(t),
		"--health-interval", "1s", "--ip-prefix", e2eIPPrefix, "--timeout", "3m")
	if err != nil {
		t.Fatalf("local up: %v\n%s", err, out)
	}
	t.Logf("%6.2fs local up", time.Since(start).Seconds())
	return m
}

// dumpUILog prints what the agents logged about the UI, leadership and
// sign-ins: what a failed browser step needs explained.
func (m *localMesh) dumpUILog() {
	logs, _ := filepath.Glob(filepath.Join(m.dir, "node-*.log"))
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var keep []string
		for _, l := range strings.Split(string(data), "\n") {
			low := strings.ToLower(l)
			if strings.Contains(low, "ui ") || strings.Contains(low, "sign-in") || strings.Contains(low, "leader") || strings.Contains(low, "election") {
				keep = append(keep, l)
			}
		}
		if len(keep) > 40 {
			keep = keep[len(keep)-40:]
		}
		m.t.Logf("%s (UI and leadership lines, last %d):\n%s", filepath.Base(path), len(keep), strings.Join(keep, "\n"))
	}
}

// status lists the nodes with their raft roles.
func (m *localMesh) status() []meshNode {
	m.t.Helper()
	out, err := m.run(30*time.Second, "local", "status", "--dir", m.dir, "--json")
	if err != nil {
		m.t.Fatalf("local status: %v\n%s", err, out)
	}
	var st struct{ Nodes []meshNode }
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		m.t.Fatalf("local status --json: %v\n%s", err, out)
	}
	return st.Nodes
}

// leader waits until a node other than not leads, and returns it. It asks
// `local status` twice a second: each ask is a process and an API call.
func (m *localMesh) leader(not string) meshNode {
	m.t.Helper()
	deadline := time.NewTimer(meshPatience)
	defer deadline.Stop()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		nodes := m.status()
		for _, n := range nodes {
			if n.Role == "leader" && n.ID != not {
				return n
			}
		}
		select {
		case <-deadline.C:
			m.t.Fatalf("no leader other than %q within %s: %+v", not, meshPatience, nodes)
		case <-tick.C:
		}
	}
}

// uiAddrs are the UI base addresses of the mesh's nodes but the excluded.
func (m *localMesh) uiAddrs(exclude ...string) []string {
	m.t.Helper()
	var out []string
	for _, n := range m.status() {
		if !slices.Contains(exclude, n.ID) && n.UI != "" {
			out = append(out, n.UI)
		}
	}
	return out
}

// jsList is a JavaScript array literal of strings.
func jsList(items []string) string {
	b, _ := json.Marshal(items)
	return string(b)
}

// servedBy is the node that served the tab's page (the footer says).
func servedBy(b *ui.Browser) string {
	return ui.JS[string](b, `(document.body.innerText.match(/served by (\S+)/) || ["", ""])[1]`)
}

func (m *localMesh) adminPassword() string {
	m.t.Helper()
	pw, err := os.ReadFile(filepath.Join(m.dir, "admin-password"))
	if err != nil {
		m.t.Fatal(err)
	}
	return strings.TrimSpace(string(pw))
}

// freePort is a TCP port nothing listens on, for the fake cloud.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// dockerOrSkip connects to the Docker engine; without one the test fails
// in CI and is skipped elsewhere (it runs the sample in containers).
func dockerOrSkip(t *testing.T) *runtime.Runtime {
	t.Helper()
	testkit.RequireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rt, err := runtime.New(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	return rt
}

// sampleImage builds the sample app image from the dropmesh binary, as local
// mode builds local/sample:latest, under a name of this test's own.
func sampleImage(t *testing.T, rt *runtime.Runtime, bin string) string {
	t.Helper()
	ref := runtimetest.TestImageRepo + "ui-e2e-" + runtimetest.RandomSuffix() + ":sample"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := rt.BuildFromBinary(ctx, bin, ref, []string{"/dropmesh", "sample-app"}, 8080); err != nil {
		t.Fatalf("build the sample image: %v", err)
	}
	t.Cleanup(func() { runtimetest.RemoveTestImage(t, rt, ref) })
	return ref
}

// signIn fills the sign-in form the tab shows and submits it, and waits
// until the browser has left the sign-in page.
func signIn(b *ui.Browser, password string) {
	b.WaitJS("the sign-in form", `location.pathname === "/login" && !!document.getElementById("login-form") && document.readyState === "complete"`)
	ui.JS[bool](b, `window.__signInPage = true`)
	b.Fill("the sign-in form", map[string]string{"username": "admin", "password": password})
	b.Click("sign in", "#login-submit")
	b.WaitJS("the browser signed in", `location.pathname !== "/login" && window.__signInPage !== true`)
}

func TestEndToEndBrowserOnALocalMesh(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node local mesh with Docker and drives its UI in Chromium")
	}
	ui.ChromiumPath(t) // skip before the expensive part
	rt := dockerOrSkip(t)
	start := time.Now()
	bin := runtimetest.BuildStaticBinary(t, "github.com/dropmesh/dropmesh")
	image := sampleImage(t, rt, bin)
	t.Logf("%6.2fs build the binary and the sample image", time.Since(start).Seconds())
	m := startLocalMesh(t, bin)
	password := m.adminPassword()

	leader := m.leader("")
	var follower meshNode
	for _, n := range m.status() {
		if n.ID != leader.ID {
			follower = n
		}
	}
	if follower.UI == "" || leader.UI == "" {
		t.Fatalf("local status gave no UI addresses: %+v", m.status())
	}
	// The browser resolves the cluster's UI host name to the follower, as
	// DNS would to any node: the follower proxies it to the leader.
	followerURL, err := url.Parse(follower.UI)
	if err != nil {
		t.Fatal(err)
	}
	uiHostURL := "http://" + net.JoinHostPort(localUIHost, followerURL.Port())
	c := ui.NewChromium(t, chromedp.Flag("host-resolver-rules", "MAP "+localUIHost+" "+followerURL.Hostname()))

	// Through a follower: it redirects the browser to the leader's UI,
	// which asks for a sign-in. On a busy machine an election may move
	// leadership at any moment (raft's timeouts are a few hundred ms), so
	// the test never assumes the leader it saw still leads: the browser
	// stays on the address it signed in on (home), and whichever node that
	// is serves it, itself or through its proxy to the leader.
	b := c.Tab(t, leader.UI)
	b.OpenURL(follower.UI + "/services")
	b.WaitJS("the leader's sign-in page", fmt.Sprintf(`location.pathname === "/login" && %s.includes(location.origin)`, jsList(m.uiAddrs())))
	home := ui.JS[string](b, `location.origin`)
	if home != leader.UI {
		t.Logf("leadership moved before the sign-in: signing in on %s, not %s", home, leader.UI)
	}
	b.Shot("e2e-login")
	signIn(b, password)
	b.WaitJS("the services page after sign-in", `location.pathname === "/services" && !!document.getElementById("deploy-form")`)

	// Deploy the sample through the form.
	b.Fill("the deploy form", map[string]string{
		"d-project":  "sample",
		"d-env":      "prod",
		"d-service":  "web",
		"d-image":    image,
		"d-port":     "8080",
		"d-hosts":    "e2e.example.test",
		"d-replicas": "2",
		"d-health":   "/health",
		"d-vars":     "LOG_LEVEL=info",
	})
	b.Shot("e2e-services-deploy-form")
	b.Click("submit the deploy", "#deploy-submit")
	b.WaitJS("the service page", `/^\/s\/[^/]+\/sample\/prod\/web$/.test(location.pathname) && !!document.getElementById("instances")`)
	b.WaitJS("the live stream", `document.getElementById("live-dot").classList.contains("on")`)

	// The real reconciler starts both containers and the health loop finds
	// them healthy; the page shows it without a reload.
	ui.JS[bool](b, `window.__sameDocument = true`)
	b.WaitJSWithin(meshPatience, "both instances healthy, live",
		`[...document.querySelectorAll("#instances .health .badge")].map(e => e.textContent.trim()).join() === "healthy,healthy"`)
	if !ui.JS[bool](b, `window.__sameDocument === true`) {
		t.Fatalf("the service page reloaded to show the deploy")
	}
	b.Shot("e2e-service-healthy")

	// Its logs: the container's own lines, streamed from its node.
	b.Click("open the logs", "[data-logs]")
	b.WaitJSWithin(meshPatience, "the sample's log", `!document.getElementById("logs").hidden && `+
		`document.getElementById("logs-lines").textContent.includes("sample-app listening on")`)
	b.Shot("e2e-service-logs")
	b.Click("close the logs", "#logs-close")
	servicePath := ui.JS[string](b, `location.pathname`)

	// The other pages, each with a screenshot.
	for _, p := range []struct{ path, name, ready string }{
		{"/", "e2e-overview", `document.getElementById("stat-services").textContent.trim() === "1"`},
		{"/infrastructure", "e2e-infrastructure", `document.querySelectorAll(".node").length === 3`},
		{"/snapshots", "e2e-snapshots", `!!document.querySelector("main h1")`},
		{"/notifications", "e2e-notifications", `!!document.getElementById("add-webhook")`},
		{"/admin", "e2e-admin", `document.querySelectorAll("#agent-log .agent-log div").length > 0`},
	} {
		b.OpenURL(home + p.path)
		b.WaitJS(p.name, p.ready)
		b.Shot(p.name)
	}
	if got := ui.JS[string](b, `document.getElementById("st-uihost").value`); got != localUIHost {
		t.Fatalf("the mesh's UI host is %q, this test maps %q", got, localUIHost)
	}

	// The admin page shows any agent's own log: pick the follower.
	if got, serving := ui.JS[string](b, `document.getElementById("log-node").value`), servedBy(b); got != serving {
		t.Errorf("the admin page's log is %s's, want the serving leader %s's", got, serving)
	}
	ui.JS[bool](b, fmt.Sprintf(`(() => { const s = document.getElementById("log-node"); s.value = %q; `+
		`s.dispatchEvent(new Event("change", {bubbles: true})); return true })()`, follower.ID))
	b.WaitJS("the follower's own log", fmt.Sprintf(`new URLSearchParams(location.search).get("node") === %q && `+
		`document.getElementById("agent-log-node").textContent.includes(%q) && !document.getElementById("agent-log-error") && `+
		`document.querySelectorAll("#agent-log .agent-log div").length > 0`, follower.ID, follower.ID))
	b.Shot("e2e-admin-follower-log")

	// Undeploy while a second tab watches the overview: its totals follow
	// without a reload.
	watch := c.Tab(t, home)
	watch.Open("/")
	watch.WaitJS("the overview with the sample", `document.getElementById("live-dot").classList.contains("on") && `+
		`document.getElementById("stat-services").textContent.trim() === "1" && document.getElementById("stat-healthy").textContent.trim() === "2"`)
	if got := servedBy(watch); got != leader.ID {
		t.Logf("leadership moved: the second tab on %s is served by %s; %s led at the start", home, got, leader.ID)
	}
	ui.JS[bool](watch, `window.__sameDocument = true`)
	b.OpenURL(home + servicePath)
	b.WaitJS("the service page", `!!document.getElementById("undeploy")`)
	b.ClickConfirm("undeploy", "#undeploy")
	b.WaitJS("the services page after the undeploy", `location.pathname === "/services" && document.body.innerText.includes("Undeployed")`)
	watch.WaitJSWithin(meshPatience, "the totals after the undeploy, live", `document.getElementById("stat-services").textContent.trim() === "0" && `+
		`document.getElementById("stat-healthy").textContent.trim() === "0" && window.__sameDocument === true`)
	watch.Shot("e2e-overview-after-undeploy")

	// On the UI host name the follower proxies to the leader: sign in
	// there too, and the pages are live through the proxy.
	viaHost := c.Tab(t, uiHostURL)
	viaHost.Open("/")
	signIn(viaHost, password)
	viaHost.WaitJS("the overview through the UI host", fmt.Sprintf(`location.origin === %q && location.pathname === "/" && `+
		`document.getElementById("live-dot").classList.contains("on") && document.body.innerText.includes("served by ")`, uiHostURL))
	viaHost.Shot("e2e-ui-host-proxied")

	// Kill the leader (SIGKILL, no goodbyes), the one leading now. The UI
	// is reached again through a follower: it sends the browser to the new
	// leader, or serves it through its proxy when the browser signed in on
	// the follower's own address.
	leader = m.leader("")
	if err := syscall.Kill(leader.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the leader %s (pid %d): %v", leader.ID, leader.PID, err)
	}
	newLeader := m.leader(leader.ID)
	var via meshNode
	for _, n := range m.status() {
		if n.ID != leader.ID && n.ID != newLeader.ID {
			via = n
		}
	}
	t.Logf("killed %s; %s leads; reaching the UI through %s", leader.ID, newLeader.ID, via.ID)
	b.OpenURL(via.UI + "/")
	alive := m.uiAddrs(leader.ID)
	b.WaitJSWithin(meshPatience, "the new leader's UI", fmt.Sprintf(`%s.includes(location.origin) && `+
		`(location.pathname === "/login" || !!document.getElementById("stat-services"))`, jsList(alive)))
	if ui.JS[string](b, `location.pathname`) == "/login" {
		// Cookies belong to a host: the new leader's address has none yet.
		// The same admin signs in there (users live in the replicated state).
		signIn(b, password)
	}
	b.WaitJS("the overview on the new leader", fmt.Sprintf(`location.pathname === "/" && `+
		`document.getElementById("stat-services").textContent.trim() === "0" && /served by node-/.test(document.body.innerText) && `+
		`!document.body.innerText.includes("served by %s")`, leader.ID))
	if got := servedBy(b); got != newLeader.ID {
		t.Logf("the overview after the failover is served by %s (%s was elected first)", got, newLeader.ID)
	}
	b.Shot("e2e-overview-after-failover")

	// On the UI host name nothing changes for the browser: the same
	// address, and the same session (every node checks it with the same
	// key), now served by the new leader.
	viaHost.Open("/")
	viaHost.WaitJSWithin(meshPatience, "the UI host after the failover, still signed in", fmt.Sprintf(`location.origin === %q && `+
		`location.pathname === "/" && /served by node-/.test(document.body.innerText) && !document.body.innerText.includes("served by %s")`, uiHostURL, leader.ID))
	viaHost.Shot("e2e-ui-host-after-failover")
}
