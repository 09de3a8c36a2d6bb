package scripts

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/scripts/internal/inline"
)

func TestScriptsParse(t *testing.T) {
	for _, s := range []string{"install-agent.sh", "join.sh", "build-image.sh"} {
		if out, err := exec.Command("bash", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", s, err, out)
		}
	}
	for _, s := range []string{"metadata-env.sh", "metadata-guard.sh"} {
		if out, err := exec.Command("sh", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", s, err, out)
		}
	}
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		out, err := exec.Command(sc, "install-agent.sh", "join.sh", "build-image.sh", "metadata-env.sh", "metadata-guard.sh").CombinedOutput()
		if err != nil {
			t.Errorf("shellcheck: %v\n%s", err, out)
		}
	}
}

func TestEmbeddedScriptsAreTheFiles(t *testing.T) {
	if InstallAgentScript() != readFile(t, "install-agent.sh") || JoinScript() != readFile(t, "join.sh") {
		t.Fatal("the embedded scripts differ from the files")
	}
}

// The units, the metadata helper and the host guard are written by both
// scripts from here-documents; each copy must be its canonical file, which
// `go generate ./scripts` makes so (one source: edit the file, generate).
func TestScriptsCarryTheCanonicalUnits(t *testing.T) {
	read := func(f string) (string, error) {
		b, err := os.ReadFile(f)
		return string(b), err
	}
	for s, copies := range inline.Copies() {
		text := readFile(t, s)
		filled, err := inline.Fill(text, copies, read)
		if err != nil {
			t.Fatal(err)
		}
		if filled != text {
			t.Errorf("%s carries a copy that differs from its canonical file: run go generate ./scripts", s)
		}
		for _, c := range copies {
			if got, want := heredoc(t, text, c.Marker, c.End), readFile(t, c.File); got != want {
				t.Errorf("%s writes a %s that differs from %s", s, filepath.Base(c.File), c.File)
			}
		}
	}
	unit := readFile(t, "systemd/dropmesh-agent.service")
	for _, want := range []string{"EnvironmentFile=/etc/dropmesh/agent.env", "ExecStart=/usr/local/bin/dropmesh agent", "Restart=always"} {
		if !strings.Contains(unit, "\n"+want+"\n") {
			t.Errorf("the agent unit lacks %q", want)
		}
	}
}

func TestInstallAgentInstallsEverything(t *testing.T) {
	h := newHost(t)
	bin := fakeDropmesh(t, "v9.9.9")
	out, code := h.run(t, "install-agent.sh", "", "--binary", bin)
	if code != 0 {
		t.Fatalf("install-agent.sh: exit %d\n%s", code, out)
	}
	if h.file(t, "usr/local/bin/dropmesh") != readFile(t, bin) || h.mode(t, "usr/local/bin/dropmesh") != 0o755 {
		t.Fatal("the binary is not installed as /usr/local/bin/dropmesh, mode 0755")
	}
	if !strings.Contains(out, "binary: /usr/local/bin/dropmesh v9.9.9") {
		t.Fatalf("the installed binary's version is not shown:\n%s", out)
	}
	for path, want := range map[string]string{
		"etc/systemd/system/dropmesh-agent.service":                        readFile(t, "systemd/dropmesh-agent.service"),
		"etc/systemd/system/dropmesh-metadata.service":                     readFile(t, "systemd/dropmesh-metadata.service"),
		"usr/local/lib/dropmesh/metadata-env":                              readFile(t, "metadata-env.sh"),
		"usr/local/lib/dropmesh/metadata-guard":                            readFile(t, "metadata-guard.sh"),
		"etc/systemd/system/dropmesh-metadata-guard.service":               readFile(t, "systemd/dropmesh-metadata-guard.service"),
		"etc/systemd/system/dropmesh-agent.service.d/scrub-user-data.conf": readFile(t, "systemd/scrub-user-data.conf"),
	} {
		if h.file(t, path) != want {
			t.Errorf("/%s differs from its canonical file", path)
		}
	}
	for _, x := range []string{"metadata-env", "metadata-guard"} {
		if h.mode(t, "usr/local/lib/dropmesh/"+x) != 0o755 {
			t.Errorf("%s is not executable", x)
		}
	}
	for _, d := range []string{"etc/dropmesh", "var/lib/dropmesh"} {
		if m := h.mode(t, d); m != 0o700 {
			t.Errorf("/%s has mode %v, want 0700", d, m)
		}
	}
	var daemon struct {
		LogDriver string            `json:"log-driver"`
		LogOpts   map[string]string `json:"log-opts"`
	}
	if err := json.Unmarshal([]byte(h.file(t, "etc/docker/daemon.json")), &daemon); err != nil {
		t.Fatalf("daemon.json: %v", err)
	}
	if daemon.LogDriver != "json-file" || daemon.LogOpts["max-size"] == "" || daemon.LogOpts["max-file"] == "" {
		t.Fatalf("daemon.json does not rotate container logs: %+v", daemon)
	}
	if sys := h.file(t, "etc/sysctl.d/60-dropmesh.conf"); !strings.Contains(sys, "net.core.somaxconn = 65535") ||
		!strings.Contains(sys, "net.ipv4.ip_local_reserved_ports = 7946,7947,8080,9999") {
		t.Fatalf("sysctl file:\n%s", sys)
	}
	if lr := h.file(t, "etc/logrotate.d/nginx"); !strings.Contains(lr, "copytruncate") || !strings.Contains(lr, "/var/log/nginx/*.log") {
		t.Fatalf("nginx logrotate:\n%s", lr)
	}
	log := h.standInLog(t)
	for _, want := range []string{
		"apt-get -o DPkg::Lock::Timeout=300 -qq install -y --no-install-recommends ca-certificates curl docker.io nginx logrotate",
		"systemctl enable --quiet containerd.service docker.service",
		"systemctl restart docker.service",
		"systemctl disable --quiet --now nginx.service",
		"systemctl daemon-reload",
		"systemctl enable --quiet dropmesh-metadata.service dropmesh-agent.service",
		"systemctl enable --quiet dropmesh-metadata-guard.service",
		"systemctl restart dropmesh-metadata-guard.service",
		"sysctl --quiet --load=" + h.Root + "/etc/sysctl.d/60-dropmesh.conf",
	} {
		if !strings.Contains(log, want+"\n") {
			t.Errorf("the install did not run %q; stand-ins logged:\n%s", want, log)
		}
	}
	// The guard is in place before Docker (re)starts with its containers.
	if g, d := strings.Index(log, "systemctl restart dropmesh-metadata-guard.service"), strings.Index(log, "systemctl restart docker.service"); g < 0 || g > d {
		t.Errorf("docker restarted before the metadata guard:\n%s", log)
	}
	if unit := h.file(t, "etc/systemd/system/dropmesh-metadata-guard.service"); !strings.Contains(unit, "\nBefore=docker.service\n") ||
		!strings.Contains(unit, "\nRequiredBy=docker.service\n") {
		t.Errorf("the metadata guard does not come before (and with) Docker:\n%s", unit)
	}
	if strings.Contains(log, "systemctl start nginx") || strings.Contains(log, "enable --quiet nginx") {
		t.Errorf("nginx started as a system service:\n%s", log)
	}
	// policy-rc.d kept services from starting during the install, then went.
	if _, err := os.Stat(filepath.Join(h.Root, "usr/sbin/policy-rc.d")); !os.IsNotExist(err) {
		t.Errorf("policy-rc.d left behind (%v)", err)
	}

	// A second run changes nothing and restarts nothing.
	if err := os.Remove(h.Log); err != nil {
		t.Fatal(err)
	}
	out, code = h.run(t, "install-agent.sh", "", "--binary", bin)
	if code != 0 {
		t.Fatalf("second run: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "done (0 files changed)") || !strings.Contains(out, "packages: all present") {
		t.Fatalf("second run changed something:\n%s", out)
	}
	log = h.standInLog(t)
	for _, unwanted := range []string{"apt-get", "restart", "daemon-reload", "sysctl"} {
		if strings.Contains(log, unwanted) {
			t.Errorf("second run ran %q:\n%s", unwanted, log)
		}
	}
	// Without --binary, the installed binary stays.
	if out, code := h.run(t, "install-agent.sh", ""); code != 0 {
		t.Fatalf("run without --binary on an installed host: exit %d\n%s", code, out)
	}
}

func TestInstallAgentForSnapshotCleansTheImage(t *testing.T) {
	h := newHost(t)
	for path, content := range map[string]string{
		"etc/machine-id":                   "0123456789abcdef\n",
		"root/.ssh/authorized_keys":        "ssh-ed25519 AAAA builder\n",
		"etc/dropmesh/agent.env":           "DROPMESH_NODE_ID=x\n",
		"var/lib/dropmesh/raft/raft.db":    "state",
		"var/lib/apt/lists/deb.debian.org": "list",
	} {
		p := filepath.Join(h.Root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, code := h.run(t, "install-agent.sh", "", "--binary", fakeDropmesh(t, "v1"), "--for-snapshot")
	if code != 0 {
		t.Fatalf("install-agent.sh --for-snapshot: exit %d\n%s", code, out)
	}
	if h.file(t, "etc/machine-id") != "" {
		t.Error("machine-id not emptied")
	}
	for _, gone := range []string{"root/.ssh/authorized_keys", "etc/dropmesh/agent.env", "var/lib/dropmesh/raft", "var/lib/apt/lists/deb.debian.org"} {
		if _, err := os.Stat(filepath.Join(h.Root, gone)); !os.IsNotExist(err) {
			t.Errorf("/%s still there (%v)", gone, err)
		}
	}
	if _, err := os.Stat(filepath.Join(h.Root, "var/lib/dropmesh")); err != nil {
		t.Errorf("the data dir itself went: %v", err)
	}
	if log := h.standInLog(t); !strings.Contains(log, "cloud-init clean --logs") || !strings.Contains(log, "apt-get -qq clean") {
		t.Errorf("snapshot clean-up did not run:\n%s", log)
	}
}

func TestInstallAgentRefusesBadArgumentsAndChangesNothing(t *testing.T) {
	for _, args := range [][]string{
		{"--bogus"},
		{"--binary"},
		{"--binary", "/nonexistent/dropmesh"},
		{}, // nothing installed yet and no binary
	} {
		h := newHost(t)
		out, code := h.run(t, "install-agent.sh", "", args...)
		if code == 0 || !strings.Contains(out, "install-agent: error:") {
			t.Errorf("install-agent.sh %v: exit %d, output:\n%s", args, code, out)
		}
		if tree := h.tree(t); len(tree) != 0 {
			t.Errorf("install-agent.sh %v changed files: %v", args, tree)
		}
		if log := h.standInLog(t); log != "" {
			t.Errorf("install-agent.sh %v ran commands: %s", args, log)
		}
	}
}

func TestInstallAgentFailsWhenAptFails(t *testing.T) {
	h := newHost(t)
	h.writeStandIn(t, "apt-get", `echo "E: Could not get lock" >&2; exit 100`)
	out, code := h.run(t, "install-agent.sh", "", "--binary", fakeDropmesh(t, "v1"))
	if code != 100 || !strings.Contains(out, "E: Could not get lock") {
		t.Fatalf("install with a failing apt-get: exit %d\n%s", code, out)
	}
	if slices.Contains(h.tree(t), "usr/local/bin/dropmesh") {
		t.Fatal("the install went on after apt-get failed")
	}
}
