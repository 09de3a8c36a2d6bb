package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// host is a directory standing in for a machine's root file system, with
// stand-ins for the commands that change a real system (they log their
// command lines), for running install-agent.sh and join.sh in tests.
type host struct {
	Root  string
	Bin   string
	Log   string
	State string
}

func newHost(t *testing.T) *host {
	t.Helper()
	dir := t.TempDir()
	h := &host{Root: filepath.Join(dir, "root"), Bin: filepath.Join(dir, "bin"), Log: filepath.Join(dir, "log"), State: filepath.Join(dir, "state")}
	for _, d := range []string{h.Root, h.Bin, h.State} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	standIns := map[string]string{
		"apt-get": `echo "apt-get $*" >>"$STANDIN_LOG"
install=no
for a in "$@"; do
	case "$a" in
	install) install=yes ;;
	-*|DPkg::*) ;;
	*) if [ $install = yes ]; then echo "$a" >>"$STANDIN_STATE/installed"; fi ;;
	esac
done`,
		"dpkg-query": `pkg="${@: -1}"
if [ -f "$STANDIN_STATE/installed" ] && grep -qx "$pkg" "$STANDIN_STATE/installed"; then
	echo "install ok installed"
else
	exit 1
fi`,
		"systemctl":  `echo "systemctl $*" >>"$STANDIN_LOG"`,
		"sysctl":     `echo "sysctl $*" >>"$STANDIN_LOG"`,
		"cloud-init": `echo "cloud-init $*" >>"$STANDIN_LOG"`,
		"docker":     `echo "docker $*" >>"$STANDIN_LOG"`,
		"sync":       `echo "sync" >>"$STANDIN_LOG"`,
	}
	for name, body := range standIns {
		h.writeStandIn(t, name, body)
	}
	return h
}

func (h *host) writeStandIn(t *testing.T, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(h.Bin, name), []byte("#!/bin/bash\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// run runs script (a file of this package) with args and stdin, under the
// stand-ins; it returns the combined output and the exit code.
func (h *host) run(t *testing.T, script, stdin string, args ...string) (string, int) {
	t.Helper()
	return h.runPath(t, script, stdin, h.Bin+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", args...)
}

func (h *host) runPath(t *testing.T, script, stdin, path string, args ...string) (string, int) {
	t.Helper()
	abs, err := filepath.Abs(script)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/bash", append([]string{abs}, args...)...)
	cmd.Env = []string{"PATH=" + path, "DROPMESH_ROOT=" + h.Root, "STANDIN_LOG=" + h.Log, "STANDIN_STATE=" + h.State, "LANG=C", "HOME=" + h.Root}
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("run %s: %v", script, err)
	}
	return string(out), 0
}

// standInLog is what the stand-ins logged.
func (h *host) standInLog(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(h.Log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// file reads a file under the root.
func (h *host) file(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.Root, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mode is the permission bits of a file under the root.
func (h *host) mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(filepath.Join(h.Root, path))
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// tree lists every path under the root.
func (h *host) tree(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(h.Root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(h.Root, p)
		if rel != "." {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fakeDropmesh writes a stand-in dropmesh binary that prints a version.
func fakeDropmesh(t *testing.T, version string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dropmesh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho "+version+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// readFile reads a file of this package.
func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// heredoc returns the body of the first here-document that follows marker
// in script, up to the line end.
func heredoc(t *testing.T, script, marker, end string) string {
	t.Helper()
	i := strings.Index(script, marker)
	if i < 0 {
		t.Fatalf("no %q in the script", marker)
	}
	rest := script[i+len(marker):]
	rest = rest[strings.Index(rest, "\n")+1:]
	j := strings.Index(rest, "\n"+end+"\n")
	if j < 0 {
		t.Fatalf("here-document after %q does not end with %s", marker, end)
	}
	return rest[:j+1]
}
