package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/node/egress"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// delivery is one event for one webhook, as the webhook was when the event
// was planned (a later PutWebhook applies to later events).
// The pointers are into copies made for the batch, shared by its deliveries.
type delivery struct {
	hook    *raftfsm.Webhook
	cluster string
	event   *raftfsm.Event
}

// target is the worker of one webhook: it posts its deliveries in order,
// retrying each within its own budget, so a dead receiver only delays itself.
type target struct {
	id     string
	queue  chan delivery
	cancel context.CancelFunc
}

// targets owns the workers, one per webhook id.
type targets struct {
	cfg    Config
	logger *slog.Logger
	wg     sync.WaitGroup
	byID   map[string]*target
}

func newTargets(cfg Config) *targets {
	return &targets{cfg: cfg, logger: cfg.Logger, byID: map[string]*target{}}
}

// sync starts a worker for every webhook in ids that has none and stops the
// workers of webhooks that are gone.
func (ts *targets) sync(ctx context.Context, ids map[string]bool) {
	for id, t := range ts.byID {
		if !ids[id] {
			t.cancel()
			delete(ts.byID, id)
		}
	}
	for id := range ids {
		if _, ok := ts.byID[id]; ok {
			continue
		}
		tctx, cancel := context.WithCancel(ctx)
		t := &target{id: id, queue: make(chan delivery, ts.cfg.QueueSize), cancel: cancel}
		ts.byID[id] = t
		ts.wg.Add(1)
		go func() {
			defer ts.wg.Done()
			ts.work(tctx, t)
		}()
	}
}

// enqueue hands d to its webhook's worker, dropping it (logged) when the
// queue is full: delivery is at most once, memory is bounded.
func (ts *targets) enqueue(d delivery) {
	t, ok := ts.byID[d.hook.ID]
	if !ok {
		return
	}
	select {
	case t.queue <- d:
	default:
		ts.logger.Warn("webhook queue full; event dropped", "webhook", d.hook.ID, "host", hostOf(d.hook.URL),
			"kind", d.event.Kind, "seq", d.event.Seq)
	}
}

// stop ends every worker and waits for them.
func (ts *targets) stop() {
	for id, t := range ts.byID {
		t.cancel()
		delete(ts.byID, id)
	}
	ts.wg.Wait()
}

func (ts *targets) work(ctx context.Context, t *target) {
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-t.queue:
			attempts, err := ts.send(ctx, d)
			log := ts.logger.With("webhook", d.hook.ID, "host", hostOf(d.hook.URL), "kind", d.event.Kind, "seq", d.event.Seq, "attempts", attempts)
			switch {
			case err == nil:
				log.Debug("webhook delivered")
			case ctx.Err() != nil:
				return
			default:
				log.Warn("webhook delivery failed; event dropped", "err", err)
			}
		}
	}
}

// errPermanent marks a failure that retrying cannot fix (a 4xx answer, a
// payload that cannot be built).
var errPermanent = errors.New("permanent failure")

// send posts one delivery, retrying 5xx, 429, 408 and network errors with
// backoff up to MaxAttempts. It returns the attempts made.
func (ts *targets) send(ctx context.Context, d delivery) (int, error) {
	body, err := Payload(d.hook.Format, d.cluster, *d.event)
	if err != nil {
		return 0, fmt.Errorf("webhook %s: %w: %w", d.hook.ID, errPermanent, err)
	}
	wait := ts.cfg.Backoff
	for attempt := 1; ; attempt++ {
		retryAfter, err := ts.post(ctx, *d.hook, body)
		if err == nil {
			return attempt, nil
		}
		if errors.Is(err, errPermanent) || attempt >= ts.cfg.MaxAttempts || ctx.Err() != nil {
			return attempt, err
		}
		pause := wait
		if retryAfter > 0 {
			pause = min(retryAfter, ts.cfg.MaxBackoff)
		}
		timer := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			timer.Stop()
			return attempt, ctx.Err()
		case <-timer.C:
		}
		wait = min(wait*2, ts.cfg.MaxBackoff)
	}
}

// maxResponseBody is how much of a receiver's answer is read (and
// discarded, to reuse the connection); the rest goes with the connection.
const maxResponseBody = 4 << 10

// post makes one attempt. A non-2xx answer is an error; 4xx other than 408
// and 429 are permanent. retryAfter is the receiver's Retry-After, if any.
func (ts *targets) post(ctx context.Context, w raftfsm.Webhook, body []byte) (retryAfter time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("webhook %s: %w: %w", w.ID, errPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "dropmesh-notify")
	resp, err := ts.cfg.HTTPClient.Do(req)
	if err != nil {
		// The error text holds the URL, with its token: name the host only.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		if errors.Is(err, egress.ErrRefused) {
			return 0, fmt.Errorf("webhook %s (%s): %w: %w", w.ID, hostOf(w.URL), errPermanent, err)
		}
		return 0, fmt.Errorf("webhook %s (%s): %w", w.ID, hostOf(w.URL), err)
	}
	defer resp.Body.Close()
	// The answer is drained, never echoed: a log line or an event would
	// hand whatever the target says (a metadata document, an internal
	// page) to whoever reads them. Only the status is kept.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	if resp.StatusCode/100 == 2 {
		return 0, nil
	}
	if resp.StatusCode/100 == 3 {
		return 0, fmt.Errorf("webhook %s (%s): %w: answered %d, a redirect (webhooks follow none)", w.ID, hostOf(w.URL), errPermanent, resp.StatusCode)
	}
	err = fmt.Errorf("webhook %s (%s): answered %d", w.ID, hostOf(w.URL), resp.StatusCode)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		return parseRetryAfter(resp.Header.Get("Retry-After")), err
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		return 0, err
	default:
		return 0, fmt.Errorf("%w: %w", errPermanent, err)
	}
}

// parseRetryAfter reads a Retry-After in seconds (Discord and Slack send
// seconds; an HTTP date is ignored and the backoff applies).
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	secs, err := strconv.ParseFloat(v, 64)
	if err != nil || secs <= 0 {
		return 0
	}
	return time.Duration(secs * float64(time.Second))
}

// hostOf returns the host of a webhook URL, safe to log.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "?"
	}
	return u.Host
}
