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
// RETURN that Docker appends when it starts; the ports follow the agent's
// settings. (TestHostGuardCutsContainersOffForReal checks what they do.)
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
	script := `set -e; sh "$1" firewall; DROPMESH_UI_PORT=8443 sh "$1" firewall; iptables -w -A DOCKER-USER -j RETURN; iptables -w -S`
	out, err := exec.Command("unshare", "-rn", "sh", "-c", script, "sh", abs).CombinedOutput()
	if err != nil {
		t.Skipf("iptables does not work in a network namespace here: %v\n%s", err, out)
	}
	var rules []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(l, "-A ") {
			rules = append(rules, l)
		}
	}
	want := []string{
		"-A INPUT -i br-+ -j DROPMESH-INPUT",
		"-A INPUT -i docker0 -j DROPMESH-INPUT",
		"-A DOCKER-USER -i br-+ -j DROPMESH-FORWARD",
		"-A DOCKER-USER -i docker0 -j DROPMESH-FORWARD",
		"-A DOCKER-USER -j RETURN",
		"-A DROPMESH-FORWARD -d 169.254.169.254/32 -j DROP",
		"-A DROPMESH-FORWARD -o docker0 -j RETURN",
		"-A DROPMESH-FORWARD -o br-+ -j RETURN",
		"-A DROPMESH-FORWARD -d 10.0.0.0/8 -p tcp -m multiport --dports 7946,7947,7948,9999,8443 -j DROP",
		"-A DROPMESH-FORWARD -d 172.16.0.0/12 -p tcp -m multiport --dports 7946,7947,7948,9999,8443 -j DROP",
		"-A DROPMESH-FORWARD -d 192.168.0.0/16 -p tcp -m multiport --dports 7946,7947,7948,9999,8443 -j DROP",
		"-A DROPMESH-FORWARD -d 100.64.0.0/10 -p tcp -m multiport --dports 7946,7947,7948,9999,8443 -j DROP",
		"-A DROPMESH-FORWARD -d 10.0.0.0/8 -p udp -m udp --dport 7946 -j DROP",
		"-A DROPMESH-FORWARD -d 172.16.0.0/12 -p udp -m udp --dport 7946 -j DROP",
		"-A DROPMESH-FORWARD -d 192.168.0.0/16 -p udp -m udp --dport 7946 -j DROP",
		"-A DROPMESH-FORWARD -d 100.64.0.0/10 -p udp -m udp --dport 7946 -j DROP",
		"-A DROPMESH-INPUT -d 169.254.169.254/32 -j DROP",
		"-A DROPMESH-INPUT -p tcp -m multiport --dports 7946,7947,7948,9999,8443 -j DROP",
		"-A DROPMESH-INPUT -p udp -m udp --dport 7946 -j DROP",
	}
	if strings.Join(rules, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rules after two runs:\n%s\nwant:\n%s", strings.Join(rules, "\n"), strings.Join(want, "\n"))
	}
	// A bad port list is refused before anything changes.
	if out, err := exec.Command("unshare", "-rn", "env", "DROPMESH_API_PORT=9999;reboot", "sh", abs, "firewall").CombinedOutput(); err == nil || !strings.Contains(string(out), "bad port list") {
		t.Fatalf("a bad port list: %v\n%s", err, out)
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
