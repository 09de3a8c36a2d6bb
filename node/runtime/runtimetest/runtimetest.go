// Package runtimetest is the runtime's test kit: helpers for tests (of
// node/runtime and of every package above it) that run real containers on
// the machine's Docker engine. Every container and image they make is
// uniquely named and removed in t.Cleanup, so several test processes can
// share one engine. Only test code imports it (it imports `testing`), so
// the agent's binary never links it.
package runtimetest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/go-connections/nat"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/testkit"
)

// Test kit names and labels.
const (
	// TestAppPackage is the main package of the test image's binary: the
	// sample app (package node/sampleapp) as a static program.
	TestAppPackage = "github.com/dropmesh/dropmesh/node/runtime/testdata/testapp"
	// TestAppPort is the port the test app listens on.
	TestAppPort = 8080
	// TestContainerPrefix starts the name of every test container.
	TestContainerPrefix = "dmtest-"
	// TestImageRepo starts the name of every test image.
	TestImageRepo = "dropmesh-test/"
	// LabelTest carries the name of the test that made a container.
	LabelTest = "dropmesh.test"
)

// binaries caches BuildStaticBinary's results for the life of the test
// process: one build per package, however many tests ask.
var binaries = struct {
	sync.Mutex
	built map[string]*binaryBuild
}{built: map[string]*binaryBuild{}}

type binaryBuild struct {
	once sync.Once
	path string
	err  error
}

// BuildStaticBinary builds a main package (an import path, or a directory
// relative to the test's working directory) with CGO_ENABLED=0 for
// linux/amd64 and returns the binary's path. It builds once per package per
// test process, into a directory under the system temp dir keyed by the
// package (replaced atomically, so concurrent test processes are safe).
func BuildStaticBinary(t testing.TB, pkg string) string {
	t.Helper()
	p, err := StaticBinary(pkg)
	if err != nil {
		t.Fatalf("build %s: %v", pkg, err)
	}
	return p
}

// StaticBinary is BuildStaticBinary for callers without a testing.TB (TestMain).
func StaticBinary(pkg string) (string, error) {
	binaries.Lock()
	b, ok := binaries.built[pkg]
	if !ok {
		b = &binaryBuild{}
		binaries.built[pkg] = b
	}
	binaries.Unlock()
	b.once.Do(func() { b.path, b.err = buildStatic(pkg) })
	return b.path, b.err
}

func buildStatic(pkg string) (string, error) {
	wd, _ := os.Getwd()
	key := sha256.Sum256([]byte(wd + "\x00" + pkg))
	dir := filepath.Join(os.TempDir(), "dropmesh-testbin", hex.EncodeToString(key[:8]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	tmp, err := os.CreateTemp(dir, ".build-*")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w -X main.version="+TestBinaryVersion(), "-o", tmp.Name(), pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, msg)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", err
	}
	return out, nil
}

// testVersion caches TestBinaryVersion's answer for the test process.
var testVersion = sync.OnceValue(func() string {
	if v := os.Getenv("DROPMESH_VERSION"); v != "" {
		return v
	}
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if v := strings.TrimSpace(string(out)); err == nil && v != "" {
		return v + "-test"
	}
	return "test"
})

// TestBinaryVersion is the version BuildStaticBinary gives every binary it
// builds (-X main.version): $DROPMESH_VERSION (scripts/dev.sh sets it),
// else `git describe` of the checkout plus "-test", else "test". So a
// binary under test reports a version as a released one does, and the
// sample app never answers with an empty one.
func TestBinaryVersion() string { return testVersion() }

// TestAppBinary is the static test app binary (see TestAppPackage).
func TestAppBinary(t testing.TB) string {
	t.Helper()
	return BuildStaticBinary(t, TestAppPackage)
}

// NewTestRuntime connects to the machine's Docker engine and closes the
// connection in t.Cleanup; without an engine the test fails in CI and is
// skipped elsewhere (testkit.RequireDocker).
func NewTestRuntime(t testing.TB) *runtime.Runtime {
	t.Helper()
	testkit.RequireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rt, err := runtime.New(ctx, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatalf("these tests need a Docker engine: %v", err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	return rt
}

// newDockerClient is a Docker API client of the kit's own, for what a test
// does beside the Runtime under test (tag and push, a raw run, the sweep),
// so the Runtime needs no door to its client for tests.
func newDockerClient() (*client.Client, error) {
	return client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
}

// dockerClient is newDockerClient for a test: closed in t.Cleanup.
func dockerClient(t testing.TB) *client.Client {
	t.Helper()
	cli, err := newDockerClient()
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// testWriter sends log output to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// RandomSuffix is 8 random hex characters for unique test names.
func RandomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var notNameChars = regexp.MustCompile(`[^a-z0-9]+`)

// testSlug is a short, name-safe form of the test's name.
func testSlug(t testing.TB) string {
	s := strings.Trim(notNameChars.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.Trim(s, "-")
}

// TestContainerName is a unique container name for this test:
// "dmtest-<test>-<random>".
func TestContainerName(t testing.TB) string {
	return TestContainerPrefix + testSlug(t) + "-" + RandomSuffix()
}

// TestLabels are the labels every test container carries; other
// packages' tests may add their own to them.
func TestLabels(t testing.TB) map[string]string {
	return map[string]string{LabelTest: t.Name()}
}

// BuildTestImage builds an image FROM scratch holding the test app (its
// entrypoint; listens on TestAppPort, declared with EXPOSE) with the
// given environment baked in, named dropmesh-test/<test>-<random>:<tag>,
// and removes it in t.Cleanup. It returns the image reference.
func BuildTestImage(t testing.TB, rt *runtime.Runtime, tag string, env map[string]string) string {
	t.Helper()
	if tag == "" {
		tag = "latest"
	}
	ref := TestImageRepo + testSlug(t) + "-" + RandomSuffix() + ":" + tag
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := rt.BuildFromBinaryWithEnv(ctx, TestAppBinary(t), ref, []string{"/testapp"}, TestAppPort, env); err != nil {
		t.Fatalf("build test image: %v", err)
	}
	t.Cleanup(func() { RemoveTestImage(t, rt, ref) })
	return ref
}

// RemoveTestImage untags a test image (the kit's images share layers, so
// only the tag goes unless it was the last one).
func RemoveTestImage(t testing.TB, rt *runtime.Runtime, ref string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rt.RemoveImage(ctx, ref); err != nil {
		t.Logf("cleanup: %v", err)
	}
}

// StartTestContainer creates and starts spec, with a TestContainerName
// and TestLabels filled in where spec leaves them empty, and removes the
// container in t.Cleanup.
func StartTestContainer(t testing.TB, rt *runtime.Runtime, spec runtime.ContainerSpec) runtime.ContainerInfo {
	t.Helper()
	if spec.Name == "" {
		spec.Name = TestContainerName(t)
	}
	labels := TestLabels(t)
	for k, v := range spec.Labels {
		labels[k] = v
	}
	spec.Labels = labels
	RemoveOnCleanup(t, rt, spec.Name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	info, err := rt.CreateAndStart(ctx, spec)
	if err != nil {
		t.Fatalf("start test container %s: %v", spec.Name, err)
	}
	return info
}

// RemoveOnCleanup force-removes a container (by id or name) when the test ends.
func RemoveOnCleanup(t testing.TB, rt *runtime.Runtime, idOrName string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := rt.Remove(ctx, idOrName); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
}

// SweepTestContainers removes containers named with TestContainerPrefix
// and labelled LabelTest that were created more than olderThan ago: the
// leftovers of killed test runs. Younger ones may belong to a test running
// right now in another process, so they stay.
func SweepTestContainers(ctx context.Context, rt *runtime.Runtime, olderThan time.Duration) (int, error) {
	cli, err := newDockerClient()
	if err != nil {
		return 0, fmt.Errorf("sweep test containers: %w", err)
	}
	defer cli.Close()
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelTest))})
	if err != nil {
		return 0, fmt.Errorf("sweep test containers: %w", err)
	}
	n := 0
	for _, c := range list {
		if len(c.Names) == 0 || !strings.HasPrefix(strings.TrimPrefix(c.Names[0], "/"), TestContainerPrefix) {
			continue
		}
		if time.Since(time.Unix(c.Created, 0)) < olderThan {
			continue
		}
		if err := rt.Remove(ctx, c.ID); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// StartRegistry serves an in-memory OCI registry on 127.0.0.1 (which
// Docker treats as insecure, so plain HTTP works) until the test ends and
// returns its host:port.
func StartRegistry(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// PushImage tags localRef as remoteRef (host:port/repo:tag) and pushes it;
// the remoteRef tag is removed locally in t.Cleanup.
func PushImage(t testing.TB, rt *runtime.Runtime, localRef, remoteRef string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli := dockerClient(t)
	if err := cli.ImageTag(ctx, localRef, remoteRef); err != nil {
		t.Fatalf("tag %s as %s: %v", localRef, remoteRef, err)
	}
	t.Cleanup(func() { RemoveTestImage(t, rt, remoteRef) })
	rc, err := cli.ImagePush(ctx, remoteRef, image.PushOptions{RegistryAuth: "e30="})
	if err != nil {
		t.Fatalf("push %s: %v", remoteRef, err)
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("push %s: read progress: %v", remoteRef, err)
		}
		if m.Error != nil {
			t.Fatalf("push %s: %s", remoteRef, m.Error.Message)
		}
	}
}

// WaitFor polls cond every 20 ms until it holds, failing the test after
// timeout.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, timeout, "the condition", cond)
}

// HTTPGet does one GET with a short timeout and returns the status and
// body (status 0 when nothing answered).
func HTTPGet(url string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// WaitHTTP waits until url answers 200 and returns the body.
func WaitHTTP(t testing.TB, url string, timeout time.Duration) string {
	t.Helper()
	var body string
	WaitFor(t, timeout, func() bool {
		var code int
		code, body = HTTPGet(url)
		return code == http.StatusOK
	})
	return body
}

// HTTPPost does one POST with a short timeout, like HTTPGet.
func HTTPPost(url, body string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Post(url, "application/octet-stream", strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// RawRunTimes is how long a raw `docker run` of an image took, step by step.
type RawRunTimes struct {
	Create, Start, Ready time.Duration
}

// Total is the whole run: create, start and the port's first 200.
func (r RawRunTimes) Total() time.Duration { return r.Create + r.Start + r.Ready }

// RawRun is the floor a deploy is compared with: it creates and starts img
// straight through the Docker API, publishing TestAppPort on an ephemeral
// loopback port as `docker run -p` does, waits until GET /health answers
// 200 (polling every 2 ms), removes the container and returns the times.
func RawRun(t testing.TB, rt *runtime.Runtime, img string) RawRunTimes {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli := dockerClient(t)
	port := nat.Port(strconv.Itoa(TestAppPort) + "/tcp")
	hc := http.Client{Timeout: time.Second}
	name := TestContainerName(t)
	t0 := time.Now()
	created, err := cli.ContainerCreate(ctx,
		&container.Config{Image: img, Labels: TestLabels(t), ExposedPorts: nat.PortSet{port: {}}},
		&container.HostConfig{PortBindings: nat.PortMap{port: {{HostIP: "127.0.0.1"}}}}, nil, nil, name)
	if err != nil {
		t.Fatalf("raw run of %s: create: %v", img, err)
	}
	defer func() {
		if err := rt.Remove(context.WithoutCancel(ctx), created.ID); err != nil {
			t.Errorf("raw run of %s: remove: %v", img, err)
		}
	}()
	t1 := time.Now()
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("raw run of %s: start: %v", img, err)
	}
	t2 := time.Now()
	cj, err := cli.ContainerInspect(ctx, created.ID)
	if err != nil {
		t.Fatalf("raw run of %s: inspect: %v", img, err)
	}
	url := "http://127.0.0.1:" + cj.NetworkSettings.Ports[port][0].HostPort + "/health"
	for {
		if resp, err := hc.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("raw run of %s: its port did not answer within a minute", img)
		}
		time.Sleep(2 * time.Millisecond) // polling the port, as a client would, not synchronising
	}
	return RawRunTimes{Create: t1.Sub(t0), Start: t2.Sub(t1), Ready: time.Since(t2)}
}

// BuildStandinImage builds a stand-in image FROM scratch for a Compose
// file's real image: the test app as its entrypoint and as /bin/sh (which
// answers a Compose CMD-SHELL healthcheck by asking the app), listening on
// port (0: the app's default), named dropmesh-test/standin-<random>/NAME:standin
// so that a datastore is recognised by its name as the real image would
// be. It is removed in t.Cleanup.
func BuildStandinImage(t testing.TB, rt *runtime.Runtime, name string, port int) string {
	t.Helper()
	bin, err := os.ReadFile(TestAppBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	df := "FROM scratch\nCOPY testapp /testapp\nCOPY testapp /bin/sh\nENTRYPOINT [\"/testapp\"]\n"
	if port > 0 {
		df += fmt.Sprintf("ENV PORT=%d\nEXPOSE %d\n", port, port)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data []byte
		mode int64
	}{{"Dockerfile", []byte(df), 0o644}, {"testapp", bin, 0o755}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	ref := TestImageRepo + "standin-" + RandomSuffix() + "/" + name + ":standin"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := rt.BuildImage(ctx, &buf, []string{ref}, "", TestLabels(t), nil); err != nil {
		t.Fatalf("build stand-in %s: %v", name, err)
	}
	t.Cleanup(func() { RemoveTestImage(t, rt, ref) })
	return ref
}

// Probe GETs / of every addr from inside container (Docker exec of the
// test app's probe tool, in a test app or stand-in image) and returns its
// output; ok is its exit code 0.
func Probe(t testing.TB, rt *runtime.Runtime, container string, addrs ...string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := rt.Exec(ctx, container, append([]string{"/testapp", "probe"}, addrs...))
	if err != nil {
		t.Fatalf("exec in %s: %v", container, err)
	}
	return res.Output, res.ExitCode == 0
}
