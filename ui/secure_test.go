package ui

import (
	"context"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// cookieOf returns the named cookie of an answer, or nil.
func cookieOf(h http.Header, name string) *http.Cookie {
	for _, ck := range (&http.Response{Header: h}).Cookies() {
		if ck.Name == name {
			return ck
		}
	}
	return nil
}

func TestSessionCookieSecureOverTLS(t *testing.T) {
	u := newTestUI(t, newFake(t, true), Config{})
	ts := httptest.NewTLSServer(u.srv.routes())
	t.Cleanup(ts.Close)
	c := u.client()
	c.base = ts.URL
	tr := ts.Client().Transport
	c.hc.Transport = tr
	r := c.login(adminName, adminPass)
	ck := cookieOf(r.Header, sessionCookie)
	if r.Status != http.StatusSeeOther || ck == nil {
		t.Fatalf("sign in over TLS: %d, cookie %v", r.Status, ck)
	}
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
		t.Errorf("session cookie over TLS %+v: want Secure, HttpOnly, SameSite=Strict", ck)
	}
	// The same server over plain HTTP: no Secure (TestLoginLogout checks
	// the session cookie; here the sign-in form's).
	if ck := cookieOf(u.client().get("/login").Header, loginCookie); ck == nil || ck.Secure {
		t.Errorf("sign-in cookie over plain HTTP: %+v, want one without Secure", ck)
	}
}

func TestCookieSecureBehindATrustedProxy(t *testing.T) {
	u := newTestUI(t, newFake(t, true), Config{})
	sign := u.srv.sign
	edge := &net.TCPAddr{IP: net.ParseIP("10.10.0.1"), Port: 8080}
	for _, c := range []struct {
		name   string
		remote string
		local  net.Addr
		header map[string]string
		want   bool
	}{
		{"plain, from loopback", "127.0.0.1:4000", nil, nil, false},
		{"the edge on loopback says https", "127.0.0.1:4000", nil, map[string]string{"X-Forwarded-Proto": "https"}, true},
		{"the edge on loopback says http", "127.0.0.1:4000", nil, map[string]string{"X-Forwarded-Proto": "http"}, false},
		{"a chain that began on https", "[::1]:4000", nil, map[string]string{"X-Forwarded-Proto": "HTTPS, http"}, true},
		{"the edge on the node's own address", "10.10.0.1:4000", edge, map[string]string{"X-Forwarded-Proto": "https"}, true},
		{"another machine says https", "10.10.0.7:4000", edge, map[string]string{"X-Forwarded-Proto": "https"}, false},
		{"the internet says https", "203.0.113.9:4000", nil, map[string]string{"X-Forwarded-Proto": "https"}, false},
		{"Cloudflare's header through the edge", "127.0.0.1:4000", nil, map[string]string{"CF-Visitor": `{"scheme":"https"}`}, false},
		{"a follower vouches for https", "10.10.0.7:4000", edge,
			map[string]string{forwardHeader: sign.forwardValue(forwarded{IP: "198.51.100.4", HTTPS: true}, time.Now())}, true},
		{"a follower vouches for http, whatever the edge says", "127.0.0.1:4000", nil,
			map[string]string{forwardHeader: sign.forwardValue(forwarded{IP: "198.51.100.4"}, time.Now()), "X-Forwarded-Proto": "https"}, false},
		{"a forged follower header", "203.0.113.9:4000", nil, map[string]string{forwardHeader: "198.51.100.4|https|1|forged"}, false},
	} {
		req := httptest.NewRequest(http.MethodGet, "/login", nil)
		req.RemoteAddr = c.remote
		if c.local != nil {
			req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, c.local))
		}
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		u.srv.routes().ServeHTTP(rec, req)
		ck := cookieOf(rec.Result().Header, loginCookie)
		if rec.Code != http.StatusOK || ck == nil {
			t.Errorf("%s: %d, cookie %v", c.name, rec.Code, ck)
			continue
		}
		if ck.Secure != c.want {
			t.Errorf("%s: Secure=%v, want %v", c.name, ck.Secure, c.want)
		}
	}
}

// A browser that reached a follower over TLS stays on TLS: the follower
// proxies to the leader instead of sending it to http://, and the leader,
// trusting the follower's signed word, makes its cookies Secure.
func TestFollowerKeepsATLSBrowserOnTLS(t *testing.T) {
	leader := newTestUI(t, newFake(t, true), Config{})
	follower := followerOf(t, leader, "")
	ts := httptest.NewTLSServer(follower.srv.routes())
	t.Cleanup(ts.Close)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, base: ts.URL, hc: &http.Client{Jar: jar, Timeout: 20 * time.Second, Transport: ts.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}

	r := c.get("/services")
	if r.Status != http.StatusSeeOther || r.location() != "/login?next=%2Fservices" {
		t.Fatalf("GET /services over TLS on a follower: %d to %q, want the leader's own 303 to /login (proxied)", r.Status, r.location())
	}
	page := c.get("/login")
	if ck := cookieOf(page.Header, loginCookie); page.Status != http.StatusOK || ck == nil || !ck.Secure {
		t.Fatalf("sign-in page over TLS through the follower: %d, cookie %+v, want a Secure one", page.Status, ck)
	}
	r = c.login(adminName, adminPass)
	if ck := cookieOf(r.Header, sessionCookie); r.Status != http.StatusSeeOther || ck == nil || !ck.Secure {
		t.Fatalf("sign in over TLS through the follower: %d, cookie %+v, want a Secure session cookie", r.Status, ck)
	}
	if home := c.get("/"); home.Status != http.StatusOK || !strings.Contains(home.Body, "served by node-1") {
		t.Errorf("overview over TLS through the follower: %d", home.Status)
	}

	// Plain HTTP on the same follower: a redirect that keeps http.
	if r := follower.client().get("/services"); r.Status != http.StatusFound || r.location() != leader.ts.URL+"/services" {
		t.Errorf("plain GET on the follower: %d to %q, want 302 to %s/services", r.Status, r.location(), leader.ts.URL)
	}
	// The node's edge terminated TLS (X-Forwarded-Proto from this machine):
	// proxied as well.
	req, _ := http.NewRequest(http.MethodGet, follower.ts.URL+"/services", nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	if r := follower.client().do(req); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/login") {
		t.Errorf("GET behind the edge's TLS on a follower: %d to %q, want the leader's 303 to /login", r.Status, r.location())
	}
}
