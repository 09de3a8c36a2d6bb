package runtime

// Tests of unexported helpers that need no Docker engine and no test kit.

import (
	"strings"
	"testing"
	"time"
)

func TestPullProgressThrottle(t *testing.T) {
	var got []string
	th := newThrottle(time.Hour, func(s string) { got = append(got, s) })
	for _, s := range []string{"a", "b", "c"} {
		th.line(s)
	}
	th.flush()
	if strings.Join(got, ",") != "a,c" {
		t.Fatalf("throttled lines = %q; want the first at once and the last on flush", got)
	}
	pull := `{"status":"Pulling from x","id":"v1"}
{"status":"Pulling fs layer","progressDetail":{},"id":"l1"}
{"status":"Pulling fs layer","progressDetail":{},"id":"l2"}
{"status":"Downloading","progressDetail":{"current":1,"total":2},"id":"l1"}
{"status":"Pull complete","progressDetail":{},"id":"l1"}
{"status":"Already exists","progressDetail":{},"id":"l3"}
{"status":"Digest: sha256:abc"}
`
	got = nil
	th = newThrottle(0, func(s string) { got = append(got, s) })
	if err := drainPull(strings.NewReader(pull), th); err != nil {
		t.Fatal(err)
	}
	if want := "pulling 0/1 layers,pulling 0/2 layers,pulling 0/2 layers,pulling 1/2 layers,pulling 2/3 layers"; strings.Join(got, ",") != want {
		t.Fatalf("pull progress = %q, want %q", strings.Join(got, ","), want)
	}
	bad := `{"status":"Pulling fs layer","id":"l1"}
{"errorDetail":{"message":"unauthorized: authentication required"},"error":"unauthorized: authentication required"}
`
	if err := drainPull(strings.NewReader(bad), newThrottle(0, nil)); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Fatalf("a stream error = %v; want Docker's message", err)
	}
}
