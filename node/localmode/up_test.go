package localmode

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/pki"
)

// Up watches the supervisor it started through its own child, never
// through /proc/PID/cmdline, which reads empty for a moment right after the
// exec: a child whose command line does not (yet) look like a supervisor
// is still waited for.
func TestWaitForEnvTrustsItsOwnChildNotItsCommandLine(t *testing.T) {
	dir := t.TempDir()
	exited := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		// This test process is no supervisor of dir: the old check said the
		// supervisor had stopped at the first look.
		_, err := waitForEnv(t.Context(), dir, os.Getpid(), exited)
		errc <- err
	}()
	ca, _, err := pki.NewCA("up-test", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caPath := filepath.Join(dir, CACertFile)
	if err := os.WriteFile(caPath, ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	env := "export DROPMESH_ADDR=127.0.0.2:9999\nexport DROPMESH_API_KEY=k\nexport DROPMESH_CACERT=" + caPath + "\n"
	if err := os.WriteFile(filepath.Join(dir, EnvFile), []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("waitForEnv: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waitForEnv did not see DIR/env")
	}

	// A child that exits before writing DIR/env is reported at once.
	close(exited)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := waitForEnv(ctx, t.TempDir(), os.Getpid(), exited); err == nil || !strings.Contains(err.Error(), "supervisor stopped") {
		t.Fatalf("exited supervisor: %v", err)
	}
}

// `local up` refuses, with a clear message and before starting anything,
// a mesh whose addresses another process holds.
func TestUpRefusesAddressesAnotherMeshHolds(t *testing.T) {
	prefix := fmt.Sprintf("127.%d.%d.", 10+os.Getpid()%200, 1+os.Getpid()/200%250)
	held, err := net.Listen("tcp", prefix+"2:9999")
	if err != nil {
		t.Skipf("cannot listen on %s2:9999 here: %v", prefix, err)
	}
	defer held.Close()
	base, err := strconv.Atoi(freePort(t))
	if err != nil {
		t.Fatal(err)
	}
	o := UpOptions{Dir: t.TempDir(), Nodes: 1, BasePort: base, IPPrefix: prefix, Out: &strings.Builder{}}
	err = Up(t.Context(), o)
	if err == nil || !strings.Contains(err.Error(), prefix+"2:9999 is already in use") || !strings.Contains(err.Error(), "--ip-prefix") {
		t.Fatalf("up on held addresses: %v", err)
	}
	if _, serr := os.Stat(filepath.Join(o.Dir, SupervisorLog)); serr == nil {
		t.Fatal("a supervisor was started on held addresses")
	}
	held.Close()
	if err := checkAddrsFree(t.Context(), o); err != nil {
		t.Fatalf("free addresses refused: %v", err)
	}
}

// TestNamesNote: `local up` says whether containers find each other by
// name (service discovery needs root on Linux).
func TestNamesNote(t *testing.T) {
	if got := namesNote(0, "linux"); !strings.Contains(got, "Compose name") {
		t.Errorf("as root: %q", got)
	}
	for _, c := range []struct {
		euid int
		goos string
	}{{1000, "linux"}, {0, "darwin"}} {
		if got := namesNote(c.euid, c.goos); !strings.HasPrefix(got, "off:") || !strings.Contains(got, "sudo") {
			t.Errorf("%d on %s: %q", c.euid, c.goos, got)
		}
	}
}
