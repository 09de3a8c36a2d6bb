package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Without the rule Docker must not start: the unit fails, and docker.service
// requires it.
func TestMetadataGuardFailsWhenTheRuleCannotBeSet(t *testing.T) {
	h := newHost(t)
	h.writeStandIn(t, "iptables", `echo "iptables: Permission denied (you must be root)" >&2; exit 4`)
	if out, code := h.run(t, "metadata-guard.sh", "", "firewall"); code == 0 {
		t.Fatalf("the guard succeeded without its rule:\n%s", out)
	}
	if out, code := h.run(t, "metadata-guard.sh", ""); code != 2 || !strings.Contains(out, "usage:") {
		t.Fatalf("no command: exit %d\n%s", code, out)
	}
}

// The real iptables, in a network namespace of the test's own: two runs
// leave exactly the guard's chains and one hook of each, ahead of the
// RETURN that Docker appends when it starts (testdata/guard-rules.golden;
// -update rewrites it); the ports follow the agent's settings, and a
// third run with discovery off moves docker0's hooks to the shared chains
// and leaves the workspace bridges' alone. Bad settings are refused before
// anything changes. (TestHostGuardCutsContainersOffForReal and
// TestHostGuardKeepsWorkspacesApartForReal check what the rules do.)
func TestMetadataGuardWithTheRealIptables(t *testing.T) {
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("no iptables")
	}
	if err := exec.Command("unshare", "-rn", "true").Run(); err != nil {
		t.Skipf("no network namespace for the test: %v", err)
	}
	abs, err := filepath.Abs("metadata-guard.sh")
	if err != nil {
		t.Fatal(err)
	}
	script := `set -e; sh "$1" firewall; DROPMESH_UI_PORT=8443 sh "$1" firewall; iptables -w -A DOCKER-USER -j RETURN; iptables -w -S
echo ---; DROPMESH_DISCOVERY=off sh "$1" firewall >/dev/null; iptables -w -S INPUT; iptables -w -S DOCKER-USER`
	out, err := exec.Command("unshare", "-rn", "sh", "-c", script, "sh", abs).CombinedOutput()
	if err != nil {
		t.Skipf("iptables does not work in a network namespace here: %v\n%s", err, out)
	}
	rules := func(text string) string {
		var rs []string
		for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
			if strings.HasPrefix(l, "-A ") {
				rs = append(rs, l)
			}
		}
		return strings.Join(rs, "\n") + "\n"
	}
	first, off, _ := strings.Cut(string(out), "---")
	got := rules(first)
	golden := "testdata/guard-rules.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("rules after two runs differ from %s (run with -update and review):\n%s", golden, got)
	}
	if got, want := rules(off), strings.Join([]string{
		"-A INPUT -i docker0 -j DROPMESH-SHARED-INPUT",
		"-A INPUT -i br-+ -j DROPMESH-INPUT",
		"-A DOCKER-USER -i docker0 -j DROPMESH-SHARED-FORWARD",
		"-A DOCKER-USER -i br-+ -j DROPMESH-FORWARD",
		"-A DOCKER-USER -j RETURN",
	}, "\n")+"\n"; got != want {
		t.Fatalf("hooks with discovery off:\n%swant:\n%s", got, want)
	}
	for _, env := range []string{"DROPMESH_API_PORT=9999;reboot", "DROPMESH_EDGE_TLS_PORT=4x3", "DROPMESH_GUARD_NETS=10.0.0.0/8 -j ACCEPT",
		"DROPMESH_GUARD_ALLOW=10.1.2.3/32:5432:1", "DROPMESH_GUARD_ALLOW=10.1.2.3/32:", "DROPMESH_GUARD_ALLOW=db.internal",
		"DROPMESH_DISCOVERY=maybe"} {
		script := `set -e; sh "$1" firewall >/dev/null; iptables -w -S > /tmp/before.$$; if env "$2" sh "$1" firewall; then exit 0; fi; iptables -w -S | cmp -s - /tmp/before.$$ && echo unchanged; rm -f /tmp/before.$$; exit 3`
		out, err := exec.Command("unshare", "-rn", "sh", "-c", script, "sh", abs, env).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "metadata-guard: bad") || !strings.Contains(string(out), "unchanged") {
			t.Errorf("%s: %v\n%s", env, err, out)
		}
	}
}

func TestMetadataGuardScrubsCloudInitsCopiesOfTheUserData(t *testing.T) {
	h := newHost(t)
	inst := "var/lib/cloud/instances/312345678"
	secretFiles := []string{"user-data.txt", "user-data.txt.i", "cloud-config.txt", "obj.pkl"}
	kept := []string{"sem/config_write_files", "scripts/runcmd", "../../data/instance-id"}
	for _, f := range append(secretFiles, kept...) {
		p := filepath.Join(h.Root, inst, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("DROPMESH_CLUSTER_SECRET=0f0f\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, code := h.run(t, "metadata-guard.sh", "", "scrub")
	if code != 0 || !strings.Contains(out, "removed 4 cached copies") {
		t.Fatalf("scrub: exit %d\n%s", code, out)
	}
	for _, f := range secretFiles {
		if _, err := os.Stat(filepath.Join(h.Root, inst, f)); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", f, err)
		}
	}
	for _, f := range kept {
		if _, err := os.Stat(filepath.Join(h.Root, inst, f)); err != nil {
			t.Errorf("cloud-init's %s went: %v", f, err)
		}
	}
	// Nothing left: a second scrub (the agent's next start) is a no-op.
	if out, code := h.run(t, "metadata-guard.sh", "", "scrub"); code != 0 || !strings.Contains(out, "removed 0 cached copies") {
		t.Fatalf("second scrub: exit %d\n%s", code, out)
	}
}
