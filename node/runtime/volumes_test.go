package runtime_test

import (
	"errors"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
)

func TestVolumePersistsAcrossReplacement(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	ctx := testCtx(t, 2*time.Minute)
	vol := runtimetest.TestContainerPrefix + "vol-" + runtimetest.RandomSuffix()
	t.Cleanup(func() { _ = rt.RemoveVolume(testCtx(t, time.Minute), vol) })
	if err := rt.EnsureVolume(ctx, vol, map[string]string{runtime.LabelManaged: "true", runtimetest.LabelTest: t.Name()}); err != nil {
		t.Fatal(err)
	}
	if err := rt.EnsureVolume(ctx, vol, nil); err != nil {
		t.Fatalf("second EnsureVolume = %v, want nil", err)
	}
	v, err := rt.Docker().VolumeInspect(ctx, vol)
	if err != nil || v.Labels[runtime.LabelManaged] != "true" {
		t.Fatalf("volume = %+v, %v; want our labels kept", v, err)
	}

	spec := runtime.ContainerSpec{Name: runtimetest.TestContainerName(t), Mounts: []runtime.Mount{{Volume: vol, Target: "/data"}}, PublishIP: "127.0.0.1"}
	first := startApp(t, spec)
	if code, body := runtimetest.HTTPPost(appURL(first)+"/admin/write?path=/data/x&body=kept-"+vol, ""); code != 200 {
		t.Fatalf("write = %d %q", code, body)
	}
	if err := rt.Remove(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	second := startApp(t, spec)
	if code, body := runtimetest.HTTPGet(appURL(second) + "/admin/read?path=/data/x"); code != 200 || body != "kept-"+vol {
		t.Fatalf("read in the replacement = %d %q", code, body)
	}

	if err := rt.RemoveVolume(ctx, vol); !errors.Is(err, runtime.ErrVolumeInUse) {
		t.Fatalf("RemoveVolume while mounted = %v, want ErrVolumeInUse", err)
	}
	if err := rt.Remove(ctx, second.ID); err != nil {
		t.Fatal(err)
	}
	if err := rt.RemoveVolume(ctx, vol); err != nil {
		t.Fatal(err)
	}
	if ok, err := rt.VolumeExists(ctx, vol); ok || err != nil {
		t.Fatalf("VolumeExists after removal = %t, %v", ok, err)
	}
	if err := rt.RemoveVolume(ctx, vol); err != nil {
		t.Fatalf("RemoveVolume of a missing volume = %v, want nil", err)
	}
}

func TestVolumeNamesAreChecked(t *testing.T) {
	rt := runtime.DeadRuntime(t)
	ctx := testCtx(t, 10*time.Second)
	for _, name := range []string{"", "../x", "a/b", "-x", "a b"} {
		if err := rt.EnsureVolume(ctx, name, nil); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("EnsureVolume(%q) = %v, want ErrInvalid", name, err)
		}
		if err := rt.RemoveVolume(ctx, name); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("RemoveVolume(%q) = %v, want ErrInvalid", name, err)
		}
	}
	if err := rt.EnsureVolume(ctx, "ok", map[string]string{"": "x"}); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("EnsureVolume with a bad label = %v", err)
	}
}
