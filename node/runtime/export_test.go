package runtime

// What the package's external tests (package runtime_test, which use the
// test kit node/runtime/runtimetest and so cannot be internal: the kit
// imports this package) need of its insides. Compiled only into tests.

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// Docker is the runtime's Docker API client, for a test that does
// something beside the Runtime (build a hostile base image, inspect).
func (r *Runtime) Docker() *client.Client { return r.cli }

// PendingExitWatchers is how many exit watchers the runtime has running.
func (r *Runtime) PendingExitWatchers() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.exits)
}

// DeadRuntime is a Runtime whose daemon address answers nothing: a call
// that reaches Docker fails with a connection error, so a test can tell
// input refused up front from input sent to the daemon.
func DeadRuntime(t testing.TB) *Runtime {
	cli, err := client.NewClientWithOpts(client.WithHost("tcp://127.0.0.1:1"), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	base, cancel := context.WithCancel(context.Background())
	r := &Runtime{cli: cli, cfg: DefaultConfig(), logger: slog.New(slog.DiscardHandler), base: base, cancel: cancel, exits: map[string]*exitWatch{}}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// The unexported helpers the tests check directly.
var (
	CheckContextPath = checkContextPath
	Capabilities     = capabilities
	BaseImages       = baseImages
	ContainerEventOf = containerEvent
)

// MemOut is the in-memory ContextOut.
type MemOut = memOut

// DrainBuild reads a build's progress stream to its end (no progress callback).
func DrainBuild(rd io.Reader) (string, error) { return drainBuild(rd, newThrottle(0, nil)) }

// DrainPull reads a pull's progress stream, calling fn at most every `every`.
func DrainPull(rd io.Reader, every time.Duration, fn func(string)) error {
	return drainPull(rd, newThrottle(every, fn))
}
