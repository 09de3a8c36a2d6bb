package ui

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// benchUI is a UI over a fake with services services of two instances,
// each with hours of hourly health history, and a signed-in cookie.
func benchUI(b *testing.B, services, hours int) (*server, http.Handler, *http.Cookie, *fakeNode) {
	b.Helper()
	f := newFake(b, true)
	s, err := newServer(Options{Node: f, SessionKey: testKey})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	for i := 0; i < services; i++ {
		spec := raftfsm.ServiceSpec{Workspace: testWS, Project: fmt.Sprintf("p%d", i%10), Env: "prod", Service: fmt.Sprintf("svc%d", i),
			Image: "registry.example.com/app:1", Port: 8080, Replicas: 2, Hosts: []string{fmt.Sprintf("s%d.example.com", i)}}
		res, err := f.Deploy(b.Context(), controlDeploy(spec))
		if err != nil {
			b.Fatal(err)
		}
		var reports []raftfsm.HealthReport
		for h := hours; h >= 0; h-- {
			status := raftfsm.HealthHealthy
			if h%7 == 3 {
				status = raftfsm.HealthDegraded
			}
			for _, in := range f.instances(res.Service) {
				reports = append(reports, raftfsm.HealthReport{Instance: in.ID, Status: status, CheckedAt: now.Add(-time.Duration(h) * time.Hour)})
			}
		}
		for _, node := range []string{"node-1", "node-2", "node-3"} {
			f.must(&raftfsm.ReportHealth{At: now, Node: node, Results: reports})
		}
	}
	var u *raftfsm.User
	f.View(func(st *raftfsm.State) { c := *st.Users[adminName]; u = &c })
	value, _ := s.sign.newSession(u, now.Add(time.Hour))
	return s, s.routes(), &http.Cookie{Name: sessionCookie, Value: value}, f
}

func benchPage(b *testing.B, h http.Handler, ck *http.Cookie, path string) {
	b.Helper()
	var size int
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.AddCookie(ck)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s: %d", path, rec.Code)
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
	b.ReportMetric(float64(size)/1024, "KiB/page")
}

// BenchmarkServicesPage: the services list of a cluster with 200 services.
func BenchmarkServicesPage(b *testing.B) {
	_, h, ck, _ := benchUI(b, 200, 0)
	benchPage(b, h, ck, "/services")
}

// BenchmarkOverviewFragment: what every live refresh of the overview costs.
func BenchmarkOverviewFragment(b *testing.B) {
	_, h, ck, _ := benchUI(b, 200, 0)
	benchPage(b, h, ck, "/?fragment=main")
}

// BenchmarkServicePageWeekOfHistory: a service page with a week of hourly
// health checks that flap (many segments) on both instances.
func BenchmarkServicePageWeekOfHistory(b *testing.B) {
	_, h, ck, _ := benchUI(b, 1, 7*24)
	benchPage(b, h, ck, servicePath(testWS+"/p0/prod/svc0")+"?fragment=main")
}

// BenchmarkChangeToEvent: from a committed change to the "change" event a
// browser receives (with a coalescing interval of 1 ms, so the figure is
// the stream's own latency).
func BenchmarkChangeToEvent(b *testing.B) {
	f := newFake(b, true)
	u := newTestUI(b, f, Config{EventInterval: time.Millisecond})
	c := u.client()
	c.mustLogin(adminName, adminPass)
	events := c.openStreamB(b, "/events")
	if ev := <-events; ev.Name != "hello" {
		b.Fatalf("first event %+v", ev)
	}
	b.ResetTimer()
	for b.Loop() {
		f.must(&raftfsm.AppendEvent{At: time.Now().UTC(), Event: raftfsm.Event{Kind: raftfsm.EventCluster, Message: "tick"}})
		want := strconv.FormatUint(f.srv().stateIndex(), 10)
		deadline := time.After(5 * time.Second)
		for done := false; !done; {
			select {
			case ev := <-events:
				done = ev.Data == want
			case <-deadline:
				b.Fatal("no change event within 5s")
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/event")
}
