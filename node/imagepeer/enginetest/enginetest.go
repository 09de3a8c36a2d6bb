// Package enginetest starts private Docker engines for tests that need one
// engine per agent (images moving between nodes prove nothing on a shared
// engine, where every image is already "on every node"). Each engine is a
// dockerd from the host's binaries with its own data root, exec root, unix
// socket and pid file, no iptables rules, a default bridge of its own (a
// Linux bridge the kit makes, on a random 10.x.y.0/24, so containers get
// addresses the test reaches), and the vfs storage driver (no kernel
// mounts to share with the host's engine).
// Test-only: nothing the binary links imports it.
package enginetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/testkit"
)

// Engine is one private Docker engine.
type Engine struct {
	// Host is its address for runtime.Config.Host or DOCKER_HOST.
	Host string
	// Dir holds its data root, exec root, socket and log.
	Dir string
	// RT is a runtime connected to it (closed in t.Cleanup).
	RT *runtime.Runtime
}

// Start starts a private dockerd and stops it and removes its files in
// t.Cleanup. Without root or dockerd the test fails in CI and is skipped
// elsewhere.
func Start(t testing.TB) *Engine {
	t.Helper()
	dockerd := testkit.RequireTool(t, "dockerd")
	if os.Geteuid() != 0 {
		testkit.Unavailable(t, "root (to run private dockerd engines)", "run the tests as root")
	}
	// Short paths: containerd's sockets live under the exec root and a unix
	// socket path has at most 107 bytes.
	dir, err := os.MkdirTemp("", "dm-eng-")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(cfg, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "d.sock")
	// Never --bridge=none: a dockerd started so deletes the interface
	// docker0 at start (moby's removeDefaultBridgeInterface), which is the
	// host engine's bridge when the test shares its network namespace.
	bridge := makeBridge(t)
	cmd := exec.Command(dockerd, "--config-file", cfg, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "x"),
		"-H", "unix://"+sock, "--pidfile", filepath.Join(dir, "d.pid"), "--bridge="+bridge, "--iptables=false", "--ip6tables=false", "--ip-masq=false",
		"--storage-driver=vfs", "--log-level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	e := &Engine{Host: "unix://" + sock, Dir: dir}
	t.Cleanup(func() {
		if e.RT != nil {
			_ = e.RT.Close()
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("dockerd %s log:\n%s", dir, tail(string(b), 40))
			}
		}
		_ = os.RemoveAll(dir)
	})
	cfgRT := runtime.DefaultConfig()
	cfgRT.Host = e.Host
	cfgRT.PingTimeout = 2 * time.Second
	var lastErr error
	testkit.WaitForEvery(t, 60*time.Second, 200*time.Millisecond, "private dockerd "+dir+" to answer", func() bool {
		select {
		case <-done:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("dockerd exited: %s", tail(string(b), 20))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		e.RT, lastErr = runtime.NewWithConfig(ctx, cfgRT, slog.New(slog.DiscardHandler))
		return lastErr == nil
	})
	return e
}

// makeBridge makes a Linux bridge for one engine's default network and
// deletes it in t.Cleanup (registered first, so it runs after dockerd stops).
func makeBridge(t testing.TB) string {
	t.Helper()
	ip := testkit.RequireTool(t, "ip")
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "dmb" + hex.EncodeToString(b[:])
	cidr := fmt.Sprintf("10.%d.%d.1/24", 200+int(b[0])%50, b[1])
	for _, args := range [][]string{{"link", "add", "name", name, "type", "bridge"}, {"addr", "add", cidr, "dev", name}, {"link", "set", name, "up"}} {
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			_ = exec.Command(ip, "link", "del", name).Run()
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command(ip, "link", "del", name).Run() })
	return name
}

// String names the engine in logs.
func (e *Engine) String() string { return fmt.Sprintf("engine %s", e.Host) }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
