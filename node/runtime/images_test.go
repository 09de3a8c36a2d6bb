package runtime_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
)

func TestPullFromRegistry(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	ctx := testCtx(t, 3*time.Minute)
	// A unique VERSION makes a unique image id, so removing our two tags
	// really deletes it and the pull has to bring it back.
	local := runtimetest.BuildTestImage(t, rt, "v1", map[string]string{"VERSION": runtimetest.RandomSuffix()})
	built, err := rt.InspectImage(ctx, local)
	if err != nil {
		t.Fatal(err)
	}
	if built.Digest != "" {
		t.Fatalf("a locally built image has digest %q, want none", built.Digest)
	}
	host := runtimetest.StartRegistry(t)
	remote := host + "/dmtest/app-" + runtimetest.RandomSuffix() + ":v1"
	runtimetest.PushImage(t, rt, local, remote)
	runtimetest.RemoveTestImage(t, rt, remote)
	runtimetest.RemoveTestImage(t, rt, local)
	if _, err := rt.InspectImage(ctx, built.ID); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Fatalf("InspectImage after removing both tags = %v, want ErrImageNotFound", err)
	}

	var mu sync.Mutex
	var lines []string
	progress := func(s string) { mu.Lock(); lines = append(lines, s); mu.Unlock() }
	got, err := rt.EnsureImage(ctx, remote, nil, false, progress)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != built.ID || !strings.HasPrefix(got.Digest, "sha256:") || len(got.Digest) != 71 {
		t.Fatalf("EnsureImage = %+v; want id %s and a sha256 digest", got, built.ID)
	}
	if len(got.ExposedPorts) != 1 || got.ExposedPorts[0] != runtimetest.TestAppPort || len(got.Entrypoint) != 1 || got.Entrypoint[0] != "/testapp" {
		t.Fatalf("EnsureImage = %+v; want port %d and entrypoint /testapp", got, runtimetest.TestAppPort)
	}
	mu.Lock()
	last := lines[len(lines)-1]
	mu.Unlock()
	if !strings.HasPrefix(last, "pulled "+remote) {
		t.Fatalf("progress = %q; want it to end with the pulled line", lines)
	}
	again, err := rt.InspectImage(ctx, remote)
	if err != nil || again.Digest != got.Digest {
		t.Fatalf("InspectImage after pull = %+v, %v", again, err)
	}

	// Present and pull=false: no pull, no progress.
	lines = nil
	if got2, err := rt.EnsureImage(ctx, remote, nil, false, progress); err != nil || got2.ID != got.ID || len(lines) != 0 {
		t.Fatalf("EnsureImage of a present image = %+v, %v, progress %q; want no pull", got2, err, lines)
	}
	// pull=true asks the registry again, with credentials (the test
	// registry accepts anything).
	auth := &runtime.RegistryAuth{Username: "u", Password: "p", ServerAddress: host}
	if got3, err := rt.EnsureImage(ctx, remote, auth, true, nil); err != nil || got3.Digest != got.Digest {
		t.Fatalf("EnsureImage pull=true = %+v, %v", got3, err)
	}
	// A tag the repository does not have.
	missing := strings.TrimSuffix(remote, ":v1") + ":v2"
	_, err = rt.EnsureImage(ctx, missing, nil, false, nil)
	if !errors.Is(err, runtime.ErrImageNotFound) || !strings.Contains(err.Error(), "manifest unknown") {
		t.Fatalf("EnsureImage of a missing tag = %v; want ErrImageNotFound with Docker's message", err)
	}
	t.Logf("docker says: %v", err)
}

func TestPullMissingRepositoryKeepsDockersMessage(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	ctx := testCtx(t, time.Minute)
	host := runtimetest.StartRegistry(t)
	ref := host + "/dmtest/none-" + runtimetest.RandomSuffix() + ":nope"
	_, err := rt.EnsureImage(ctx, ref, nil, false, nil)
	if !errors.Is(err, runtime.ErrImageNotFound) || !strings.Contains(err.Error(), ref) || !strings.Contains(err.Error(), "name unknown") {
		t.Fatalf("EnsureImage of a missing repository = %v; want ErrImageNotFound with Docker's message", err)
	}
	t.Logf("docker says: %v", err)
}

func TestBadImageRefsAreRefusedUpFront(t *testing.T) {
	t.Parallel()
	rt := runtime.DeadRuntime(t)
	ctx := testCtx(t, 30*time.Second)
	for _, ref := range []string{"", "shop/Web:tag", "has space:1", "img:tag:tag", "a//b", " img", "img@sha256:short", strings.Repeat("a", 2000)} {
		if _, err := rt.EnsureImage(ctx, ref, nil, true, nil); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("EnsureImage(%q) = %v, want ErrInvalid before any Docker call", ref, err)
		}
	}
	if _, err := rt.BuildImage(ctx, strings.NewReader(""), []string{"Bad Tag"}, "", nil, nil); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("BuildImage with a bad tag = %v, want ErrInvalid", err)
	}
	if _, err := rt.BuildImage(ctx, strings.NewReader(""), []string{"ok:1"}, "../Dockerfile", nil, nil); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("BuildImage with a Dockerfile outside the context = %v, want ErrInvalid", err)
	}
	if _, err := rt.BuildImage(ctx, strings.NewReader(""), nil, "", nil, nil); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("BuildImage without tags = %v, want ErrInvalid", err)
	}
	// The control: a good reference reaches (the dead) Docker.
	if _, err := rt.EnsureImage(ctx, "nginx:1.27", nil, true, nil); err == nil || errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("a valid reference = %v; want a connection error", err)
	}
}

func TestParseImageRef(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":                               "docker.io/library/nginx:latest",
		"nginx:1.27":                          "docker.io/library/nginx:1.27",
		"127.0.0.1:5000/shop/web":             "127.0.0.1:5000/shop/web:latest",
		"ghcr.io/a/b:v1":                      "ghcr.io/a/b:v1",
		"local/sample:latest":                 "docker.io/local/sample:latest",
		"x@sha256:" + strings.Repeat("a", 64): "docker.io/library/x@sha256:" + strings.Repeat("a", 64),
	} {
		if got, err := runtime.ParseImageRef(in); err != nil || got != want {
			t.Errorf("ParseImageRef(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestInspectMissingImage(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	ctx := testCtx(t, time.Minute)
	if _, err := rt.InspectImage(ctx, runtimetest.TestImageRepo+"missing-"+runtimetest.RandomSuffix()+":x"); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Fatalf("InspectImage = %v, want ErrImageNotFound", err)
	}
}
