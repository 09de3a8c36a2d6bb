package testkit

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// childEnv marks the test binary run as a child by TestRequireTool*: the
// child test needs a tool that does not exist.
const childEnv = "TESTKIT_CHILD"

func TestChildNeedsAMissingTool(t *testing.T) {
	switch os.Getenv(childEnv) {
	case "":
		t.Skip("a child of TestRequireToolFailsInCIAndSkipsElsewhere")
	case "tool":
		RequireTool(t, "no-such-tool-dropmesh")
	case "wait":
		WaitFor(t, 50*time.Millisecond, "a condition that never holds", func() bool { return false })
	}
	t.Log("CHILD-RAN-ON")
}

// runChild runs TestChildNeedsAMissingTool in a child process with CI set
// to ci and returns its exit error and output.
func runChild(t *testing.T, mode, ci string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildNeedsAMissingTool$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "CI="+ci)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestRequireToolFailsInCIAndSkipsElsewhere(t *testing.T) {
	out, err := runChild(t, "tool", "true")
	if err == nil || !strings.Contains(out, "--- FAIL") || !strings.Contains(out, "no-such-tool-dropmesh is not available here") {
		t.Errorf("with CI=true a missing tool must fail the test; exit %v, output:\n%s", err, out)
	}
	if strings.Contains(out, "CHILD-RAN-ON") {
		t.Errorf("the test went on after the missing tool:\n%s", out)
	}
	out, err = runChild(t, "tool", "")
	if err != nil || !strings.Contains(out, "--- SKIP") || !strings.Contains(out, "install no-such-tool-dropmesh") {
		t.Errorf("outside CI a missing tool must skip the test with a hint; exit %v, output:\n%s", err, out)
	}
}

func TestRequireToolFindsOne(t *testing.T) {
	dir := t.TempDir()
	tool := filepath.Join(dir, "dm-fake-tool")
	if err := os.WriteFile(tool, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	if got := RequireTool(t, "dm-fake-tool"); got != tool {
		t.Fatalf("RequireTool = %q, want %q", got, tool)
	}
}

func TestWaitForSeesTheConditionAndFailsAtTheDeadline(t *testing.T) {
	calls := 0
	start := time.Now()
	WaitFor(t, 10*time.Second, "the third ask", func() bool { calls++; return calls == 3 })
	if calls != 3 || time.Since(start) > 5*time.Second {
		t.Fatalf("WaitFor returned after %d asks and %s", calls, time.Since(start))
	}
	out, err := runChild(t, "wait", "")
	if err == nil || !strings.Contains(out, "waiting for a condition that never holds") {
		t.Fatalf("a condition that never holds must fail the test, naming it; exit %v, output:\n%s", err, out)
	}
}

// serveUnix answers /_ping on a unix socket with status.
func serveUnix(t *testing.T, status int) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/_ping" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sock
}

func TestPingDocker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t.Setenv("DOCKER_HOST", "unix://"+serveUnix(t, http.StatusOK))
	if err := PingDocker(ctx); err != nil {
		t.Fatalf("an engine that answers: %v", err)
	}
	t.Setenv("DOCKER_HOST", "unix://"+serveUnix(t, http.StatusInternalServerError))
	if err := PingDocker(ctx); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("an engine that answers 500: %v", err)
	}
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "none.sock"))
	if err := PingDocker(ctx); err == nil {
		t.Fatal("no engine: no error")
	}
}
