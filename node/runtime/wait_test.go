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

func TestWaitReturnsExitCode(t *testing.T) {
	t.Parallel()
	rt, img := dockerFixture(t)
	for _, autoRemove := range []bool{false, true} {
		name := runtimetest.TestContainerName(t)
		c := runtimetest.StartTestContainer(t, rt, runtime.ContainerSpec{Name: name, Image: img, Cmd: []string{"once"}, Env: map[string]string{"EXIT_CODE": "3"}, AutoRemove: autoRemove})
		code, err := rt.Wait(testCtx(t, time.Minute), c.ID)
		if err != nil || code != 3 {
			t.Fatalf("autoRemove=%t: Wait = %d, %v; want 3", autoRemove, code, err)
		}
		if autoRemove {
			runtimetest.WaitFor(t, 10*time.Second, func() bool {
				_, err := rt.Inspect(testCtx(t, 10*time.Second), name)
				return errors.Is(err, runtime.ErrContainerNotFound)
			})
			continue
		}
		info, err := rt.Inspect(testCtx(t, time.Minute), c.ID)
		if err != nil || info.Running || info.ExitCode != 3 {
			t.Fatalf("after Wait = %+v, %v", info, err)
		}
		if got := logsOf(t, rt, c.ID, runtime.LogOptions{}); !strings.Contains(got, "once") {
			t.Fatalf("once run logged %q", got)
		}
		// Waiting on an exited container answers at once.
		if code, err := rt.Wait(testCtx(t, time.Minute), c.ID); err != nil || code != 3 {
			t.Fatalf("second Wait = %d, %v", code, err)
		}
	}
}

func TestWaitHonoursContext(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	c := startApp(t, runtime.ContainerSpec{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := rt.Wait(ctx, c.ID); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a running container = %v, want the deadline", err)
	}
	// The app exits with the code it is asked for.
	if code, _ := runtimetest.HTTPPost(appURL(c)+"/admin/exit?code=42", ""); code != 200 {
		t.Fatalf("admin/exit = %d", code)
	}
	if code, err := rt.Wait(testCtx(t, time.Minute), c.ID); err != nil || code != 42 {
		t.Fatalf("Wait after admin/exit = %d, %v; want 42", code, err)
	}
}
