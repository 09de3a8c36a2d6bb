package bootstrap

import (
	"archive/tar"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/node/testkit"
)

// TestAgentImageBuildsWithoutPulling builds the agent image the way the
// chaos suite does (scripts/build-image.sh: the static binary into FROM
// scratch, no image pulled) and runs `IMAGE version`.
func TestAgentImageBuildsWithoutPulling(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the whole binary")
	}
	docker := testkit.RequireTool(t, "docker")
	testkit.RequireDocker(t)
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	version := "test-" + hex.EncodeToString(b)
	tag := "dropmesh-image-test:" + version
	t.Cleanup(func() { _ = exec.Command(docker, "rmi", "-f", tag).Run() })

	build := exec.Command(filepath.Join(repo, "scripts/build-image.sh"), "--tag", tag, "--version", version)
	out, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("build-image.sh: %v\n%s", err, out)
	}
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); lines[len(lines)-1] != tag {
		t.Fatalf("build-image.sh did not print the tag last:\n%s", out)
	}
	if strings.Contains(string(out), "Pulling") {
		t.Fatalf("the build pulled an image:\n%s", out)
	}
	run, err := exec.Command(docker, "run", "--rm", "--network", "none", tag, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("docker run %s version: %v\n%s", tag, err, run)
	}
	if got := strings.TrimSpace(string(run)); got != version {
		t.Fatalf("docker run %s version printed %q, want %q", tag, got, version)
	}

	// The file system: the binary, CA certificates, a sticky /tmp and a
	// private data dir, nothing else.
	id, err := exec.Command(docker, "create", tag).Output()
	if err != nil {
		t.Fatal(err)
	}
	cid := strings.TrimSpace(string(id))
	t.Cleanup(func() { _ = exec.Command(docker, "rm", "-f", cid).Run() })
	exp := exec.Command(docker, "export", cid)
	pipe, err := exp.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(); err != nil {
		t.Fatal(err)
	}
	modes := map[string]int64{}
	tr := tar.NewReader(pipe)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		modes[strings.TrimSuffix(h.Name, "/")] = h.Mode
	}
	if err := exp.Wait(); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int64{"tmp": 0o1777, "var/lib/dropmesh": 0o700, "usr/local/bin/dropmesh": 0o755, "etc/ssl/certs/ca-certificates.crt": 0o644} {
		got, ok := modes[path]
		if !ok {
			t.Errorf("/%s is not in the image", path)
		} else if got&0o7777 != want {
			t.Errorf("/%s has mode %o, want %o", path, got&0o7777, want)
		}
	}
}
