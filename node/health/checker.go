package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// The kinds of Target, as in a service spec's kind.
const (
	KindService  = "service"
	KindWorker   = "worker"
	KindCron     = "cron"
	KindStateful = "stateful"
)

// LogSource returns the container's log (stdout and stderr, demultiplexed)
// written since `since`, at most maxBytes of it. The checker closes it.
type LogSource func(ctx context.Context, since time.Time, maxBytes int64) (io.ReadCloser, error)

// Target is what the caller knows of one container at check time.
type Target struct {
	// Kind is service, worker, cron or stateful; "" means service when Addr
	// is set, worker otherwise.
	Kind string
	// Addr is the host:port to probe (service, stateful). A service without
	// an address is checked as a worker.
	Addr string
	// Path is the HTTP health path; "" probes with a TCP connect.
	Path string
	// Running and ExitCode are the container's state.
	Running  bool
	ExitCode int
	// StartedAt is when the container (or job) started; with StartGrace it
	// makes early failures read starting, and the first log scan starts
	// no earlier than it.
	StartedAt  time.Time
	StartGrace time.Duration
	// Logs reads the container's log; nil skips the log scan.
	Logs LogSource
	// LogPattern is the service's own error-line pattern (RE2); "" uses the
	// checker's Config.LogPattern. Each pattern is compiled once and cached.
	LogPattern string
	// Cron is the job's state; required for kind cron.
	Cron *CronState
	// Exec runs the service's own health command inside the container
	// (a Compose healthcheck test); when set it replaces the port probe.
	// It returns the command's exit code and the start of its output.
	Exec func(ctx context.Context) (exitCode int, output string, err error)
}

// maxCachedScanners bounds the compiled per-service log patterns a Checker
// keeps. A node runs few distinct patterns; the bound only stops a stream of
// spec changes from growing the cache for ever (an evicted pattern is simply
// compiled again at its next check).
const maxCachedScanners = 64

// Checker runs checks and remembers, per container id, when it last
// checked, so each log scan reads only what is new. It is safe for
// concurrent use; checks of different ids run in parallel.
type Checker struct {
	cfg     Config
	scanner *LogScanner // of cfg.LogPattern

	mu       sync.Mutex
	cursors  map[string]time.Time   // id -> time of the previous check
	scanners map[string]*LogScanner // Target.LogPattern -> its compiled scanner
}

// NewChecker returns a Checker with cfg, or an error naming the bad field
// (an invalid LogPattern among them).
func NewChecker(cfg Config) (*Checker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	scanner, err := NewLogScanner(cfg.LogPattern)
	if err != nil {
		return nil, err
	}
	return &Checker{cfg: cfg, scanner: scanner, cursors: map[string]time.Time{}, scanners: map[string]*LogScanner{}}, nil
}

// Config returns the checker's configuration.
func (c *Checker) Config() Config { return c.cfg }

// Check checks container id as it is at now (the caller's clock; also the
// result's CheckedAt and the start of the next log scan). It never returns
// an error: a bad target is an unhealthy result saying what is wrong, and
// leaves the checker unchanged.
func (c *Checker) Check(ctx context.Context, id string, now time.Time, t Target) Result {
	return c.run(ctx, id, now, t, scanFrom{})
}

// CheckOnce runs the same check as Check but leaves what the checker
// remembers of id alone: its log scan starts at since (zero: where a first
// check of id would start), and the next Check of id reads the lines it
// would have read anyway. It answers on-demand questions (the agent API's
// health route) without taking lines away from the periodic checks.
func (c *Checker) CheckOnce(ctx context.Context, id string, now, since time.Time, t Target) Result {
	return c.run(ctx, id, now, t, scanFrom{once: true, since: since})
}

// scanFrom says where a log scan starts: the cursor of the id (the
// periodic checks), or a given time that leaves the cursor alone (once).
type scanFrom struct {
	once  bool
	since time.Time
}

func (c *Checker) run(ctx context.Context, id string, now time.Time, t Target, from scanFrom) Result {
	status, reason, scanned := c.check(ctx, id, now, t, from)
	if status == StatusUnhealthy && !t.StartedAt.IsZero() && t.StartGrace > 0 && now.Sub(t.StartedAt) < t.StartGrace {
		status = StatusStarting
	}
	if scanned && !from.once {
		c.mu.Lock()
		c.cursors[id] = now
		c.mu.Unlock()
	}
	return Result{Status: status, Reason: reason, CheckedAt: now.UTC()}
}

// check returns the status and reason, and whether the log up to now counts
// as scanned (the cursor moves).
func (c *Checker) check(ctx context.Context, id string, now time.Time, t Target, from scanFrom) (Status, string, bool) {
	if id == "" {
		return StatusUnhealthy, "invalid check: empty container id", false
	}
	kind := t.Kind
	if kind == "" {
		kind = KindWorker
		if t.Addr != "" {
			kind = KindService
		}
	}
	switch kind {
	case KindCron:
		if t.Cron == nil {
			return StatusUnhealthy, "invalid check: cron job without run state", false
		}
		st, reason := checkCron(c.cfg, *t.Cron, now)
		return st, reason, false
	case KindService, KindStateful, KindWorker:
		if t.Exec != nil {
			return c.checkExec(ctx, id, now, t, from)
		}
		if kind == KindWorker {
			return c.checkWorker(ctx, id, now, t, from)
		}
		if t.Addr == "" {
			return c.checkWorker(ctx, id, now, t, from)
		}
		var err error
		if t.Path != "" {
			err = ProbeHTTP(ctx, t.Addr, t.Path, c.cfg.ProbeTimeout)
		} else {
			err = ProbeTCP(ctx, t.Addr, c.cfg.ProbeTimeout)
		}
		if errors.Is(err, ErrInvalid) {
			return StatusUnhealthy, "invalid check: " + err.Error(), false
		}
		if err != nil {
			if !t.Running {
				return StatusUnhealthy, fmt.Sprintf("container exited with code %d", t.ExitCode), true
			}
			return StatusUnhealthy, err.Error(), true
		}
		return c.scanLogs(ctx, id, now, t, from)
	default:
		return StatusUnhealthy, fmt.Sprintf("invalid check: unknown kind %q (want service, worker, cron or stateful)", t.Kind), false
	}
}

// checkExec runs the health command inside the running container, within
// ProbeTimeout: a non-zero exit is unhealthy with the command's output as
// the reason; a zero exit goes on to the log scan.
func (c *Checker) checkExec(ctx context.Context, id string, now time.Time, t Target, from scanFrom) (Status, string, bool) {
	if !t.Running {
		return StatusUnhealthy, fmt.Sprintf("container exited with code %d", t.ExitCode), true
	}
	ectx, cancel := context.WithTimeout(ctx, c.cfg.ProbeTimeout)
	code, out, err := t.Exec(ectx)
	cancel()
	if err != nil {
		return StatusUnhealthy, "health command: " + err.Error(), true
	}
	if code != 0 {
		reason := fmt.Sprintf("health command exited with code %d", code)
		if out = strings.TrimSpace(out); out != "" {
			reason += ": " + out[:min(len(out), 200)]
		}
		return StatusUnhealthy, reason, true
	}
	return c.scanLogs(ctx, id, now, t, from)
}

func (c *Checker) checkWorker(ctx context.Context, id string, now time.Time, t Target, from scanFrom) (Status, string, bool) {
	if !t.Running {
		return StatusUnhealthy, fmt.Sprintf("container exited with code %d", t.ExitCode), true
	}
	return c.scanLogs(ctx, id, now, t, from)
}

// scanLogs reads the log since the previous check, within LogTimeout. If it
// cannot be read the container still answered: healthy, with the reason
// saying so, and the cursor stays so the next check reads the lines again.
// A service pattern that does not compile (a spec older than its
// validation) makes it degraded, saying so, rather than unhealthy: the
// container answers, and restarting it would not mend the pattern.
func (c *Checker) scanLogs(ctx context.Context, id string, now time.Time, t Target, from scanFrom) (Status, string, bool) {
	if t.Logs == nil {
		return StatusHealthy, "", true
	}
	scanner, err := c.scannerFor(t.LogPattern)
	if err != nil {
		return StatusDegraded, "log not scanned: " + err.Error(), false
	}
	since := from.since
	if !from.once {
		since = c.since(id, now, t.StartedAt)
	} else if since.IsZero() {
		since = c.firstSince(now, t.StartedAt)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.LogTimeout)
	defer cancel()
	rc, err := t.Logs(ctx, since, c.cfg.MaxLogBytes)
	if err != nil {
		return StatusHealthy, "log not read: " + err.Error(), false
	}
	defer rc.Close()
	n, first, err := scanner.Scan(rc, c.cfg.MaxLogBytes)
	if n > 0 {
		return StatusDegraded, first, true
	}
	if err != nil {
		return StatusHealthy, "log not read: " + err.Error(), false
	}
	return StatusHealthy, "", true
}

// since is where the scan of id starts: the previous check, or for a first
// check the container's start but no more than FirstScanWindow back.
func (c *Checker) since(id string, now, started time.Time) time.Time {
	c.mu.Lock()
	cur, ok := c.cursors[id]
	c.mu.Unlock()
	if ok {
		return cur
	}
	return c.firstSince(now, started)
}

// firstSince is where the first scan of a container starts: its start, but
// no more than FirstScanWindow back.
func (c *Checker) firstSince(now, started time.Time) time.Time {
	since := now.Add(-c.cfg.FirstScanWindow)
	if started.After(since) {
		since = started
	}
	return since
}

// scannerFor returns the scanner of a target's pattern: the checker's own
// for "", else the cached compilation of pattern (compiled on first use).
func (c *Checker) scannerFor(pattern string) (*LogScanner, error) {
	if pattern == "" || pattern == c.cfg.LogPattern {
		return c.scanner, nil
	}
	c.mu.Lock()
	s, ok := c.scanners[pattern]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err := NewLogScanner(pattern)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.scanners) >= maxCachedScanners {
		for p := range c.scanners {
			delete(c.scanners, p) // any one: see maxCachedScanners
			break
		}
	}
	c.scanners[pattern] = s
	return s, nil
}

// SetCursor makes the next scan of id read the log from since (the API's
// `since` parameter, or a restored agent state).
func (c *Checker) SetCursor(id string, since time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cursors[id] = since
}

// Cursor returns where the next log scan of id starts, if id was checked.
func (c *Checker) Cursor(id string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.cursors[id]
	return t, ok
}

// Forget drops what the checker remembers of id (the container is gone).
func (c *Checker) Forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cursors, id)
}
