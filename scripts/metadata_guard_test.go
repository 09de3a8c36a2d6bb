package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const metadataDrop = "-A DOCKER-USER -d 169.254.169.254/32 -j DROP"

// iptablesStandIn keeps the DOCKER-USER chain in a file, as iptables would:
// -N fails when the chain exists, -C when the rule is absent, -I adds it.
const iptablesStandIn = `echo "iptables $*" >>"$STANDIN_LOG"
rules="$STANDIN_STATE/rules"
[ "$1" = -w ] && shift
op="$1" chain="$2"
shift 2
case "$op" in
-N) [ ! -e "$rules.$chain" ] || exit 1; : >"$rules.$chain" ;;
-C) [ -e "$rules.$chain" ] && grep -qxF -- "-A $chain $*" "$rules.$chain" ;;
-I) [ -e "$rules.$chain" ] || exit 1; shift; { echo "-A $chain $*"; cat "$rules.$chain"; } >"$rules.tmp"; mv "$rules.tmp" "$rules.$chain" ;;
*) exit 2 ;;
esac`

func TestMetadataGuardDropsContainersTrafficOnce(t *testing.T) {
	h := newHost(t)
	h.writeStandIn(t, "iptables", iptablesStandIn)
	for i := range 2 {
		out, code := h.run(t, "metadata-guard.sh", "", "firewall")
		if code != 0 {
			t.Fatalf("run %d: exit %d\n%s", i+1, code, out)
		}
	}
	rules, err := os.ReadFile(filepath.Join(h.State, "rules.DOCKER-USER"))
	if err != nil || string(rules) != metadataDrop+"\n" {
		t.Fatalf("DOCKER-USER after two runs (%v):\n%s", err, rules)
	}
	if n := strings.Count(h.standInLog(t), "iptables -w -I DOCKER-USER 1 -d 169.254.169.254/32 -j DROP\n"); n != 1 {
		t.Fatalf("the rule was inserted %d times:\n%s", n, h.standInLog(t))
	}
}

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

// The real iptables, in a network namespace of the test's own: the rule
// lands at the top of DOCKER-USER, once, and stays ahead of the RETURN that
// Docker appends when it starts.
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
	script := `set -e; sh "$1" firewall; sh "$1" firewall; iptables -w -A DOCKER-USER -j RETURN; iptables -w -S DOCKER-USER`
	out, err := exec.Command("unshare", "-rn", "sh", "-c", script, "sh", abs).CombinedOutput()
	if err != nil {
		t.Skipf("iptables does not work in a network namespace here: %v\n%s", err, out)
	}
	var rules []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(l, "-A DOCKER-USER") {
			rules = append(rules, l)
		}
	}
	if len(rules) != 2 || rules[0] != metadataDrop || rules[1] != "-A DOCKER-USER -j RETURN" {
		t.Fatalf("DOCKER-USER holds %q, want the metadata drop once, first:\n%s", rules, out)
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
