package fakeapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func post(t *testing.T, url, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestFaultsOverHTTP(t *testing.T) {
	s, url := start(t, Options{})
	resp := post(t, url+"/_fake/faults", `{"method":"get","path_prefix":"/v2/droplets","status":429,"retry_after":"1500ms","times":2}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("install: %d", resp.StatusCode)
	}
	for i := range 2 {
		r := get(t, url+"/v2/droplets", DefaultToken)
		if r.StatusCode != 429 || r.Header.Get("Retry-After") != "2" {
			t.Fatalf("request %d: %d Retry-After %q, want 429 and 2 (1.5 s rounded up)", i, r.StatusCode, r.Header.Get("Retry-After"))
		}
		var body struct{ ID, Message string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.ID != "too_many_requests" {
			t.Fatalf("DigitalOcean-shaped error expected: %+v %v", body, err)
		}
	}
	if r := get(t, url+"/v2/droplets", DefaultToken); r.StatusCode != 200 {
		t.Fatalf("after times ran out: %d", r.StatusCode)
	}
	if n := s.Requests("GET /v2/droplets"); n != 3 {
		t.Fatalf("counted %d, want 3 (faulted ones included)", n)
	}
	if len(s.Faults()) != 0 {
		t.Fatalf("used-up fault still listed: %+v", s.Faults())
	}

	// Several at once; Cloudflare paths get Cloudflare's shape.
	resp = post(t, url+"/_fake/faults", `[{"path_prefix":"/client/v4/","status":503},{"method":"POST","status":500,"latency":1000000}]`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("install two: %d", resp.StatusCode)
	}
	r := get(t, url+"/client/v4/zones", DefaultToken)
	var cf struct {
		Success bool
		Errors  []struct{ Code int }
	}
	if err := json.NewDecoder(r.Body).Decode(&cf); err != nil || r.StatusCode != 503 || cf.Success || len(cf.Errors) != 1 {
		t.Fatalf("cloudflare fault: %d %+v %v", r.StatusCode, cf, err)
	}
	lr := get(t, url+"/_fake/faults", "")
	var listed struct{ Faults []Fault }
	if err := json.NewDecoder(lr.Body).Decode(&listed); err != nil || len(listed.Faults) != 2 || listed.Faults[1].Latency != time.Millisecond {
		t.Fatalf("listed faults: %+v %v", listed, err)
	}
	req, _ := http.NewRequest(http.MethodDelete, url+"/_fake/faults", nil)
	if dr, err := http.DefaultClient.Do(req); err != nil || dr.StatusCode != http.StatusNoContent {
		t.Fatalf("clear: %v %v", dr, err)
	}
	if r := get(t, url+"/client/v4/zones", DefaultToken); r.StatusCode != 200 {
		t.Fatalf("after clearing: %d", r.StatusCode)
	}
}

func TestBadFaultsAreRefused(t *testing.T) {
	s, url := start(t, Options{})
	for _, body := range []string{
		`{"status":200}`, `{}`, `{"status":500,"latency":"soon"}`, `{"status":500,"times":-1}`,
		`{"status":500,"path_prefix":"v2"}`, `not json`, `[{"status":500},{"status":99}]`,
	} {
		r := post(t, url+"/_fake/faults", body)
		b, _ := io.ReadAll(r.Body)
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", body, r.StatusCode, b)
		}
	}
	if n := len(s.Faults()); n != 0 {
		t.Fatalf("%d faults installed from bad input", n)
	}
	if err := s.InjectFault(Fault{Status: 700}); err == nil {
		t.Fatal("InjectFault took status 700")
	}
}

func TestFaultJSONRoundTrip(t *testing.T) {
	f := Fault{Method: "PUT", PathPrefix: "/v2/firewalls", Status: 502, RetryAfter: 2 * time.Second, Latency: 30 * time.Millisecond, Times: 3, ServeFirst: true}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"retry_after":"2s"`) {
		t.Fatalf("durations not written as strings: %s", b)
	}
	var back Fault
	if err := json.Unmarshal(b, &back); err != nil || back != f {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}

func TestLatencyFaultEndsWithTheClient(t *testing.T) {
	s, url := start(t, Options{})
	if err := s.InjectFault(Fault{Latency: time.Hour}); err != nil {
		t.Fatal(err)
	}
	c := doClient(t, url, DefaultToken)
	cx, cancel := contextWithTimeout(t, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := c.Droplets.List(cx, nil); err == nil {
		t.Fatal("a request delayed by an hour succeeded")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("took %v", took)
	}
}

// A delayed request with a body ends when its client gives up, too: the
// fake reads the body first, without which the server cannot notice the
// client leave, and the request would hold its connection for the whole
// latency.
func TestLatencyFaultOnAPOSTEndsWithTheClient(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	hs := httptest.NewServer(contract.Wrap(s))
	if err := s.InjectFault(Fault{Method: "POST", Latency: time.Hour}); err != nil {
		t.Fatal(err)
	}
	cx, cancel := contextWithTimeout(t, 100*time.Millisecond)
	defer cancel()
	if _, _, err := doClient(t, hs.URL, DefaultToken).Droplets.Create(cx, createReq("held")); err == nil {
		t.Fatal("a create delayed by an hour succeeded")
	}
	closed := make(chan struct{})
	go func() {
		hs.Close() // waits for the requests still running
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("the delayed POST still runs after its client left")
	}
	if n := len(s.State().Droplets); n != 0 {
		t.Fatalf("%d droplets: the abandoned create was served", n)
	}
}

// A ServeFirst fault makes the change and loses the answer: the create
// happens at the provider while its caller only sees a timeout or an error.
func TestServeFirstCreatesThenLosesTheAnswer(t *testing.T) {
	s, url := start(t, Options{})
	c := doClient(t, url, DefaultToken)
	names := func() map[string]int {
		out := map[string]int{}
		for _, d := range s.State().Droplets {
			out[d.Name]++
		}
		return out
	}
	if err := s.InjectFault(Fault{Method: "POST", PathPrefix: "/v2/droplets", ServeFirst: true, Latency: time.Hour, Times: 1}); err != nil {
		t.Fatal(err)
	}
	cx, cancel := contextWithTimeout(t, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := c.Droplets.Create(cx, createReq("lost")); err == nil {
		t.Fatal("a create whose answer is held for an hour succeeded")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("took %v: the held answer did not end with the client", took)
	}
	waitFor(t, 5*time.Second, "the droplet whose answer was lost", func() bool { return names()["lost"] == 1 })

	// With a status: the change happens and the caller gets the error.
	if err := s.InjectFault(Fault{Method: "POST", PathPrefix: "/v2/droplets", ServeFirst: true, Status: 502, Times: 1}); err != nil {
		t.Fatal(err)
	}
	if _, resp, err := c.Droplets.Create(ctx(t), createReq("failed")); err == nil || resp == nil || resp.StatusCode != 502 {
		t.Fatalf("create answered %v, want the injected 502", err)
	}
	// With latency only: the real answer arrives late.
	if err := s.InjectFault(Fault{Method: "POST", PathPrefix: "/v2/droplets", ServeFirst: true, Latency: 100 * time.Millisecond, Times: 1}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	d, _, err := c.Droplets.Create(ctx(t), createReq("late"))
	if err != nil || d.Name != "late" || d.ID == 0 {
		t.Fatalf("late create: %+v %v", d, err)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Fatalf("answered after %v, before the latency", took)
	}
	if got := names(); got["failed"] != 1 || got["late"] != 1 || len(got) != 3 {
		t.Fatalf("droplets %v, want lost, failed and late once each", got)
	}
}
