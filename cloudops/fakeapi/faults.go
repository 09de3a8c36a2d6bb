package fakeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"
)

// Fault makes matching requests slow or failing, to test retries, rate
// limits and timeouts. Faults are tried in the order they were added; the
// first that matches is applied (and counted against its Times).
type Fault struct {
	// Method matches the request method; "" matches any.
	Method string
	// PathPrefix matches the start of the path, e.g. "/v2/droplets" or
	// "/client/v4/zones"; "" matches any provider path.
	PathPrefix string
	// Status, if set, is answered in the provider's error shape instead of
	// serving the request.
	Status int
	// RetryAfter, if set, is sent as Retry-After (whole seconds, rounded up).
	// Without it a Cloudflare 429 says Retry-After: 1 and a DigitalOcean
	// 429 sends none, only ratelimit-remaining: 0 and a ratelimit-reset a
	// second or two ahead, as DigitalOcean does.
	RetryAfter time.Duration
	// Latency delays the request (the answer or the fault) by this much, or
	// until the client gives up.
	Latency time.Duration
	// Times is how many requests the fault applies to; 0 is until cleared.
	Times int
	// ServeFirst carries the request out before the latency and the status
	// apply: the change happens even though its answer is late, lost (the
	// client gave up during Latency) or replaced by Status. It is the
	// provider that created the droplet while the caller never heard back.
	ServeFirst bool
}

// faultJSON is Fault on the wire: durations as Go duration strings ("1.5s")
// or integer nanoseconds.
type faultJSON struct {
	Method     string          `json:"method,omitempty"`
	PathPrefix string          `json:"path_prefix,omitempty"`
	Status     int             `json:"status,omitempty"`
	RetryAfter json.RawMessage `json:"retry_after,omitempty"`
	Latency    json.RawMessage `json:"latency,omitempty"`
	Times      int             `json:"times,omitempty"`
	ServeFirst bool            `json:"serve_first,omitempty"`
}

// MarshalJSON writes durations as strings.
func (f Fault) MarshalJSON() ([]byte, error) {
	j := faultJSON{Method: f.Method, PathPrefix: f.PathPrefix, Status: f.Status, Times: f.Times, ServeFirst: f.ServeFirst}
	if f.RetryAfter != 0 {
		j.RetryAfter, _ = json.Marshal(f.RetryAfter.String())
	}
	if f.Latency != 0 {
		j.Latency, _ = json.Marshal(f.Latency.String())
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads durations as strings or integer nanoseconds.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var j faultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	ra, err := parseDuration(j.RetryAfter)
	if err != nil {
		return fmt.Errorf("retry_after: %w", err)
	}
	lat, err := parseDuration(j.Latency)
	if err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	*f = Fault{Method: j.Method, PathPrefix: j.PathPrefix, Status: j.Status, RetryAfter: ra, Latency: lat, Times: j.Times, ServeFirst: j.ServeFirst}
	return nil
}

func parseDuration(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return time.ParseDuration(s)
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, fmt.Errorf("want a duration string like \"1s\" or integer nanoseconds, got %s", raw)
	}
	return time.Duration(n), nil
}

// validate checks a fault before it is installed.
func (f Fault) validate() error {
	switch {
	case f.Status != 0 && (f.Status < 400 || f.Status > 599):
		return fmt.Errorf("status %d: a fault answers 400-599 (or 0 for latency only)", f.Status)
	case f.Status == 0 && f.Latency == 0:
		return fmt.Errorf("a fault needs a status, a latency or both")
	case f.RetryAfter < 0 || f.Latency < 0 || f.Times < 0:
		return fmt.Errorf("retry_after, latency and times cannot be negative")
	case f.PathPrefix != "" && !strings.HasPrefix(f.PathPrefix, "/"):
		return fmt.Errorf("path_prefix %q must start with /", f.PathPrefix)
	}
	return nil
}

func (f Fault) matches(r *http.Request) bool {
	return (f.Method == "" || strings.EqualFold(f.Method, r.Method)) && strings.HasPrefix(r.URL.Path, f.PathPrefix)
}

// InjectFault adds a fault; a malformed one is refused.
func (s *Server) InjectFault(f Fault) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("fakeapi: %w", err)
	}
	f.Method = strings.ToUpper(f.Method)
	s.mu.Lock()
	s.faults = append(s.faults, &f)
	s.mu.Unlock()
	return nil
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// Faults returns the faults still active, with their remaining Times.
func (s *Server) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Fault, len(s.faults))
	for i, f := range s.faults {
		out[i] = *f
	}
	return out
}

// takeFaultLocked returns the fault for r, if any, and uses one of its
// Times.
func (s *Server) takeFaultLocked(r *http.Request) *Fault {
	for i, f := range s.faults {
		if !f.matches(r) {
			continue
		}
		out := *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return &out
	}
	return nil
}

// applyFault waits the latency and answers the status; true means the
// request was answered (or abandoned) and must not be served. A ServeFirst
// fault serves it first, whatever happens to the answer.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, f Fault) bool {
	if f.Latency > 0 && r.Body != nil && r.Body != http.NoBody {
		// The server notices a client that hangs up (and cancels r's
		// context) only once the body has been read to its end.
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
		if err != nil {
			return true // the client is gone already
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	if f.ServeFirst {
		// The client going away must not stop the change half-way.
		rec := httptest.NewRecorder()
		s.mux.ServeHTTP(rec, r.WithContext(context.WithoutCancel(r.Context())))
		if !delay(r, f.Latency) {
			return true // the answer is lost: the client gave up
		}
		if f.Status == 0 {
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return true
		}
		s.answerFault(w, r, f)
		return true
	}
	if !delay(r, f.Latency) {
		return true
	}
	if f.Status == 0 {
		return false
	}
	s.answerFault(w, r, f)
	return true
}

// delay waits d; false means the client gave up first.
func delay(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.Context().Done():
		return false
	case <-t.C:
		return true
	}
}

// answerFault answers f.Status in the provider's error shape.
func (s *Server) answerFault(w http.ResponseWriter, r *http.Request, f Fault) {
	cloudflare := strings.HasPrefix(r.URL.Path, "/client/v4/")
	retry := time.Duration(math.Ceil(f.RetryAfter.Seconds())) * time.Second
	// Cloudflare's 429 says Retry-After; DigitalOcean's says when its
	// window resets (ratelimit-reset, with ratelimit-remaining 0) and sends
	// Retry-After only when the fault asks for one.
	if f.RetryAfter > 0 || (cloudflare && f.Status == http.StatusTooManyRequests) {
		w.Header().Set("Retry-After", strconv.Itoa(max(int(retry/time.Second), 1)))
	}
	if f.Status == http.StatusTooManyRequests && !cloudflare {
		rateLimited(w, time.Now(), max(retry, time.Second))
	}
	msg := fmt.Sprintf("injected fault: %d %s", f.Status, http.StatusText(f.Status))
	if cloudflare {
		code := 10000 + f.Status
		if f.Status == http.StatusTooManyRequests {
			code = 971
		}
		cfError(w, f.Status, code, msg)
		return
	}
	id := "server_error"
	switch {
	case f.Status == http.StatusTooManyRequests:
		id = "too_many_requests"
	case f.Status < 500:
		id = strings.ToLower(strings.ReplaceAll(http.StatusText(f.Status), " ", "_"))
	}
	doError(w, f.Status, id, msg)
}

func (s *Server) listFaults(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"faults": s.Faults()})
}

// postFaults installs one fault (a JSON object) or several (an array); all
// or none.
func (s *Server) postFaults(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		doError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	var fs []Fault
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("[")) {
		err = json.Unmarshal(b, &fs)
	} else {
		var f Fault
		err = json.Unmarshal(b, &f)
		fs = []Fault{f}
	}
	if err != nil {
		doError(w, http.StatusBadRequest, "bad_request", "fault JSON: "+err.Error())
		return
	}
	for _, f := range fs {
		if err := f.validate(); err != nil {
			doError(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
	}
	for _, f := range fs {
		_ = s.InjectFault(f)
	}
	writeJSON(w, http.StatusCreated, map[string]any{"faults": s.Faults()})
}

func (s *Server) deleteFaults(w http.ResponseWriter, r *http.Request) {
	s.ClearFaults()
	w.WriteHeader(http.StatusNoContent)
}
