package runtime_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
)

// tarOf makes a tar of name -> content (a trailing "/" makes a directory).
func tarOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, name := range sortedKeys(files) {
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg}
		if strings.HasSuffix(name, "/") {
			h.Typeflag, h.Size, h.Mode = tar.TypeDir, 0, 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestBuildImageFromContext(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	ctx := testCtx(t, 2*time.Minute)
	raw := tarOf(t, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY hello.txt /hello.txt\nLABEL from=test\n",
		"hello.txt":  "hello " + runtimetest.RandomSuffix(),
	})
	_, data, err := runtime.ValidateBuildContext(bytes.NewReader(raw), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	tag := runtimetest.TestImageRepo + "ctx-" + runtimetest.RandomSuffix() + ":1"
	t.Cleanup(func() { runtimetest.RemoveTestImage(t, rt, tag) })
	var lines []string
	id, err := rt.BuildImage(ctx, bytes.NewReader(data), []string{tag}, "", map[string]string{runtime.LabelManaged: "true"}, func(s string) { lines = append(lines, s) })
	if err != nil {
		t.Fatal(err)
	}
	info, err := rt.InspectImage(ctx, tag)
	if err != nil || info.ID != id {
		t.Fatalf("InspectImage(%s) = %+v, %v; want id %s", tag, info, err, id)
	}
	ii, err := rt.Docker().ImageInspect(ctx, tag)
	if err != nil || ii.Config.Labels[runtime.LabelManaged] != "true" || ii.Config.Labels["from"] != "test" {
		t.Fatalf("image labels = %v, %v", ii.Config.Labels, err)
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "Step 1/") {
		t.Fatalf("progress = %q; want the build steps", lines)
	}
}

func TestBuildImageFailureReturnsDockersMessage(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	ctx := testCtx(t, 2*time.Minute)
	for name, files := range map[string]map[string]string{
		"missing file": {"Dockerfile": "FROM scratch\nCOPY missing.txt /x\n"},
		"bad syntax":   {"Dockerfile": "FROM scratch\nNOTANINSTRUCTION x\n"},
	} {
		tag := runtimetest.TestImageRepo + "fail-" + runtimetest.RandomSuffix() + ":1"
		_, err := rt.BuildImage(ctx, bytes.NewReader(tarOf(t, files)), []string{tag}, "", nil, nil)
		var be *runtime.BuildError
		if !errors.As(err, &be) || be.Message == "" || !strings.Contains(err.Error(), tag) {
			t.Fatalf("%s: BuildImage = %v; want a *BuildError naming the tag", name, err)
		}
		switch name {
		case "missing file":
			if !strings.Contains(be.Message, "missing.txt") {
				t.Errorf("%s: message %q does not name the file", name, be.Message)
			}
		case "bad syntax":
			if !strings.Contains(strings.ToLower(be.Message), "notaninstruction") {
				t.Errorf("%s: message %q does not name the instruction", name, be.Message)
			}
		}
		t.Logf("%s: docker says %q", name, be.Message)
		if _, err := rt.InspectImage(ctx, tag); !errors.Is(err, runtime.ErrImageNotFound) {
			t.Errorf("%s: a failed build left the tag: %v", name, err)
		}
	}
}

func TestBuildFromBinaryRuns(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	ctx := testCtx(t, 2*time.Minute)
	tag := runtimetest.TestImageRepo + "bin-" + runtimetest.RandomSuffix() + ":latest"
	t.Cleanup(func() { runtimetest.RemoveTestImage(t, rt, tag) })
	// The binary lands at entrypoint[0], whatever its file name.
	id, err := rt.BuildFromBinary(ctx, runtimetest.TestAppBinary(t), tag, []string{"/dropmesh", "serve"}, 8080)
	if err != nil {
		t.Fatal(err)
	}
	info, err := rt.InspectImage(ctx, tag)
	if err != nil || info.ID != id || len(info.ExposedPorts) != 1 || info.ExposedPorts[0] != 8080 ||
		strings.Join(info.Entrypoint, " ") != "/dropmesh serve" {
		t.Fatalf("InspectImage = %+v, %v", info, err)
	}
	c := runtimetest.StartTestContainer(t, rt, runtime.ContainerSpec{Image: tag, Port: 8080, Env: map[string]string{"VERSION": "from-binary"}, StopTimeout: 5 * time.Second})
	if body := runtimetest.WaitHTTP(t, appURL(c)+"/", 20*time.Second); !strings.Contains(body, "from-binary") {
		t.Fatalf("GET / = %q", body)
	}

	for name, call := range map[string]func() error{
		"relative entrypoint": func() error {
			_, err := rt.BuildFromBinary(ctx, runtimetest.TestAppBinary(t), tag, []string{"app"}, 0)
			return err
		},
		"bad port": func() error {
			_, err := rt.BuildFromBinary(ctx, runtimetest.TestAppBinary(t), tag, nil, 70000)
			return err
		},
		"bad env": func() error {
			_, err := rt.BuildFromBinaryWithEnv(ctx, runtimetest.TestAppBinary(t), tag, nil, 0, map[string]string{"A B": "x"})
			return err
		},
	} {
		if err := call(); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	for _, notStatic := range []string{"/bin/sh", "/etc/hostname"} {
		if _, err := rt.BuildFromBinary(ctx, notStatic, tag, nil, 0); !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), notStatic) {
			t.Errorf("BuildFromBinary(%s) = %v; want ErrInvalid naming it", notStatic, err)
		}
	}
	if _, err := rt.BuildFromBinary(ctx, "/nonexistent/binary", tag, nil, 0); err == nil || !strings.Contains(err.Error(), "/nonexistent/binary") {
		t.Errorf("missing binary = %v", err)
	}
}

func TestBuildTestImageBakesEnv(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	weird := `a "quoted" $HOME \ value`
	img := runtimetest.BuildTestImage(t, rt, "env", map[string]string{"VERSION": weird})
	c := runtimetest.StartTestContainer(t, rt, runtime.ContainerSpec{Image: img, Port: runtimetest.TestAppPort, StopTimeout: 5 * time.Second})
	if body := runtimetest.WaitHTTP(t, appURL(c)+"/", 20*time.Second); !strings.Contains(body, weird) {
		t.Fatalf("GET / = %q; want the baked VERSION %q verbatim", body, weird)
	}
}
