package runtime_test

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/node/runtime/runtimetest"
)

// logLine makes the test app write one line at a level.
func logLine(t *testing.T, c runtime.ContainerInfo, level, msg string) {
	t.Helper()
	if code, body := runtimetest.HTTPPost(appURL(c)+"/admin/log?level="+level+"&msg="+url.QueryEscape(msg), ""); code != 200 {
		t.Fatalf("admin/log = %d %q", code, body)
	}
}

func logsOf(t *testing.T, rt *runtime.Runtime, id string, opts runtime.LogOptions) string {
	t.Helper()
	var b strings.Builder
	if err := rt.Logs(testCtx(t, 30*time.Second), id, opts, &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestLogs(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	c := startApp(t, runtime.ContainerSpec{})
	logLine(t, c, "error", "first line")
	runtimetest.WaitFor(t, 10*time.Second, func() bool { return strings.Contains(logsOf(t, rt, c.ID, runtime.LogOptions{}), "ERROR first line\n") })
	mark := time.Now()
	logLine(t, c, "warn", "second line")
	logLine(t, c, "info", "third line")
	runtimetest.WaitFor(t, 10*time.Second, func() bool { return strings.HasSuffix(logsOf(t, rt, c.ID, runtime.LogOptions{}), "INFO third line\n") })

	all := logsOf(t, rt, c.ID, runtime.LogOptions{})
	if !strings.HasPrefix(all, "INFO sample-app listening on") || !strings.HasSuffix(all, "ERROR first line\nWARN second line\nINFO third line\n") {
		t.Fatalf("all logs = %q; want the app's lines, demultiplexed", all)
	}
	if got := logsOf(t, rt, c.ID, runtime.LogOptions{Since: mark}); got != "WARN second line\nINFO third line\n" {
		t.Fatalf("logs since the mark = %q", got)
	}
	if got := logsOf(t, rt, c.ID, runtime.LogOptions{Tail: 1}); got != "INFO third line\n" {
		t.Fatalf("tail 1 = %q", got)
	}
	if got := logsOf(t, rt, c.ID, runtime.LogOptions{Tail: 2, Since: mark.Add(-time.Hour)}); got != "WARN second line\nINFO third line\n" {
		t.Fatalf("tail 2 with since = %q", got)
	}
	if got := logsOf(t, rt, c.ID, runtime.LogOptions{Since: mark, MaxBytes: 7}); got != "WARN se" {
		t.Fatalf("max 7 bytes = %q", got)
	}
	stamped := logsOf(t, rt, c.ID, runtime.LogOptions{Tail: 1, Timestamps: true})
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z INFO third line\n$`).MatchString(stamped) {
		t.Fatalf("timestamped = %q", stamped)
	}
	if got := logsOf(t, rt, c.ID, runtime.LogOptions{Since: time.Now().Add(time.Hour)}); got != "" {
		t.Fatalf("logs since the future = %q", got)
	}
}

func TestLogsFollowStopsWithContext(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	c := startApp(t, runtime.ContainerSpec{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var buf syncBuffer
	done := make(chan error, 1)
	go func() { done <- rt.Logs(ctx, c.ID, runtime.LogOptions{Follow: true, Tail: 1}, &buf) }()
	runtimetest.WaitFor(t, 10*time.Second, func() bool { return strings.Contains(buf.String(), "listening") })
	logLine(t, c, "error", "while following")
	runtimetest.WaitFor(t, 10*time.Second, func() bool { return strings.Contains(buf.String(), "ERROR while following\n") })
	select {
	case err := <-done:
		t.Fatalf("Follow returned while the container runs: %v", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Follow ended by ctx = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not stop when ctx ended")
	}
}

func TestLogsFollowCappedStops(t *testing.T) {
	t.Parallel()
	rt, _ := dockerFixture(t)
	c := startApp(t, runtime.ContainerSpec{})
	var buf syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- rt.Logs(testCtx(t, time.Minute), c.ID, runtime.LogOptions{Follow: true, MaxBytes: 10}, &buf)
	}()
	logLine(t, c, "error", "more than ten bytes")
	select {
	case err := <-done:
		if err != nil || len(buf.String()) != 10 {
			t.Fatalf("capped follow = %v, %q", err, buf.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a capped Follow did not stop at the cap")
	}
}
