// Package guardtest is a test kit: a guarded host, a Docker engine of its
// own running in a network namespace of the test's own with the host guard
// (scripts/metadata-guard.sh) applied there, so that tests can attack the
// real rules with real containers without touching the machine's
// iptables. Only tests import it.
//
// The namespace holds the engine's bridges, its iptables rules (Docker's
// and the guard's) and a stand-in private address (PrivateIP, on its
// loopback). Containers of that engine live behind it; the test process
// itself stays in the machine's namespace, so code that must run "on the
// host" (an agent, discovery) runs in a child process started with
// Host.Command.
package guardtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/dropmesh/dropmesh/node/testkit"
	"github.com/dropmesh/dropmesh/scripts"
)

// PrivateIP is the guarded host's stand-in private (VPC) address.
const PrivateIP = "10.99.0.1"

// EnvInside is set (to PrivateIP) in the environment of a process that
// Host.Command starts inside the guarded host.
const EnvInside = "DROPMESH_TEST_GUARDED_HOST"

// Host is a running guarded host.
type Host struct {
	// Netns is the path of the network namespace (/run/netns/NAME).
	Netns string
	// DockerHost is the engine's address, for DOCKER_HOST.
	DockerHost string
	// GuardOutput is what metadata-guard firewall printed.
	GuardOutput string
}

// Inside reports whether this process runs inside a guarded host (started
// by Host.Command).
func Inside() bool { return os.Getenv(EnvInside) != "" }

// Start makes the namespace, starts dockerd in it (its own data and exec
// roots, vfs storage), waits until it answers, and applies the host guard
// with the given environment (DROPMESH_* settings). Everything goes in
// t.Cleanup. Without root, dockerd, nsenter or network namespaces the test
// is skipped (failed under CI=true).
func Start(t testing.TB, guardEnv ...string) *Host {
	t.Helper()
	if os.Geteuid() != 0 {
		testkit.Unavailable(t, "root (network namespaces and a Docker engine of the test's own)", "run the tests as root")
	}
	for _, tool := range []string{"ip", "nsenter", "dockerd", "iptables"} {
		testkit.RequireTool(t, tool)
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "dmguard-" + hex.EncodeToString(b[:])
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		testkit.Unavailable(t, fmt.Sprintf("network namespaces (%v: %s)", err, out), "run the tests as root on Linux")
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	h := &Host{Netns: filepath.Join("/run/netns", name)}
	h.in(t, "ip", "link", "set", "lo", "up")
	// On the namespace's loopback: the same local address to the routing
	// (kernels without the dummy module have no other place for it).
	h.in(t, "ip", "addr", "add", PrivateIP+"/32", "dev", "lo")

	// Short paths: containerd's socket lives under the exec root, and a
	// unix socket's path has at most 107 bytes.
	dir, err := os.MkdirTemp("", "dmg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	cfg := fmt.Sprintf(`{"data-root": %q, "exec-root": %q, "pidfile": %q, "storage-driver": "vfs", "hosts": [%q], "bip": "172.31.254.1/24", "log-level": "warn"}`,
		filepath.Join(dir, "data"), filepath.Join(dir, "exec"), filepath.Join(dir, "dockerd.pid"), "unix://"+filepath.Join(dir, "d.sock"))
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	// nsenter --net keeps the machine's mount namespace (dockerd needs its
	// cgroup mounts, which `ip netns exec` would hide).
	cmd := exec.Command("nsenter", "--net="+h.Netns, "dockerd", "--config-file", filepath.Join(dir, "daemon.json"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done); logf.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	h.DockerHost = "unix://" + filepath.Join(dir, "d.sock")
	cli, err := client.NewClientWithOpts(client.WithHost(h.DockerHost), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	testkit.WaitFor(t, time.Minute, "the guarded host's dockerd to answer", func() bool {
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Fatalf("dockerd ended:\n%s", log)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := cli.Ping(ctx)
		return err == nil
	})

	script := filepath.Join(dir, "metadata-guard")
	if err := os.WriteFile(script, []byte(scripts.HostGuardScript()), 0o755); err != nil {
		t.Fatal(err)
	}
	guard := exec.Command("nsenter", "--net="+h.Netns, "sh", script, "firewall")
	guard.Env = append(os.Environ(), guardEnv...)
	out, err := guard.CombinedOutput()
	if err != nil {
		t.Fatalf("metadata-guard firewall: %v\n%s", err, out)
	}
	h.GuardOutput = string(out)
	return h
}

// in runs a command in the namespace, failing the test on an error.
func (h *Host) in(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + h.Netns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Command returns a command that runs this test binary inside the guarded
// host, running only the tests matched by run, with DOCKER_HOST set to the
// host's engine and EnvInside set.
func (h *Host) Command(ctx context.Context, run string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "nsenter", "--net="+h.Netns, os.Args[0], "-test.run", run, "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+h.DockerHost, EnvInside+"="+PrivateIP)
	return cmd
}

// Unguard removes the guard's hooks (its chains stay, unreached), so that a
// test inside the host can show that what it saw blocked is blocked by the
// guard and not by Docker or the test's own network. Only a process inside
// the host (Inside) may call it.
func Unguard(t testing.TB) {
	t.Helper()
	if !Inside() {
		t.Fatal("guardtest.Unguard outside a guarded host would change the machine's iptables")
	}
	for _, chain := range []string{"INPUT", "DOCKER-USER"} {
		out, err := exec.Command("iptables", "-w", "-S", chain).CombinedOutput()
		if err != nil {
			t.Fatalf("iptables -S %s: %v\n%s", chain, err, out)
		}
		for _, rule := range strings.Split(string(out), "\n") {
			if !strings.HasPrefix(rule, "-A "+chain+" ") || !strings.Contains(rule, "-j DROPMESH-") {
				continue
			}
			args := append([]string{"-w", "-D"}, strings.Fields(strings.TrimPrefix(rule, "-A "))...)
			if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
				t.Fatalf("iptables %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	}
}
