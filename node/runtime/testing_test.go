package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
	"github.com/dropmesh/dropmesh/node/testkit"
)

// shared is the package's Docker fixture, made on first use (so unit
// tests and fuzz workers never touch Docker) and torn down by TestMain.
var shared struct {
	once  sync.Once
	rt    *runtime.Runtime
	image string // the test app image, built once
	err   error  // why there is no Docker fixture
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.rt != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if shared.image != "" {
			_ = shared.rt.RemoveImage(ctx, shared.image)
		}
		cancel()
		_ = shared.rt.Close()
	}
	os.Exit(code)
}

func setupShared() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rt, err := runtime.New(ctx, nil)
	if err != nil {
		shared.err = err
		return
	}
	shared.rt = rt
	if n, err := runtimetest.SweepTestContainers(ctx, rt, 10*time.Minute); err != nil {
		fmt.Fprintln(os.Stderr, "sweep:", err)
	} else if n > 0 {
		fmt.Fprintf(os.Stderr, "swept %d leftover test containers\n", n)
	}
	bin, err := runtimetest.StaticBinary(runtimetest.TestAppPackage)
	if err != nil {
		shared.err = err
		return
	}
	ref := runtimetest.TestImageRepo + "runtime-shared-" + runtimetest.RandomSuffix() + ":latest"
	if _, err := rt.BuildFromBinaryWithEnv(ctx, bin, ref, []string{"/testapp"}, runtimetest.TestAppPort, nil); err != nil {
		shared.err = err
		return
	}
	shared.image = ref
}

// dockerFixture returns the shared runtime and test app image, or fails.
func dockerFixture(t testing.TB) (*runtime.Runtime, string) {
	t.Helper()
	testkit.RequireDocker(t)
	shared.once.Do(setupShared)
	if shared.err != nil {
		t.Fatalf("these tests need a Docker engine and the test app image: %v", shared.err)
	}
	return shared.rt, shared.image
}

// testCtx is a context that ends with the test or after d.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// appURL is the base URL of a test app container's published port.
func appURL(c runtime.ContainerInfo) string {
	return fmt.Sprintf("http://%s:%d", c.HostIP, c.HostPort)
}

// startApp runs the shared test app image published on an ephemeral
// 127.0.0.1 port and waits until it answers.
func startApp(t *testing.T, spec runtime.ContainerSpec) runtime.ContainerInfo {
	t.Helper()
	rt, img := dockerFixture(t)
	if spec.Image == "" {
		spec.Image = img
	}
	if spec.Port == 0 {
		spec.Port = runtimetest.TestAppPort
	}
	if spec.StopTimeout == 0 {
		spec.StopTimeout = 5 * time.Second
	}
	c := runtimetest.StartTestContainer(t, rt, spec)
	runtimetest.WaitHTTP(t, appURL(c)+"/health", 20*time.Second)
	return c
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
