package health

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestExecCheckReplacesTheProbe: a service with a health command is judged
// by the command's exit code (its output in the reason), not by its port,
// for a worker as for a service; an exited container is unhealthy without
// running it.
func TestExecCheckReplacesTheProbe(t *testing.T) {
	c, err := NewChecker(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ran := 0
	execWith := func(code int, out string, err error) func(context.Context) (int, string, error) {
		return func(ctx context.Context) (int, string, error) {
			ran++
			if _, ok := ctx.Deadline(); !ok {
				t.Error("health command run without a deadline")
			}
			return code, out, err
		}
	}
	// The address answers nothing: a probe would fail, the command decides.
	base := Target{Kind: KindService, Addr: "127.0.0.1:1", Running: true}
	for _, tc := range []struct {
		name   string
		target func() Target
		want   Status
		reason string
	}{
		{"exit 0", func() Target { t := base; t.Exec = execWith(0, "ok", nil); return t }, StatusHealthy, ""},
		{"exit 1", func() Target { t := base; t.Exec = execWith(1, "pg: no response\n", nil); return t }, StatusUnhealthy, "exited with code 1: pg: no response"},
		{"exec error", func() Target { t := base; t.Exec = execWith(0, "", errors.New("no such container")); return t }, StatusUnhealthy, "no such container"},
		{"worker", func() Target {
			t := Target{Kind: KindWorker, Running: true, Exec: execWith(2, "", nil)}
			return t
		}, StatusUnhealthy, "code 2"},
	} {
		r := c.Check(context.Background(), "id-"+tc.name, now, tc.target())
		if r.Status != tc.want || !strings.Contains(r.Reason, tc.reason) {
			t.Errorf("%s: %s %q; want %s with %q", tc.name, r.Status, r.Reason, tc.want, tc.reason)
		}
	}
	before := ran
	exited := base
	exited.Running, exited.ExitCode, exited.Exec = false, 137, execWith(0, "", nil)
	if r := c.Check(context.Background(), "id-exited", now, exited); r.Status != StatusUnhealthy || ran != before {
		t.Fatalf("exited container: %s %q, command run %d times", r.Status, r.Reason, ran-before)
	}
}
