package localmode

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// process is a live process a test started, reaped as soon as it exits (a
// zombie would still answer kill(pid, 0)).
type process struct {
	pid  int
	done chan struct{}
}

// startProcess starts name with args and extra environment in its own
// process group, which the test kills at its end.
func startProcess(t *testing.T, env []string, name string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		<-p.done
	})
	return p
}

func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *process) waitExit(t *testing.T, what string) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s (pid %d) still runs", what, p.pid)
	}
}

// A stale supervisor.pid or local.json must never make `local down` signal
// a process that is not this mesh's: pids get reused.
func TestDownSignalsOnlyTheMeshsOwnProcesses(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(t.TempDir(), "other-mesh")
	// Long-lived stand-ins; `sleep 600; :` keeps sh from exec'ing sleep, so
	// the command line stays the one given here.
	const script = "sleep 600; :"
	unrelated := startProcess(t, nil, "sleep", "600")
	lookalike := startProcess(t, nil, "sh", "-c", script, "agent") // "agent" on its command line, no mesh
	otherAgent := startProcess(t, []string{"DROPMESH_DATA_DIR=" + filepath.Join(other, "node-2")}, "sh", "-c", script, "agent")
	leftAgent := startProcess(t, []string{"DROPMESH_DATA_DIR=" + filepath.Join(dir, "node-3")}, "sh", "-c", script, "agent")
	otherSupervisor := startProcess(t, nil, "sh", "-c", script, "dropmesh", "local", "supervise", "--dir", other)
	ownSupervisor := startProcess(t, nil, "sh", "-c", script, "dropmesh", "local", "supervise", "--dir", dir, "--nodes", "3")

	st := State{Nodes: []NodeStatus{{ID: "node-1", PID: lookalike.pid}, {ID: "node-2", PID: otherAgent.pid}, {ID: "node-3", PID: leftAgent.pid}}}
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, StateFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	writePID := func(pid int) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, PIDFile), []byte(strconv.Itoa(pid)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	down := func() {
		t.Helper()
		var out bytes.Buffer
		if err := Down(context.Background(), dir, &out); err != nil {
			t.Fatalf("local down: %v\n%s", err, out.String())
		}
	}

	// 1. The pid file names an unrelated process, then another mesh's
	// supervisor: down stops neither, nor the agents that are not this
	// mesh's, and takes no process for this mesh's supervisor.
	for _, p := range []*process{unrelated, otherSupervisor} {
		writePID(p.pid)
		if got := supervisorPID(dir); got != 0 {
			t.Fatalf("supervisorPID took pid %d for this mesh's supervisor", got)
		}
		down()
	}
	for what, p := range map[string]*process{"the unrelated process": unrelated, "another mesh's supervisor": otherSupervisor,
		"a process with agent on its command line": lookalike, "another mesh's agent": otherAgent} {
		if !p.running() {
			t.Errorf("local down killed %s (pid %d)", what, p.pid)
		}
	}
	// An agent of this mesh that outlived its supervisor is stopped.
	leftAgent.waitExit(t, "the agent this mesh left behind")

	// 2. The pid file names this mesh's supervisor: it is recognised and stopped.
	writePID(ownSupervisor.pid)
	if got := supervisorPID(dir); got != ownSupervisor.pid {
		t.Fatalf("supervisorPID = %d, want this mesh's supervisor %d", got, ownSupervisor.pid)
	}
	down()
	ownSupervisor.waitExit(t, "this mesh's supervisor")
	if !unrelated.running() || !otherSupervisor.running() {
		t.Fatal("stopping this mesh's supervisor killed another process")
	}
}
