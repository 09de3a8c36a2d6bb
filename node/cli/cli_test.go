package cli

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/dropmesh/dropmesh/node/api/apitest"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/passseal"
	"github.com/dropmesh/dropmesh/node/testkit"
	"github.com/dropmesh/dropmesh/raftfsm"
)

func TestMissingConfigSaysWhatToDo(t *testing.T) {
	h := newHarness(t)
	h.vars = map[string]string{}
	r := h.run("services")
	if r.code != 1 || r.stdout != "" {
		t.Fatalf("code %d stdout %q", r.code, r.stdout)
	}
	for _, want := range []string{"dropmesh: ", "DROPMESH_ADDR", "DROPMESH_API_KEY", ". .dropmesh/env", "config.json"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q lacks %q", r.stderr, want)
		}
	}
	if strings.Contains(r.stderr, "goroutine") || strings.Contains(r.stderr, ".go:") {
		t.Fatalf("stack trace: %s", r.stderr)
	}
	// Only the key missing: the message says so.
	h.vars = map[string]string{"DROPMESH_ADDR": "127.0.0.1:1"}
	if r := h.run("nodes"); r.code != 1 || !strings.Contains(r.stderr, "no API key") || strings.Contains(r.stderr, "no agent address") {
		t.Fatalf("%+v", r)
	}
}

func TestConfigFileAndFlags(t *testing.T) {
	h := newHarness(t)
	addr, ca := h.vars["DROPMESH_ADDR"], h.vars["DROPMESH_CACERT"]
	h.vars = map[string]string{}
	cfg, _ := json.Marshal(FileConfig{Addr: addr, APIKey: testKey, CACert: ca})
	writeFile(t, h.cfgDir, "dropmesh/config.json", string(cfg))
	if r := h.run("nodes", "--json"); r.code != 0 {
		t.Fatalf("with the config file: %+v", r)
	}
	// Flags win over the environment and the file.
	h.vars = map[string]string{"DROPMESH_ADDR": "127.0.0.1:1", "DROPMESH_API_KEY": "wrong", "DROPMESH_CACERT": "/nonexistent/ca.pem"}
	if r := h.run("nodes", "--addr", "127.0.0.1:1,"+addr, "--api-key", testKey, "--cacert", ca); r.code != 0 {
		t.Fatalf("with flags: %+v", r)
	}
	writeFile(t, h.cfgDir, "dropmesh/config.json", `{"adress": "x"}`)
	h.vars = map[string]string{}
	if r := h.run("nodes"); r.code != 1 || !strings.Contains(r.stderr, "adress") {
		t.Fatalf("bad config file: %+v", r)
	}
}

// TestTheAPIsCertificateIsVerified: without the cluster CA the CLI does
// not talk to an agent (its certificate is not trusted by the system), and
// a CA file that cannot be read is a usage error.
func TestTheAPIsCertificateIsVerified(t *testing.T) {
	h := newHarness(t)
	ca := h.vars["DROPMESH_CACERT"]
	delete(h.vars, "DROPMESH_CACERT")
	if r := h.run("nodes"); r.code != 1 || !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("without the CA: %+v", r)
	}
	h.vars["DROPMESH_CACERT"] = filepath.Join(t.TempDir(), "missing.pem")
	if r := h.run("nodes"); r.code != 2 || !strings.Contains(r.stderr, "DROPMESH_CACERT") {
		t.Fatalf("with a missing CA file: %+v", r)
	}
	// Another cluster's CA does not vouch for this agent.
	_, otherCA := serveTLS(t, http.NotFoundHandler())
	h.vars["DROPMESH_CACERT"] = otherCA
	if r := h.run("nodes"); r.code != 1 || !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("with another CA: %+v", r)
	}
	h.vars["DROPMESH_CACERT"] = ca
	if r := h.run("nodes"); r.code != 0 {
		t.Fatalf("with the CA: %+v", r)
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	h := newHarness(t)
	for _, args := range [][]string{
		{"undeploy"},
		{"undeploy", "a", "b"},
		{"logs", "shop/pr;od/web"},
		{"health", "shop/prod"},
		{"nodes", "frob"},
		{"nodes", "remove", "Node_1"},
		{"deploy"},
		{"deploy", "-f", "x.yaml", "--timeout", "0s"},
		{"services", "--bogus"},
		{"completion", "tcsh"},
		{"logs", "shop/prod/web", "--since", "yesterday"},
		{"users", "add", "ann", "--role", "god"},
		{"events", "--limit", "0"},
	} {
		r := h.run(args...)
		if r.code != 2 {
			t.Errorf("%v: code %d, stderr %q", args, r.code, r.stderr)
			continue
		}
		if !strings.HasPrefix(r.stderr, "dropmesh: ") || r.stdout != "" {
			t.Errorf("%v: stdout %q stderr %q", args, r.stdout, r.stderr)
		}
	}
	if n := len(h.fake.Calls()); n != 0 {
		t.Fatalf("usage errors reached the cluster: %v", h.fake.Calls())
	}
}

func TestReadCommandsPrintPureJSON(t *testing.T) {
	h := newHarness(t)
	if r := h.run("deploy", "-f", writeFile(t, t.TempDir(), "web.yaml", webSpec), "--detach"); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	for _, args := range [][]string{
		{"status", "--json"}, {"nodes", "--json"}, {"services", "--json"}, {"workspaces", "--json"},
		{"health", "shop/prod/web", "--json"}, {"events", "--json"}, {"snapshots", "--json"}, {"users", "--json"}, {"webhooks", "--json"},
		{"settings", "--json"},
		{"state", "export"},
	} {
		r := h.run(args...)
		if r.code != 0 || r.stderr != "" {
			t.Errorf("%v: %+v", args, r)
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Errorf("%v: stdout is not JSON: %v\n%s", args, err, r.stdout)
		}
	}
	// The health document has the shape scripts rely on.
	r := h.run("health", "shop/prod/web", "--json")
	var health control.ServiceHealth
	if err := json.Unmarshal([]byte(r.stdout), &health); err != nil || health.Service != "shop/prod/web" || len(health.Instances) != 2 {
		t.Fatalf("health %+v %v", health, err)
	}
	var st Status
	r = h.run("status", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Cluster.Leader.ID != "node-1" || len(st.Nodes) != 3 || len(st.Services) != 1 {
		t.Fatalf("status %+v %v", st, err)
	}
}

func TestTextOutputs(t *testing.T) {
	h := newHarness(t)
	if r := h.run("deploy", "-f", writeFile(t, t.TempDir(), "web.yaml", webSpec), "--detach"); r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	for args, want := range map[string][]string{
		"status":               {"leader: node-1", "MEMBER", "3 nodes, 1 services"},
		"nodes":                {"node-1", "node-3", "active", "FAILED PINGS"},
		"services":             {"shop/prod/web", "0/2"},
		"workspaces":           {"default", "shop (prod)"},
		"health shop/prod/web": {"starting", "node-1", "node-2"},
		"events":               {"deploy.started", "shop/prod/web"},
		"users":                {"admin", "admin"},
	} {
		r := h.run(strings.Fields(args)...)
		if r.code != 0 {
			t.Errorf("%s: %+v", args, r)
			continue
		}
		for _, w := range want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("%s: output lacks %q:\n%s", args, w, r.stdout)
			}
		}
	}
}

// driveRollout plays the agents' part of a roll-out of deploy id, waiting
// after each step until the CLI printed what it shows.
func driveRollout(t *testing.T, h *harness, out *syncBuffer, id string, steps []struct{ node, phase, line string }) {
	t.Helper()
	var d raftfsm.Deploy
	h.fake.View(func(s *raftfsm.State) { d = *s.Deploys[id] })
	var ids []string
	h.fake.View(func(s *raftfsm.State) {
		for _, in := range s.ServiceInstances(d.Service) {
			ids = append(ids, in.ID)
		}
	})
	if err := h.fake.Advance(id, ids...); err != nil {
		t.Fatal(err)
	}
	instOf := map[string]string{}
	h.fake.View(func(s *raftfsm.State) {
		for _, in := range s.ServiceInstances(d.Service) {
			instOf[in.Node] = in.ID
		}
	})
	for _, st := range steps {
		gen := d.Generation - 1
		if st.phase == raftfsm.PhaseReady {
			gen = d.Generation
		}
		rep := raftfsm.InstanceReport{Instance: instOf[st.node], Generation: gen, State: "running", Phase: st.phase, Container: "c-" + st.node}
		if st.phase == raftfsm.PhaseFailed {
			rep.Error, rep.FailedGeneration = "health check: connection refused", d.Generation
		}
		if err := h.fake.Report(st.node, rep); err != nil {
			t.Fatal(err)
		}
		testkit.WaitFor(t, 10*time.Second, "the line "+st.line, func() bool { return strings.Contains(out.String(), st.line) })
	}
}

func deployID(t *testing.T, h *harness, n int) string {
	t.Helper()
	var id string
	testkit.WaitFor(t, 10*time.Second, "the deploy", func() bool {
		h.fake.View(func(s *raftfsm.State) {
			for k, d := range s.Deploys {
				if d.Generation == int64(n) && strings.HasSuffix(d.Service, "/shop/prod/web") {
					id = k
				}
			}
		})
		return id != ""
	})
	return id
}

func TestDeployShowsProgressAndWaits(t *testing.T) {
	h := newHarness(t)
	spec := writeFile(t, t.TempDir(), "web.yaml", webSpec)
	out, _, wait := h.start("deploy", "-f", spec, "--timeout", "1m")
	id := deployID(t, h, 1)
	testkit.WaitFor(t, 10*time.Second, "the first progress lines", func() bool { return strings.Contains(out.String(), "node-1  waiting") })
	driveRollout(t, h, out, id, []struct{ node, phase, line string }{
		{"node-1", raftfsm.PhasePulling, "node-1  pulling"},
		{"node-2", raftfsm.PhasePulling, "node-2  pulling"},
		{"node-1", "health 1/3", "node-1  health 1/3"},
		{"node-1", raftfsm.PhaseReady, "node-1  ready"},
		{"node-2", "health 1/3", "node-2  health 1/3"},
		{"node-2", raftfsm.PhaseReady, "node-2  ready"},
	})
	if err := h.fake.Finish(id, raftfsm.DeploySucceeded, ""); err != nil {
		t.Fatal(err)
	}
	r := wait()
	if r.code != 0 {
		t.Fatalf("deploy: %+v", r)
	}
	if !strings.Contains(r.stdout, "shop/prod/web generation 1 is live") || !strings.HasPrefix(r.stdout, "deploying shop/prod/web generation 1 ("+id+")") {
		t.Fatalf("output:\n%s", r.stdout)
	}
	// Without a terminal each change is printed once.
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	for i := 1; i < len(lines); i++ {
		if lines[i] == lines[i-1] {
			t.Fatalf("line repeated: %q\n%s", lines[i], r.stdout)
		}
	}
	if strings.Contains(r.stdout, "\x1b[") {
		t.Fatal("escape codes without a terminal")
	}
}

func TestDeployOnATerminalRewritesLines(t *testing.T) {
	h := newHarness(t)
	h.tty = true
	out, _, wait := h.start("deploy", "-f", writeFile(t, t.TempDir(), "web.yaml", webSpec))
	id := deployID(t, h, 1)
	driveRollout(t, h, out, id, []struct{ node, phase, line string }{
		{"node-1", raftfsm.PhasePulling, "node-1  pulling"},
		{"node-1", raftfsm.PhaseReady, "node-1  ready"},
		{"node-2", raftfsm.PhaseReady, "node-2  ready"},
	})
	if err := h.fake.Finish(id, raftfsm.DeploySucceeded, ""); err != nil {
		t.Fatal(err)
	}
	r := wait()
	if r.code != 0 || !strings.Contains(r.stdout, "\x1b[2A") || !strings.Contains(r.stdout, "\x1b[2K") {
		t.Fatalf("%+v", r)
	}
}

func TestDeployFailureExitsNonZeroWithTheReason(t *testing.T) {
	h := newHarness(t)
	spec := writeFile(t, t.TempDir(), "web.yaml", webSpec)
	// Generation 1 goes live, generation 2 fails and rolls back to it.
	if _, err := h.fake.Deploy(t.Context(), control.DeployRequest{Spec: mustSpec(t, webSpec)}); err != nil {
		t.Fatal(err)
	}
	if err := h.fake.Finish(deployID(t, h, 1), raftfsm.DeploySucceeded, ""); err != nil {
		t.Fatal(err)
	}
	out, _, wait := h.start("deploy", "-f", spec)
	id := deployID(t, h, 2)
	driveRollout(t, h, out, id, []struct{ node, phase, line string }{
		{"node-1", raftfsm.PhasePulling, "node-1  pulling"},
		{"node-1", raftfsm.PhaseFailed, "node-1  failed: health check: connection refused"},
	})
	if err := h.fake.Finish(id, raftfsm.DeployFailed, "node-1: health check: connection refused"); err != nil {
		t.Fatal(err)
	}
	r := wait()
	if r.code != 1 {
		t.Fatalf("code %d: %+v", r.code, r)
	}
	want := "dropmesh: deploy " + id + " of shop/prod/web failed: node-1: health check: connection refused; rolled back to generation 1\n"
	if r.stderr != want {
		t.Fatalf("stderr %q, want %q", r.stderr, want)
	}
}

func TestDeployTimeout(t *testing.T) {
	h := newHarness(t)
	r := h.run("deploy", "-f", writeFile(t, t.TempDir(), "web.yaml", webSpec), "--timeout", "300ms")
	if r.code != 1 || !strings.Contains(r.stderr, "still rolling out after 300ms") {
		t.Fatalf("%+v", r)
	}
}

func TestDeployDetachAndMultiDocument(t *testing.T) {
	h := newHarness(t)
	multi := "# two services\n---\n" + webSpec + "---\n# worker\nproject: shop\nservice: jobs\nimage: redis:7\n...\n"
	r := h.run("deploy", "-f", writeFile(t, t.TempDir(), "all.yaml", multi), "--detach")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	var order []string
	for _, c := range h.fake.Calls() {
		if c.Method == "Deploy" {
			order = append(order, c.Arg.(control.DeployRequest).Spec.Service)
		}
	}
	if !slices.Equal(order, []string{"web", "jobs"}) {
		t.Fatalf("deploy order %v", order)
	}
	if !strings.Contains(r.stdout, "(dep-1)") || !strings.Contains(r.stdout, "deploying shop/prod/jobs generation 1") {
		t.Fatalf("output %q", r.stdout)
	}
	r = h.run("deploy", "-f", writeFile(t, t.TempDir(), "one.json", `{"project":"shop","service":"api","image":"redis:7","port":6379}`), "--detach", "--json")
	var outcomes []DeployOutcome
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &outcomes) != nil || len(outcomes) != 1 || outcomes[0].Result.DeployID == "" {
		t.Fatalf("%+v", r)
	}
}

func TestDeployRefusesABadSpecBeforeSending(t *testing.T) {
	h := newHarness(t)
	for spec, want := range map[string]string{
		webSpec + "colour: blue\n":                                "colour",
		strings.Replace(webSpec, "replicas: 2", "replicas: x", 1): "replicas",
		"project: shop\nservice: wеb\nimage: redis:7\n":           "service",
		"# nothing\n": "no service spec",
	} {
		r := h.run("deploy", "-f", writeFile(t, t.TempDir(), "bad.yaml", spec))
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("%q: %+v", want, r)
		}
	}
	if h.fake.CallCount("Deploy") != 0 {
		t.Fatal("a bad spec was sent")
	}
	// What the cluster refuses comes back as its message.
	r := h.run("deploy", "-f", writeFile(t, t.TempDir(), "bad.yaml", strings.Replace(webSpec, "port: 8080", "port: 99999", 1)))
	if r.code != 1 || !strings.Contains(r.stderr, "port 99999") {
		t.Fatalf("%+v", r)
	}
}

func TestDeployUploadsALocalBuildDirectory(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	writeFile(t, dir, "app/Dockerfile", "FROM scratch\nCOPY main /main\n")
	writeFile(t, dir, "app/main.go", "package main\n")
	writeFile(t, dir, "app/secret.txt", "do not ship\n")
	writeFile(t, dir, "app/node_modules/x/index.js", "junk\n")
	writeFile(t, dir, "app/docs/keep.md", "keep\n")
	writeFile(t, dir, "app/.dockerignore", "# build junk\nsecret.txt\nnode_modules\n**/*.md\n!docs/keep.md\n")
	spec := writeFile(t, dir, "web.yaml", strings.Replace(webSpec, "image: 127.0.0.1:5000/shop/web:1.4", "build: ./app", 1))
	r := h.run("deploy", "-f", spec, "--detach")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	var digest string
	h.fake.View(func(s *raftfsm.State) {
		for _, svc := range s.Services {
			digest = svc.Spec.Build
		}
	})
	if raftfsm.ValidateContextDigest(digest) != nil {
		t.Fatalf("spec build %q", digest)
	}
	rc, _, err := h.fake.OpenContext(digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	gz, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
	for _, want := range []string{"Dockerfile", "main.go", ".dockerignore", "docs/keep.md"} {
		if !slices.Contains(names, want) {
			t.Errorf("context lacks %s: %v", want, names)
		}
	}
	for _, not := range []string{"secret.txt", "node_modules/", "node_modules/x/index.js"} {
		if slices.Contains(names, not) {
			t.Errorf("context holds ignored %s", not)
		}
	}
	// A build path that is not a directory fails before any deploy.
	r = h.run("deploy", "-f", writeFile(t, dir, "bad.yaml", strings.Replace(webSpec, "image: 127.0.0.1:5000/shop/web:1.4", "build: ./nothing", 1)))
	if r.code != 1 || !strings.Contains(r.stderr, "nothing") {
		t.Fatalf("%+v", r)
	}
}

func TestLogsFollowPrefixesEveryInstance(t *testing.T) {
	h := newHarness(t)
	res, err := h.fake.Deploy(t.Context(), control.DeployRequest{Spec: mustSpec(t, webSpec)})
	if err != nil {
		t.Fatal(err)
	}
	for i, node := range []string{"node-1", "node-2"} {
		if err := h.fake.Report(node, raftfsm.InstanceReport{Instance: res.Service + "#" + string(rune('0'+i)), Generation: 1, Container: "web-" + node, State: "running"}); err != nil {
			t.Fatal(err)
		}
	}
	h.fake.SetLogs("web-node-1", "GET / 200\n")
	h.fake.SetLogs("web-node-2", "GET /health 200\n")

	r := h.run("logs", "shop/prod/web", "--tail", "5")
	if r.code != 0 || r.stdout != "node-1 | GET / 200\nnode-2 | GET /health 200\n" {
		t.Fatalf("%+v", r)
	}
	r = h.run("logs", "shop/prod/web", "--tail", "5", "--json")
	want := `{"instance":"node-1","node":"node-1","container":"web-node-1","line":"GET / 200"}` + "\n" +
		`{"instance":"node-2","node":"node-2","container":"web-node-2","line":"GET /health 200"}` + "\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("logs --json: %+v", r)
	}

	out, _, wait := h.start("logs", "shop/prod/web", "-f", "--since", "10m")
	testkit.WaitFor(t, 10*time.Second, "both streams", func() bool {
		return strings.Contains(out.String(), "node-1 | GET / 200\n") && strings.Contains(out.String(), "node-2 | GET /health 200\n")
	})
	h.fake.AppendLogs("web-node-2", "ERROR boom\n")
	testkit.WaitFor(t, 10*time.Second, "the new line", func() bool { return strings.Contains(out.String(), "node-2 | ERROR boom\n") })
	h.fake.AppendLogs("web-node-1", "partial line without newline")
	h.fake.CloseLogs("web-node-1")
	testkit.WaitFor(t, 10*time.Second, "the last line of node-1", func() bool {
		return strings.Contains(out.String(), "node-1 | partial line without newline\n")
	})
	h.stop() // Ctrl-C ends the stream still open
	if r := wait(); r.code != 0 {
		t.Fatalf("%+v", r)
	}
}

func TestLogsOfAServiceWithoutContainers(t *testing.T) {
	h := newHarness(t)
	if _, err := h.fake.Deploy(t.Context(), control.DeployRequest{Spec: mustSpec(t, webSpec)}); err != nil {
		t.Fatal(err)
	}
	r := h.run("logs", "shop/prod/web")
	if r.code != 1 || !strings.Contains(r.stderr, "no container running yet") {
		t.Fatalf("%+v", r)
	}
	r = h.run("logs", "shop/prod/nothing")
	if r.code != 1 || !strings.Contains(r.stderr, "shop/prod/nothing") {
		t.Fatalf("%+v", r)
	}
}

func TestStateExportImportRoundTrip(t *testing.T) {
	a := newHarness(t)
	if r := a.run("deploy", "-f", writeFile(t, t.TempDir(), "web.yaml", webSpec), "--detach"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	if err := a.fake.PutWebhook(t.Context(), raftfsm.Webhook{ID: "hook-1", URL: "https://hooks.slack.com/services/T0/B0/hooksecret", Format: raftfsm.WebhookSlack}); err != nil {
		t.Fatal(err)
	}
	// Without --with-secrets: no secret at all, sealed or plain.
	r := a.run("state", "export")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	for _, word := range []string{"s3cret", "DB_PASSWORD", "sealed_secrets", "hooksecret", "hooks.slack.com", "password_hash", "$2"} {
		if strings.Contains(r.stdout, word) {
			t.Fatalf("the export without --with-secrets shows %q:\n%s", word, r.stdout)
		}
	}

	// With them: sealed with the passphrase, which import asks for.
	file := filepath.Join(t.TempDir(), "state.json")
	a.stdin = "short\n"
	if r := a.run("state", "export", "--with-secrets", "-o", file); r.code != 2 || !strings.Contains(r.stderr, "too short") {
		t.Fatalf("short passphrase: %+v", r)
	}
	a.stdin = "correct horse battery staple\n"
	r = a.run("state", "export", "--with-secrets", "-o", file)
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("export file %v %v", st, err)
	}
	data, _ := os.ReadFile(file)
	if strings.Contains(string(data), "s3cret") || strings.Contains(string(data), "DB_PASSWORD") || !strings.Contains(string(data), passseal.Kind) {
		t.Fatalf("the export with secrets is not sealed: %s", data)
	}

	b := newHarness(t)
	before := b.fake.StateJSON()
	b.stdin = "correct horse battery stapler\n"
	if r := b.run("state", "import", file); r.code != 1 || !strings.Contains(r.stderr, "wrong passphrase") {
		t.Fatalf("wrong passphrase: %+v", r)
	}
	b.stdin = string(data)
	if r := b.run("state", "import", "-"); r.code != 2 || !strings.Contains(r.stderr, "--passphrase-file") {
		t.Fatalf("sealed on stdin without a passphrase source: %+v", r)
	}
	if b.fake.CallCount("ImportState") != 0 || b.fake.StateJSON() != before {
		t.Fatal("a sealed document was imported without its passphrase")
	}
	plain, _, err := passseal.Open(data, []byte("correct horse battery staple"))
	if err != nil {
		t.Fatal(err)
	}
	bad := writeFile(t, t.TempDir(), "bad.json", strings.Replace(string(plain), `"kind": "dropmesh-state"`, `"kind": "other"`, 1))
	if r := b.run("state", "import", bad); r.code != 1 || !strings.Contains(r.stderr, "kind") {
		t.Fatalf("bad document: %+v", r)
	}
	if b.fake.CallCount("ImportState") != 0 {
		t.Fatal("a bad document was sent")
	}
	pf := writeFile(t, t.TempDir(), "pass", "correct horse battery staple\n")
	r = b.run("state", "import", file, "--passphrase-file", pf, "--json")
	var res raftfsm.ImportResult
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &res) != nil || len(res.Services) != 1 {
		t.Fatalf("%+v", r)
	}
	b.vars["DROPMESH_STATE_PASSPHRASE"] = "correct horse battery staple"
	r = b.run("state", "export", "--with-secrets")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	plain, _, err = passseal.Open([]byte(r.stdout), []byte("correct horse battery staple"))
	var doc raftfsm.ExportDocument
	if err != nil || json.Unmarshal(plain, &doc) != nil || len(doc.Services) != 1 || doc.Services[0].Secrets["DB_PASSWORD"] != "s3cret" {
		t.Fatalf("after import: %+v %v", r, err)
	}
}

func TestEventsFollow(t *testing.T) {
	h := newHarness(t)
	out, _, wait := h.start("events", "-f", "--json", "--kind", "deploy.")
	testkit.WaitFor(t, 10*time.Second, "the first read", func() bool { return h.fake.Index() > 0 })
	if _, err := h.fake.Deploy(t.Context(), control.DeployRequest{Spec: mustSpec(t, webSpec)}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "the deploy event", func() bool { return strings.Contains(out.String(), raftfsm.EventDeployStarted) })
	h.stop()
	r := wait()
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var ev raftfsm.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil || !strings.HasPrefix(ev.Kind, "deploy.") {
			t.Fatalf("line %q: %v", line, err)
		}
	}
}

func TestNodesUsersWorkspacesSnapshots(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nodes", "add", "--count", "2", "--region", "fra1"}, "adding node-4, node-5"},
		{[]string{"nodes", "reboot", "node-3"}, "rebooting node-3"},
		{[]string{"nodes", "remove", "node-3"}, "removing node-3"},
		{[]string{"workspaces", "create", "demo"}, "created workspace demo"},
		{[]string{"workspaces", "delete", "demo"}, "deleted workspace demo"},
		{[]string{"users", "add", "ann", "--role", "viewer", "--password-stdin"}, "saved user ann (viewer)"},
		{[]string{"users", "remove", "ann"}, "removed user ann"},
		{[]string{"snapshots", "create", "with-tools", "--context", filepath.Dir(writeFile(t, t.TempDir(), "Dockerfile", "FROM scratch\n"))}, "building snapshot with-tools"},
	} {
		h.stdin = "correct horse battery\n"
		r := h.run(tc.args...)
		if r.code != 0 || !strings.Contains(r.stdout, tc.want) {
			t.Errorf("%v: %+v", tc.args, r)
		}
	}
	r := h.run("snapshots")
	if r.code != 0 || !strings.Contains(r.stdout, "with-tools") || !strings.Contains(r.stdout, "building") {
		t.Fatalf("%+v", r)
	}
	// The cluster's refusal is the message.
	r = h.run("users", "remove", "admin")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "dropmesh: ") {
		t.Fatalf("%+v", r)
	}
}

func TestUndeployAndRestart(t *testing.T) {
	h := newHarness(t)
	if _, err := h.fake.Deploy(t.Context(), control.DeployRequest{Spec: mustSpec(t, webSpec)}); err != nil {
		t.Fatal(err)
	}
	if r := h.run("restart", "shop/prod/web"); r.code != 0 || r.stdout != "restarting shop/prod/web\n" {
		t.Fatalf("%+v", r)
	}
	if r := h.run("undeploy", "default/shop/prod/web"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	r := h.run("undeploy", "shop/prod/web")
	if r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("%+v", r)
	}
}

func TestCompletion(t *testing.T) {
	h := newHarness(t)
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := h.run("completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, "dropmesh") || len(r.stdout) < 500 {
			t.Errorf("%s: code %d, %d bytes", shell, r.code, len(r.stdout))
		}
	}
	if _, err := h.fake.Deploy(t.Context(), control.DeployRequest{Spec: mustSpec(t, webSpec)}); err != nil {
		t.Fatal(err)
	}
	// Service names complete from the cluster.
	r := h.run(cobra.ShellCompRequestCmd, "logs", "shop/")
	if r.code != 0 || !strings.Contains(r.stdout, "shop/prod/web") {
		t.Fatalf("%+v", r)
	}
}

func TestExitCodes(t *testing.T) {
	if ExitCode(nil) != 0 || ExitCode(errors.New("x")) != 1 || ExitCode(usagef("y")) != 2 || ExitCode(errors.New("unknown command \"x\" for \"dropmesh\"")) != 2 {
		t.Fatal("exit codes")
	}
}

func TestSplitDocuments(t *testing.T) {
	docs := splitDocuments([]byte("---\na: 1\n--- # second\nb: 2\r\n---\n# only a comment\n---\n\n"))
	if len(docs) != 2 || string(docs[0]) != "a: 1\n" || !strings.HasPrefix(string(docs[1]), "b: 2") {
		t.Fatalf("docs %q", docs)
	}
}

func mustSpec(t testing.TB, doc string) raftfsm.ServiceSpec {
	t.Helper()
	s, err := raftfsm.DecodeSpecBytes([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDeployComposeFile: a docker-compose file deploys through the CLI, its
// database first, with the dependency injected, the hosts from its label,
// and every key dropmesh does not honour named on stderr.
func TestDeployComposeFile(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	file := writeFile(t, dir, "compose.yaml", `name: shop
services:
  web:
    image: 127.0.0.1:5000/shop/web:1.4
    ports: ["8080:8080"]
    environment: {LOG_LEVEL: info}
    depends_on: [redis]
    labels: {dropmesh.hosts: "shop.example.com"}
    privileged: true
    deploy: {replicas: 2}
  redis:
    image: redis:7-alpine
`)
	r := h.run("deploy", "-f", file, "--detach")
	if r.code != 0 {
		t.Fatalf("deploy compose: %+v", r)
	}
	if !strings.Contains(r.stderr, "privileged") {
		t.Fatalf("the unsupported key is not named: %q", r.stderr)
	}
	var order []string
	for _, c := range h.fake.Calls() {
		if req, ok := c.Arg.(control.DeployRequest); ok && c.Method == "Deploy" {
			order = append(order, req.Spec.Service)
		}
	}
	if strings.Join(order, ",") != "redis,web" {
		t.Fatalf("deploy order %v, want the dependency first", order)
	}
	h.fake.View(func(s *raftfsm.State) {
		var web *raftfsm.Service
		for _, svc := range s.Services {
			if svc.Name == "web" {
				web = svc
			}
		}
		if web == nil || web.Spec.Replicas != 2 || web.Spec.Port != 8080 || !slices.Equal(web.Spec.Uses, []string{"redis"}) ||
			!slices.Equal(web.Spec.Hosts, []string{"shop.example.com"}) || web.Spec.Project != "shop" {
			t.Fatalf("web as deployed: %+v", web)
		}
	})

	// Standard input has no directory to resolve a Compose file against.
	h.stdin = "services:\n  web:\n    image: nginx\n"
	if r := h.run("deploy", "-f", "-", "--detach"); r.code == 0 || !strings.Contains(r.stderr, "standard input") {
		t.Fatalf("compose on stdin: %+v", r)
	}
}

func TestCertsPutListRemove(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	certPEM, keyPEM, err := apitest.SelfSignedPair("example.com", "*.example.com")
	if err != nil {
		t.Fatal(err)
	}
	cert, key := writeFile(t, dir, "origin.pem", certPEM), writeFile(t, dir, "origin.key", keyPEM)
	_, otherKey, err := apitest.SelfSignedPair("example.com")
	if err != nil {
		t.Fatal(err)
	}
	wrongKey := writeFile(t, dir, "other.key", otherKey)

	for _, bad := range [][]string{
		{"certs", "put", "exa;mple.com", "--cert", cert, "--key", key},
		{"certs", "put", "example.com", "--cert", cert},
		{"certs", "put", "example.com", "--cert", cert, "--key", wrongKey},
		{"certs", "put", "example.com", "--cert", filepath.Join(dir, "missing.pem"), "--key", key},
	} {
		if r := h.run(bad...); r.code == 0 || r.stderr == "" {
			t.Errorf("%v: %+v, want a refusal", bad, r)
		}
	}
	if n := h.fake.CallCount("PutOriginCert"); n != 1 { // only the mismatched pair reached the API
		t.Fatalf("%d puts reached the API", n)
	}
	if r := h.run("certs", "put", "example.com", "--cert", cert, "--key", key); r.code != 0 || !strings.Contains(r.stdout, "stored the certificate of example.com") {
		t.Fatalf("put: %+v", r)
	}
	r := h.run("certs")
	if r.code != 0 || !strings.Contains(r.stdout, "example.com") || !strings.Contains(r.stdout, "*.example.com") {
		t.Fatalf("list: %+v", r)
	}
	r = h.run("certs", "--json")
	if r.code != 0 || strings.Contains(r.stdout, "PRIVATE KEY") || !strings.Contains(r.stdout, `"zone": "example.com"`) {
		t.Fatalf("list --json: %+v", r)
	}
	h.fake.View(func(s *raftfsm.State) {
		oc := s.OriginCerts["example.com"]
		if oc == nil || strings.Contains(string(oc.Key), "PRIVATE KEY") || !oc.Key.Valid() {
			t.Fatalf("stored %+v: the key must be sealed", oc)
		}
	})
	if r := h.run("certs", "remove", "example.com"); r.code != 0 {
		t.Fatalf("remove: %+v", r)
	}
	if r := h.run("certs", "remove", "example.com"); r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("remove twice: %+v", r)
	}
}

func TestKeysShowAndRotate(t *testing.T) {
	h := newHarness(t)
	r := h.run("keys")
	if r.code != 0 || !strings.Contains(r.stdout, "primary: 000000000001 (derived from the cluster secret)") {
		t.Fatalf("keys: %+v", r)
	}
	r = h.run("keys", "rotate")
	if r.code != 0 || !strings.Contains(r.stdout, "rotating the gossip key to 000000000002") || !strings.Contains(r.stdout, "done: 000000000002 is the only gossip key") {
		t.Fatalf("keys rotate: %+v", r)
	}
	r = h.run("keys", "--json")
	var info control.GossipKeysInfo
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &info) != nil || info.Primary != "000000000002" || info.Derived {
		t.Fatalf("keys --json: %+v", r)
	}
	if r := h.run("keys", "rotate", "extra"); r.code == 0 {
		t.Fatalf("keys rotate with an argument: %+v", r)
	}
}

func TestCertsACME(t *testing.T) {
	h := newHarness(t)
	for _, bad := range [][]string{
		{"certs", "acme"},
		{"certs", "acme", "--enable", "--disable"},
		{"certs", "acme", "--enable", "--staging", "--directory", "https://ca.test/dir"},
		{"certs", "acme", "--enable", "--renew-before", "-1h"},
	} {
		if r := h.run(bad...); r.code == 0 || r.stderr == "" {
			t.Errorf("%v: %+v, want a refusal", bad, r)
		}
	}
	if n := h.fake.CallCount("SetACMEConfig"); n != 0 {
		t.Fatalf("%d bad requests reached the API", n)
	}
	if r := h.run("certs", "acme", "--enable", "--staging", "--email", "ops@example.com"); r.code != 0 {
		t.Fatalf("enable: %+v", r)
	}
	h.fake.View(func(s *raftfsm.State) {
		if c := s.ACME.Config; !c.Enabled || c.Directory != raftfsm.LetsEncryptStagingDirectory || c.Email != "ops@example.com" {
			t.Fatalf("config: %+v", c)
		}
	})
	r := h.run("certs")
	if r.code != 0 || !strings.Contains(r.stdout, "ACME: "+raftfsm.LetsEncryptStagingDirectory) {
		t.Fatalf("list: %+v", r)
	}
	if r := h.run("certs", "acme", "--enable", "--directory", "http://insecure.test/dir"); r.code == 0 || !strings.Contains(r.stderr, "https") {
		t.Fatalf("an http directory: %+v", r)
	}
	if r := h.run("certs", "acme", "--disable"); r.code != 0 {
		t.Fatalf("disable: %+v", r)
	}
	if r := h.run("certs", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"enabled": false`) {
		t.Fatalf("json: %+v", r)
	}
}
