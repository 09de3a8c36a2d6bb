package runtime_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
)

func TestNewReportsUnreachableDocker(t *testing.T) {
	t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
	cfg := runtime.DefaultConfig()
	cfg.PingTimeout = 5 * time.Second
	_, err := runtime.NewWithConfig(context.Background(), cfg, nil)
	if !errors.Is(err, runtime.ErrDockerUnreachable) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("New with no daemon = %v; want ErrDockerUnreachable naming the address", err)
	}
}

func TestNewNegotiatesWithTheDaemon(t *testing.T) {
	rt, _ := dockerFixture(t)
	// The client speaks the daemon's version, not its own newer default.
	ping, err := rt.Docker().Ping(testCtx(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if rt.APIVersion() != ping.APIVersion {
		t.Fatalf("client API %s, daemon API %s", rt.APIVersion(), ping.APIVersion)
	}
}

func TestCloseStopsExitWatchers(t *testing.T) {
	rt := runtimetest.NewTestRuntime(t)
	_, img := dockerFixture(t)
	// An AutoRemove container that runs until removed: its exit watcher is
	// pending when Close is called, and Close must not hang on it.
	c := runtimetest.StartTestContainer(t, rt, runtime.ContainerSpec{Image: img, AutoRemove: true, StopTimeout: time.Second})
	pending := rt.PendingExitWatchers()
	if pending != 1 {
		t.Fatalf("%d exit watchers, want 1", pending)
	}
	done := make(chan error, 1)
	go func() { done <- rt.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung on an exit watcher")
	}
	// The container is cleaned up by the shared runtime.
	runtimetest.RemoveOnCleanup(t, shared.rt, c.ID)
}
