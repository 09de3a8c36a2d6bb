package runtime_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
)

func TestCheckDockerfileRefusesRemoteAdd(t *testing.T) {
	for name, df := range map[string]string{
		"metadata user data": "FROM scratch\nADD http://169.254.169.254/metadata/v1/user-data /x\n",
		"https":              "FROM scratch\nADD https://example.com/a.tgz /a\n",
		"lower case":         "from scratch\nadd HTTP://example.com/a /a\n",
		"with flags":         "FROM scratch\nADD --chown=1:1 --checksum=sha256:00 https://example.com/a /a\n",
		"second source":      "FROM scratch\nADD local.txt http://10.0.0.1:9999/v1/state /dst/\n",
		"json form":          "FROM scratch\nADD [\"http://169.254.169.254/metadata/v1/user-data\", \"/x\"]\n",
		"git ssh":            "FROM scratch\nADD git@github.com:org/repo.git /src\n",
		"git url":            "FROM scratch\nADD git://example.com/repo.git /src\n",
		"continued":          "FROM scratch\nADD \\\n  http://169.254.169.254/ \\\n  /x\n",
		"comment in between": "FROM scratch\nADD \\\n# a comment\n  http://169.254.169.254/ /x\n",
		"backtick escape":    "# escape=`\nFROM scratch\nADD `\n http://169.254.169.254/ /x\n",
		"onbuild":            "FROM scratch\nONBUILD ADD http://169.254.169.254/ /x\n",
		"variable":           "FROM scratch\nARG U=http://169.254.169.254/metadata/v1/user-data\nADD $U /x\n",
		"braced variable":    "FROM scratch\nARG U\nADD ${U} /x\n",
		"indented, CRLF":     "FROM scratch\r\n   ADD http://169.254.169.254/ /x\r\n",
	} {
		err := runtime.CheckDockerfile("Dockerfile", []byte(df))
		if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "Dockerfile line ") || !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("%s: CheckDockerfile = %v; want a refusal naming the line", name, err)
		}
	}
	err := runtime.CheckDockerfile("build/prod.Dockerfile", []byte("FROM scratch\nCOPY a /a\n\nADD http://169.254.169.254/metadata/v1/user-data /x\n"))
	if err == nil || !strings.Contains(err.Error(), "build/prod.Dockerfile line 4: ADD http://169.254.169.254/metadata/v1/user-data: a URL") {
		t.Fatalf("error = %v; want the file, the line and the source", err)
	}
}

func TestCheckDockerfileAcceptsLocalSources(t *testing.T) {
	for name, df := range map[string]string{
		"copy and add":     "FROM scratch\nCOPY . /\nADD app.tar.gz /app/\nADD --chown=1:1 a b /dst/\n",
		"json form":        "FROM scratch\nADD [\"a b.txt\", \"/x\"]\n",
		"url in a comment": "FROM scratch\n# ADD http://169.254.169.254/ /x\nCOPY a /a\n",
		"url in RUN":       "FROM debian\nRUN curl -o /x https://example.com/x\n",
		"copy of a url":    "FROM scratch\nCOPY --from=builder /out /out\nLABEL src=https://example.com\n",
		"variable in dest": "FROM scratch\nARG D=/x\nADD a $D\n",
		"empty":            "",
	} {
		if err := runtime.CheckDockerfile("Dockerfile", []byte(df)); err != nil {
			t.Errorf("%s: CheckDockerfile = %v; want nil", name, err)
		}
	}
}

func TestValidateBuildContextRefusesRemoteAdd(t *testing.T) {
	bad := "FROM scratch\nADD http://169.254.169.254/metadata/v1/user-data /x\n"
	// The root Dockerfile is checked at upload, before any spec names it.
	if _, _, err := runtime.ValidateBuildContextFor(bytes.NewReader(tarEntries(t, file("Dockerfile", bad))), 1<<20, ""); !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("upload with a bad root Dockerfile: %v", err)
	}
	// Another one when a spec names it, also through a hard link.
	ctx := tarEntries(t, file("Dockerfile", dockerfile), file("ops/bad.Dockerfile", bad), hardlink("ops/link.Dockerfile", "ops/bad.Dockerfile"))
	if _, _, err := runtime.ValidateBuildContextFor(bytes.NewReader(ctx), 1<<20, ""); err != nil {
		t.Fatalf("upload naming no Dockerfile: %v", err)
	}
	for _, name := range []string{"ops/bad.Dockerfile", "./ops/link.Dockerfile"} {
		if _, _, err := runtime.ValidateBuildContextFor(bytes.NewReader(ctx), 1<<20, name); !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "not allowed") {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, _, err := runtime.ValidateBuildContextFor(bytes.NewReader(gzipped(t, ctx)), 1<<20, "Dockerfile"); err != nil {
		t.Fatalf("the good Dockerfile: %v", err)
	}
}

// The real Docker engine never fetches the URL: the build is refused
// before the daemon sees the context. A URL on this machine stands in for
// any other host, and counts the requests that reach it.
func TestBuildImageRefusesRemoteAddBeforeDockerFetches(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	ctx := testCtx(t, 2*time.Minute)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.Write([]byte("secret user data"))
	}))
	t.Cleanup(srv.Close)
	for name, df := range map[string]string{
		"metadata": "FROM scratch\nADD http://169.254.169.254/metadata/v1/user-data /x\n",
		"any host": "FROM scratch\nADD " + srv.URL + "/metadata/v1/user-data /x\n",
	} {
		tag := runtimetest.TestImageRepo + "remote-add-" + runtimetest.RandomSuffix() + ":1"
		t.Cleanup(func() { runtimetest.RemoveTestImage(t, rt, tag) })
		_, err := rt.BuildImage(ctx, bytes.NewReader(tarOf(t, map[string]string{"Dockerfile": df})), []string{tag}, "", nil, nil)
		var be *runtime.BuildError
		if !errors.Is(err, runtime.ErrInvalid) || errors.As(err, &be) || !strings.Contains(err.Error(), "Dockerfile line 2: ADD http") || !strings.Contains(err.Error(), "remote sources are not allowed") {
			t.Fatalf("%s: BuildImage = %v; want a refusal before the build", name, err)
		}
		if _, err := rt.InspectImage(ctx, tag); !errors.Is(err, runtime.ErrImageNotFound) {
			t.Fatalf("%s: image %s exists after a refused build (%v)", name, tag, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the daemon fetched the URL %d times", n)
	}
	// The same server, as a file in the context, builds: only remote ADD is refused.
	tag := runtimetest.TestImageRepo + "local-add-" + runtimetest.RandomSuffix() + ":1"
	t.Cleanup(func() { runtimetest.RemoveTestImage(t, rt, tag) })
	if _, err := rt.BuildImage(ctx, bytes.NewReader(tarOf(t, map[string]string{"Dockerfile": "FROM scratch\nADD x.txt /x\n", "x.txt": "x"})), []string{tag}, "", nil, nil); err != nil {
		t.Fatalf("a local ADD: %v", err)
	}
}

func TestBaseImagesResolvesArgsAndSkipsStages(t *testing.T) {
	df := "ARG BASE=alpine\nARG TAG=\"3.20\"\nFROM --platform=linux/amd64 ${BASE}:${TAG} AS build\nRUN true\nFROM build AS second\nFROM scratch\nCOPY --from=build /x /x\nFROM $BASE\n"
	got, err := runtime.BaseImages("Dockerfile", []byte(df))
	if err != nil || strings.Join(got, ",") != "alpine:3.20,alpine" {
		t.Fatalf("baseImages = %q, %v", got, err)
	}
	if _, err := runtime.BaseImages("Dockerfile", []byte("ARG V\nFROM node:${V}\n")); !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "cannot be checked") {
		t.Fatalf("a FROM variable without a default: %v", err)
	}
}

// A base image's ONBUILD trigger runs in the build as if it were in the
// Dockerfile: one that ADDs a URL is refused too. (The base is built with
// Docker directly: BuildImage itself refuses to make it.)
func TestBuildImageRefusesAnInheritedRemoteAdd(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	ctx := testCtx(t, 2*time.Minute)
	base := runtimetest.TestImageRepo + "onbuild-" + runtimetest.RandomSuffix() + ":1"
	t.Cleanup(func() { runtimetest.RemoveTestImage(t, rt, base) })
	resp, err := rt.Docker().ImageBuild(ctx, bytes.NewReader(tarOf(t, map[string]string{
		"Dockerfile": "FROM scratch\nONBUILD ADD http://169.254.169.254/metadata/v1/user-data /x\n"})),
		build.ImageBuildOptions{Tags: []string{base}, Remove: true, Version: build.BuilderV1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runtime.DrainBuild(resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tag := runtimetest.TestImageRepo + "child-" + runtimetest.RandomSuffix() + ":1"
	t.Cleanup(func() { runtimetest.RemoveTestImage(t, rt, tag) })
	_, err = rt.BuildImage(ctx, bytes.NewReader(tarOf(t, map[string]string{"Dockerfile": "FROM " + base + "\nLABEL x=y\n"})), []string{tag}, "", nil, nil)
	if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "ONBUILD trigger") || !strings.Contains(err.Error(), "remote sources are not allowed") {
		t.Fatalf("BuildImage FROM a base with ONBUILD ADD http: %v", err)
	}
	if _, err := rt.InspectImage(ctx, tag); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Fatalf("the child image exists (%v)", err)
	}
}
