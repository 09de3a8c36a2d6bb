// Package testkit holds the helpers every test package of the agent shares:
// RequireTool and RequireDocker, which decide whether a test that needs a
// program or the Docker engine runs, and WaitFor, the one way a test waits
// for a condition. Only test files and the test-only kits
// (node/runtime/runtimetest) import it, so the agent's binary never links
// it; it keeps no state and starts nothing.
//
// A missing tool fails the test when CI=true, because a CI run that skips
// the browser, nginx or Docker tests proves nothing; elsewhere it skips the
// test with the command that installs the tool.
package testkit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// installHint says how to get each tool the tests use (Debian packages,
// or `scripts/dev.sh deps`, which installs them all).
func installHint(name string) string {
	switch name {
	case "nginx":
		return "apt-get install nginx-light, or scripts/dev.sh deps"
	case "chromium":
		return "apt-get install chromium (or set DROPMESH_CHROMIUM), or scripts/dev.sh deps"
	case "wrk":
		return "apt-get install wrk, or scripts/dev.sh deps"
	case "doctl":
		return "scripts/dev.sh deps (go install github.com/digitalocean/doctl/cmd/doctl into $(go env GOPATH)/bin)"
	case "docker":
		return "install Docker Engine (https://docs.docker.com/engine/install/) and start it"
	}
	return "install " + name
}

// InCI reports whether the tests run in CI ($CI is "true" or "1"), where a
// missing tool is a failure, not a reason to skip.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1"
}

// Unavailable ends a test that cannot run here because what is missing:
// it fails the test in CI and skips it elsewhere, with the install hint.
func Unavailable(t testing.TB, what, install string) {
	t.Helper()
	msg := fmt.Sprintf("%s is not available here: %s", what, install)
	if InCI() {
		t.Fatalf("%s (CI=true: a test that needs it must run)", msg)
	}
	t.Skip(msg)
}

// searchDirs are looked at after $PATH: nginx lives in /usr/sbin, which a
// non-root PATH lacks, and `go install` puts doctl in GOPATH/bin.
func searchDirs() []string {
	dirs := []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin"}
	if gp := os.Getenv("GOPATH"); gp != "" {
		dirs = append(dirs, filepath.Join(filepath.SplitList(gp)[0], "bin"))
	} else if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	return dirs
}

// LookTool is the path of the named program: on $PATH, else in the usual
// system and Go directories; ok is false when there is none.
func LookTool(name string) (path string, ok bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, d := range searchDirs() {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// RequireTool returns the path of the named program the test needs
// (nginx, chromium, wrk, doctl, ...); without it the test fails in CI and
// is skipped elsewhere with how to install it.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	if p, ok := LookTool(name); ok {
		return p
	}
	Unavailable(t, name, installHint(name))
	return ""
}

// ErrNoDocker: no Docker engine answered its ping.
var ErrNoDocker = errors.New("no Docker engine answered")

// PingDocker asks the Docker engine ($DOCKER_HOST, else the standard unix
// socket) for its /_ping, as the Docker client would.
func PingDocker(ctx context.Context) error {
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	tr := &http.Transport{}
	base := ""
	switch {
	case strings.HasPrefix(host, "unix://"):
		sock := strings.TrimPrefix(host, "unix://")
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
		base = "http://docker"
	case strings.HasPrefix(host, "tcp://"):
		base = "http://" + strings.TrimPrefix(host, "tcp://")
	default:
		return fmt.Errorf("%w: DOCKER_HOST %q is neither unix:// nor tcp://", ErrNoDocker, host)
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/_ping", nil)
	if err != nil {
		return fmt.Errorf("%w at %s: %v", ErrNoDocker, host, err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("%w at %s: %v", ErrNoDocker, host, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w at %s: /_ping answered %s", ErrNoDocker, host, resp.Status)
	}
	return nil
}

// RequireDocker makes sure the Docker engine answers; without one the test
// fails in CI and is skipped elsewhere.
func RequireDocker(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := PingDocker(ctx); err != nil {
		Unavailable(t, fmt.Sprintf("a Docker engine (%v)", err), installHint("docker"))
	}
}

// WaitFor waits until cond is true, for at most timeout, and fails the test
// naming what it waited for when it is not. It asks every 10 ms: often
// enough that a benchmark timing the wait is off by 10 ms at most.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	WaitForEvery(t, timeout, 10*time.Millisecond, what, cond)
}

// WaitForEvery is WaitFor asking every interval, for a condition that is
// costly to ask (one that starts a process or calls a whole mesh).
func WaitForEvery(t testing.TB, timeout, every time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			if cond() { // the last ask, made at the deadline
				return
			}
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}
