package ui

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

type flushCounter struct{ n int }

func (f *flushCounter) Flush() { f.n++ }

func TestSSELines(t *testing.T) {
	var buf bytes.Buffer
	fl := &flushCounter{}
	w := &sseLines{w: &buf, flusher: fl}
	fmt.Fprint(w, "one\ntw")
	fmt.Fprint(w, "o\r\nthree\rcr\n")
	if got, want := buf.String(), "data: one\n\ndata: two\ndata: three cr\n\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if fl.n != 2 {
		t.Errorf("%d flushes, want one per write", fl.n)
	}
	buf.Reset()
	fmt.Fprint(w, "partial")
	if buf.Len() != 0 {
		t.Errorf("a partial line was sent: %q", buf.String())
	}
	w.event("end", "done\nnow")
	if got, want := buf.String(), "data: partial\n\nevent: end\ndata: done now\n\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// A line longer than the cap is cut, never held without bound.
	buf.Reset()
	fmt.Fprint(w, strings.Repeat("x", 3*maxLogLine))
	if buf.Len() == 0 || buf.Len() > maxLogLine+64 {
		t.Errorf("a huge line sent %d bytes", buf.Len())
	}
}

func TestServiceLogsStream(t *testing.T) {
	f := newFake(t, true)
	u := newTestUI(t, f, Config{})
	c := u.client()
	c.mustLogin(adminName, adminPass)
	if r := c.postMultipart("/services/deploy", sampleForm(c.token()), nil); r.Status != http.StatusSeeOther {
		t.Fatalf("deploy: %d", r.Status)
	}
	f.reportPhase(sampleKey, 1, "ready")
	container := f.instances(sampleKey)[0].Container
	base := servicePath(sampleKey) + "/logs?container=" + url.QueryEscape(container)

	// Without follow: the tail, then the end.
	events := c.openStream(t, base+"&tail=2")
	for i := 1; i <= 2; i++ {
		if ev := next(t, events, testUITimout); ev.Name != "message" || ev.Data != fmt.Sprintf("%s old line %d", container, i) {
			t.Fatalf("tail line %d: %+v", i, ev)
		}
	}
	if ev := next(t, events, testUITimout); ev.Name != "end" {
		t.Fatalf("after the tail: %+v", ev)
	}

	// Following: lines as they come.
	events = c.openStream(t, base+"&tail=0&follow=1")
	for i := 0; i < 3; i++ {
		line := fmt.Sprintf("GET /health 200 #%d", i)
		f.logLines <- line
		if ev := next(t, events, testUITimout); ev.Data != line {
			t.Fatalf("line %d: %+v", i, ev)
		}
	}

	// Only the service's own containers.
	if r := c.get(servicePath(sampleKey) + "/logs?container=other_container"); r.Status != http.StatusNotFound {
		t.Errorf("a container of another service: %d", r.Status)
	}
	if r := c.get(servicePath(sampleKey) + "/logs"); r.Status != http.StatusNotFound {
		t.Errorf("no container: %d", r.Status)
	}
	// And only signed in.
	if r := u.client().get(base); r.Status != http.StatusSeeOther {
		t.Errorf("logs without a session: %d", r.Status)
	}
}
