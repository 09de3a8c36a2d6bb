package runtime

import (
	"errors"
	"testing"
	"time"
)

func TestVolumePersistsAcrossReplacement(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	ctx := testCtx(t, 2*time.Minute)
	vol := TestContainerPrefix + "vol-" + RandomSuffix()
	t.Cleanup(func() { _ = rt.RemoveVolume(testCtx(t, time.Minute), vol) })
	if err := rt.EnsureVolume(ctx, vol, map[string]string{LabelManaged: "true", LabelTest: t.Name()}); err != nil {
		t.Fatal(err)
	}
	if err := rt.EnsureVolume(ctx, vol, nil); err != nil {
		t.Fatalf("second EnsureVolume = %v, want nil", err)
	}
	v, err := rt.cli.VolumeInspect(ctx, vol)
	if err != nil || v.Labels[LabelManaged] != "true" {
		t.Fatalf("volume = %+v, %v; want our labels kept", v, err)
	}

	spec := ContainerSpec{Name: TestContainerName(t), Mounts: []Mount{{Volume: vol, Target: "/data"}}, PublishIP: "127.0.0.1"}
	first := startApp(t, spec)
	if code, body := HTTPPost(appURL(first)+"/admin/write?path=/data/x&body=kept-"+vol, ""); code != 200 {
		t.Fatalf("write = %d %q", code, body)
	}
	if err := rt.Remove(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	second := startApp(t, spec)
	if code, body := HTTPGet(appURL(second) + "/admin/read?path=/data/x"); code != 200 || body != "kept-"+vol {
		t.Fatalf("read in the replacement = %d %q", code, body)
	}

	if err := rt.RemoveVolume(ctx, vol); !errors.Is(err, ErrVolumeInUse) {
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
	rt := deadRuntime(t)
	ctx := testCtx(t, 10*time.Second)
	for _, name := range []string{"", "../x", "a/b", "-x", "a b"} {
		if err := rt.EnsureVolume(ctx, name, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("EnsureVolume(%q) = %v, want ErrInvalid", name, err)
		}
		if err := rt.RemoveVolume(ctx, name); !errors.Is(err, ErrInvalid) {
			t.Errorf("RemoveVolume(%q) = %v, want ErrInvalid", name, err)
		}
	}
	if err := rt.EnsureVolume(ctx, "ok", map[string]string{"": "x"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("EnsureVolume with a bad label = %v", err)
	}
}
