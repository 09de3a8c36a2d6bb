package ui

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// followerOf builds a follower whose state says the leader (node-2) serves
// its UI at leader's test server.
func followerOf(t *testing.T, leader *testUI, uiHost string) *testUI {
	t.Helper()
	f := newFake(t, true)
	addr := strings.TrimPrefix(leader.ts.URL, "http://")
	f.must(&raftfsm.UpsertNode{At: time.Now().UTC(), Node: raftfsm.Node{ID: "node-2", Region: "fra1", API: "127.0.0.3:9999", UI: addr}})
	if uiHost != "" {
		f.must(&raftfsm.UpdateSettings{At: time.Now().UTC(), UIHost: &uiHost})
	}
	f.setLeader("node-2")
	return newTestUI(t, f, Config{})
}

func TestFollowerRedirectsToLeader(t *testing.T) {
	leader := newTestUI(t, newFake(t, true), Config{})
	follower := followerOf(t, leader, "")
	c := follower.client()
	r := c.get("/services?x=1")
	if r.Status != http.StatusFound || r.location() != leader.ts.URL+"/services?x=1" {
		t.Fatalf("follower GET: %d to %q, want 302 to %s/services?x=1", r.Status, r.location(), leader.ts.URL)
	}
	// Static files are served by every node.
	if r := c.get("/static/app.css"); r.Status != http.StatusOK {
		t.Errorf("follower static: %d", r.Status)
	}
}

// A browser signed in on a node's address that no longer leads (an
// election moved leadership) stays on that address, signed in: the node
// proxies its pages to the new leader instead of sending it to an address
// where its cookie does not belong. Without a valid session it is sent to
// the leader as before.
func TestFollowerProxiesABrowserSignedInOnItsAddress(t *testing.T) {
	leader := newTestUI(t, newFake(t, true), Config{})
	follower := followerOf(t, leader, "")
	// The users are replicated: the follower's state holds the leader's admin.
	var admin raftfsm.User
	leader.fake.fsm.View(func(s *raftfsm.State) { admin = *s.Users[adminName] })
	follower.fake.must(&raftfsm.PutUser{At: time.Now().UTC(), Name: admin.Name, PasswordHash: admin.PasswordHash, Role: admin.Role})

	// Signed in while this address led (the cookie of the leader's sign-in).
	signIn := leader.client()
	r := signIn.login(adminName, adminPass)
	var session string
	for _, ck := range (&http.Response{Header: r.Header}).Cookies() {
		if ck.Name == sessionCookie {
			session = ck.Value
		}
	}
	if session == "" {
		t.Fatalf("sign-in set no session cookie: %d", r.Status)
	}
	get := func(cookie string) response {
		req, _ := http.NewRequest(http.MethodGet, follower.ts.URL+"/services", nil)
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
		}
		return follower.client().do(req)
	}
	if page := get(session); page.Status != http.StatusOK || !strings.Contains(page.Body, "served by node-1") || !strings.Contains(page.Body, "deploy-form") {
		t.Fatalf("a signed-in browser on the follower's address: %d %q, want the leader's services page through the proxy", page.Status, page.location())
	}
	for _, bad := range []string{"", "forged." + session, session[:len(session)-2] + "xx"} {
		if page := get(bad); page.Status != http.StatusFound || page.location() != leader.ts.URL+"/services" {
			t.Errorf("cookie %q: %d to %q, want 302 to the leader", bad, page.Status, page.location())
		}
	}
	// A session the replicated state no longer accepts (the user removed
	// or the password changed) is not signed in either.
	follower.fake.must(&raftfsm.PutUser{At: time.Now().UTC(), Name: adminName, PasswordHash: "$2a$04$changedchangedchangedchOUVp3JCXhvNQX4rOZsSvQ2qhdJgt6", Role: raftfsm.RoleAdmin})
	if page := get(session); page.Status != http.StatusFound {
		t.Errorf("a session of a changed password: %d, want 302 to the leader", page.Status)
	}
}

func TestFollowerProxiesOnUIHostAndForScripts(t *testing.T) {
	leader := newTestUI(t, newFake(t, true), Config{LoginFailures: 2})
	follower := followerOf(t, leader, "mesh.example.test")
	c := follower.client()

	// On the UI host name the follower proxies: sign in, see the leader's pages.
	hostReq := func(method, path string, form url.Values) response {
		var body *strings.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		} else {
			body = strings.NewReader("")
		}
		req, _ := http.NewRequest(method, follower.ts.URL+path, body)
		req.Host = "mesh.example.test"
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		return c.do(req)
	}
	page := hostReq(http.MethodGet, "/login", nil)
	if page.Status != http.StatusOK || !strings.Contains(page.Body, "Sign in") {
		t.Fatalf("login through the UI host: %d", page.Status)
	}
	r := hostReq(http.MethodPost, "/login", url.Values{"username": {adminName}, "password": {adminPass}, "csrf_token": {csrfOf(t, page.Body)}})
	if r.Status != http.StatusSeeOther || r.location() != "/" {
		t.Fatalf("sign in through the UI host: %d %q", r.Status, r.location())
	}
	home := hostReq(http.MethodGet, "/", nil)
	if home.Status != http.StatusOK || !strings.Contains(home.Body, "served by node-1") {
		t.Fatalf("overview through the UI host: %d", home.Status)
	}

	if n := strings.Count(home.Header.Get("Content-Security-Policy"), "default-src"); n != 1 || len(home.Header.Values("X-Frame-Options")) != 1 {
		t.Errorf("proxied answer carries the security headers %d times", n)
	}

	// A fragment request on the follower's own address is proxied too: the
	// script cannot follow a redirect to another origin.
	var session string
	for _, ck := range (&http.Response{Header: r.Header}).Cookies() {
		if ck.Name == sessionCookie {
			session = ck.Value
		}
	}
	req, _ := http.NewRequest(http.MethodGet, follower.ts.URL+"/?fragment=main", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: session})
	if frag := follower.client().do(req); frag.Status != http.StatusOK || !strings.Contains(frag.Body, "stat-services") {
		t.Errorf("fragment on the follower: %d", frag.Status)
	}

	// The leader limits sign-ins by the browser's address, which the
	// follower passes on signed: a forged header does not count.
	c = follower.client()
	c.hc.Transport = transportFrom(t, "127.0.0.5")
	for i := 0; i < 2; i++ {
		r := hostReq(http.MethodPost, "/login", url.Values{"username": {adminName}, "password": {"nope"}, "csrf_token": {csrfOf(t, hostReq(http.MethodGet, "/login", nil).Body)}})
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("wrong password %d through the proxy: %d", i, r.Status)
		}
	}
	if r := hostReq(http.MethodPost, "/login", url.Values{"username": {adminName}, "password": {adminPass}}); r.Status != http.StatusTooManyRequests {
		t.Errorf("third sign-in from a limited browser through the proxy: %d, want 429", r.Status)
	}
	// Straight to the leader from another address, with a forged header: a different client.
	direct := leader.client()
	req, _ = http.NewRequest(http.MethodGet, leader.ts.URL+"/login", nil)
	req.Header.Set(forwardHeader, "127.0.0.1|1|forged")
	if r := direct.do(req); r.Status != http.StatusOK {
		t.Errorf("a forged forward header: %d", r.Status)
	}
	if r := direct.login(adminName, adminPass); r.Status != http.StatusSeeOther {
		t.Errorf("the proxied browser's failures limited a direct client: %d", r.Status)
	}
	// And straight from the limited address: limited.
	direct5 := leader.client()
	direct5.hc.Transport = transportFrom(t, "127.0.0.5")
	if r := direct5.login(adminName, adminPass); r.Status != http.StatusTooManyRequests {
		t.Errorf("the limited address itself: %d, want 429", r.Status)
	}
}

// transportFrom dials from a given loopback address.
func transportFrom(t *testing.T, ip string) *http.Transport {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
}

func TestNoLeaderPage(t *testing.T) {
	f := newFake(t, true)
	f.setLeader("")
	u := newTestUI(t, f, Config{})
	c := u.client()
	r := c.get("/")
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Body, `http-equiv="refresh"`) || r.Header.Get("Retry-After") == "" {
		t.Fatalf("no leader: %d", r.Status)
	}
	if !strings.Contains(r.Body, "Waiting for a leader") {
		t.Errorf("no friendly message")
	}
	if r := c.get("/?fragment=main"); r.Status != http.StatusServiceUnavailable || strings.Contains(r.Body, "<html") {
		t.Errorf("fragment without a leader: %d", r.Status)
	}
	// A leader whose UI is unreachable: the proxy fails and says so kindly.
	f.must(&raftfsm.UpsertNode{At: time.Now().UTC(), Node: raftfsm.Node{ID: "node-2", UI: "127.0.0.1:1"}})
	f.setLeader("node-2")
	req, _ := http.NewRequest(http.MethodGet, u.ts.URL+"/", nil)
	req.Host = "203.0.113.9" // a public address: the browser cannot reach 127.0.0.1
	if r := c.do(req); r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Body, "Waiting for a leader") {
		t.Errorf("unreachable leader: %d", r.Status)
	}
}

func TestForwardedRequestIsNeverForwardedAgain(t *testing.T) {
	leader := newTestUI(t, newFake(t, true), Config{})
	follower := followerOf(t, leader, "")
	req, _ := http.NewRequest(http.MethodGet, follower.ts.URL+"/", nil)
	req.Header.Set(forwardHeader, follower.srv.sign.forwardValue(forwarded{IP: "198.51.100.1"}, time.Now()))
	r := follower.client().do(req)
	if r.Status != http.StatusServiceUnavailable {
		t.Fatalf("a forwarded request reaching a follower: %d, want 503", r.Status)
	}
}

func TestReachableFrom(t *testing.T) {
	for _, c := range []struct {
		req, leader string
		want        bool
	}{
		{"127.0.0.2", "127.0.0.3", true},
		{"localhost", "127.0.0.3", true},
		{"203.0.113.5", "127.0.0.3", false},
		{"10.0.0.5", "10.0.0.6", true},
		{"203.0.113.5", "10.0.0.6", false},
		{"mesh.example.com", "10.0.0.6", false},
		{"127.0.0.1", "10.0.0.6", false},
		{"203.0.113.5", "203.0.113.6", true},
		{"10.0.0.5", "node-2.example.com", true},
		{"10.0.0.5", "0.0.0.0", false},
		{"10.0.0.5", "", false},
		{"::1", "::1", true},
		{"100.64.1.1", "100.64.1.2", true},
	} {
		if got := reachableFrom(c.req, c.leader); got != c.want {
			t.Errorf("reachableFrom(%q, %q) = %v, want %v", c.req, c.leader, got, c.want)
		}
	}
}

func TestShouldProxy(t *testing.T) {
	mk := func(method, target, host string, hdr map[string]string) *http.Request {
		r, _ := http.NewRequest(method, target, nil)
		r.Host = host
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		return r
	}
	for _, c := range []struct {
		name string
		r    *http.Request
		want bool
	}{
		{"navigation between loopback nodes", mk("GET", "/services", "127.0.0.2:8080", nil), false},
		{"the UI host name", mk("GET", "/services", "mesh.example.com", nil), true},
		{"the UI host name with a port", mk("GET", "/", "MESH.example.com:8080", nil), true},
		{"a form", mk("POST", "/services/deploy", "127.0.0.2:8080", nil), true},
		{"a fragment", mk("GET", "/?fragment=main", "127.0.0.2:8080", nil), true},
		{"an event stream", mk("GET", "/events", "127.0.0.2:8080", map[string]string{"Accept": "text/event-stream"}), true},
		{"a public address to a private leader", mk("GET", "/", "203.0.113.2:8080", nil), true},
	} {
		leader := "127.0.0.3:8080"
		if strings.Contains(c.name, "private leader") {
			leader = "10.0.0.3:8080"
		}
		if got := shouldProxy(c.r, leader, "mesh.example.com"); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
