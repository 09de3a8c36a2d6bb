package ui

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// publicRoutes are the routes served without a session; every other route
// of the router must send a browser without one to the sign-in page.
var publicRoutes = map[string]bool{
	"GET /static/*file": true,
	"GET /favicon.ico":  true,
	"GET /login":        true,
	"POST /login":       true,
}

// routePath fills a route's parameters with plausible values.
func routePath(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		switch {
		case p == ":ws":
			parts[i] = testWS
		case strings.HasPrefix(p, ":"), strings.HasPrefix(p, "*"):
			parts[i] = "x"
		}
	}
	return strings.Join(parts, "/")
}

func TestPagesRedirectToLoginWithoutSession(t *testing.T) {
	u := newTestUI(t, newFake(t, true), Config{})
	c := u.client()
	// Every route of the router, so a new page cannot be left out.
	routes := u.srv.routes().Routes()
	seen := map[string]bool{}
	before := u.fake.stateFingerprint()
	for _, rt := range routes {
		key := rt.Method + " " + rt.Path
		seen[key] = true
		if publicRoutes[key] {
			continue
		}
		path := routePath(rt.Path)
		var r response
		switch rt.Method {
		case http.MethodGet:
			r = c.get(path)
		case http.MethodPost:
			r = c.post(path, url.Values{"csrf_token": {"x"}, "name": {"eve"}, "count": {"1"}})
		default:
			t.Errorf("route %s: no check for this method", key)
			continue
		}
		if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/login") {
			t.Errorf("%s %s without a session: %d to %q, want 303 to /login", rt.Method, path, r.Status, r.location())
		}
	}
	for _, want := range []string{"GET /", "GET /services", "GET /notifications", "GET /admin", "GET /setup", "POST /services/deploy"} {
		if !seen[want] {
			t.Errorf("the router has no %s: the route list is not what this test thinks", want)
		}
	}
	for key := range publicRoutes {
		if !seen[key] {
			t.Errorf("public route %s is gone: update publicRoutes", key)
		}
	}
	if after := u.fake.stateFingerprint(); after != before || len(u.fake.callList()) != 0 {
		t.Errorf("requests without a session reached the node: %v", u.fake.callList())
	}
	if r := c.get("/services"); r.location() != "/login?next=%2Fservices" {
		t.Errorf("redirect keeps the destination: %q", r.location())
	}
	// The page's script gets 401 instead, and goes to the sign-in page itself.
	if r := c.get("/?fragment=main"); r.Status != http.StatusUnauthorized {
		t.Errorf("fragment without a session: %d, want 401", r.Status)
	}
	req, _ := http.NewRequest(http.MethodGet, u.ts.URL+"/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	if r := c.do(req); r.Status != http.StatusUnauthorized {
		t.Errorf("events without a session: %d, want 401", r.Status)
	}
	// A full deploy form without a session changes nothing either.
	if r := c.postMultipart("/services/deploy", sampleForm("x"), nil); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/login") {
		t.Errorf("deploy without a session: %d to %q", r.Status, r.location())
	}
	if after := u.fake.stateFingerprint(); after != before || len(u.fake.deployList()) != 0 {
		t.Errorf("a POST without a session changed the state")
	}
}

func TestLoginLogout(t *testing.T) {
	u := newTestUI(t, newFake(t, true), Config{})
	c := u.client()
	page := c.get("/login")
	for _, field := range []string{`name="username"`, `name="password"`, `name="csrf_token"`} {
		if !strings.Contains(page.Body, field) {
			t.Errorf("sign-in form lacks %s", field)
		}
	}
	r := c.login(adminName, adminPass)
	if r.Status != http.StatusSeeOther || r.location() != "/" {
		t.Fatalf("sign in: %d to %q", r.Status, r.location())
	}
	var cookie *http.Cookie
	for _, ck := range (&http.Response{Header: r.Header}).Cookies() {
		if ck.Name == sessionCookie {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.MaxAge != int((12*time.Hour).Seconds()) {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, 12 h", cookie)
	}
	if cookie.Secure {
		t.Errorf("cookie is Secure without Options.Secure")
	}
	home := c.get("/")
	if home.Status != http.StatusOK || !strings.Contains(home.Body, "Overview") || !strings.Contains(home.Body, "demo") {
		t.Fatalf("overview after sign-in: %d", home.Status)
	}
	// Signed in, /login goes home.
	if r := c.get("/login"); r.Status != http.StatusSeeOther || r.location() != "/" {
		t.Errorf("GET /login signed in: %d %q", r.Status, r.location())
	}
	// next= is followed, but only to a path on this site.
	c2 := u.client()
	page = c2.get("/login?next=/snapshots")
	r = c2.post("/login", url.Values{"username": {adminName}, "password": {adminPass}, "csrf_token": {csrfOf(t, page.Body)}, "next": {"/snapshots"}})
	if r.location() != "/snapshots" {
		t.Errorf("next: %q", r.location())
	}
	c3 := u.client()
	page = c3.get("/login")
	r = c3.post("/login", url.Values{"username": {adminName}, "password": {adminPass}, "csrf_token": {csrfOf(t, page.Body)}, "next": {"//evil.example/x"}})
	if r.location() != "/" {
		t.Errorf("next to another site was followed: %q", r.location())
	}

	if r := c.post("/logout", url.Values{"csrf_token": {csrfOf(t, home.Body)}}); r.Status != http.StatusSeeOther || r.location() != "/login" {
		t.Fatalf("sign out: %d %q", r.Status, r.location())
	}
	if r := c.get("/"); r.Status != http.StatusSeeOther {
		t.Errorf("after sign-out GET / is %d, want a redirect", r.Status)
	}
}

func TestSecureCookies(t *testing.T) {
	f := newFake(t, true)
	s, err := newServer(Options{Node: f, SessionKey: testKey, Secure: true})
	if err != nil {
		t.Fatal(err)
	}
	u := &testUI{t: t, fake: f, srv: s}
	u.ts = newHTTPTest(t, s)
	r := u.client().login(adminName, adminPass)
	found := false
	for _, ck := range (&http.Response{Header: r.Header}).Cookies() {
		if ck.Name == sessionCookie {
			found = true
			if !ck.Secure {
				t.Errorf("session cookie not Secure with Options.Secure")
			}
		}
	}
	if !found {
		t.Fatalf("no session cookie: %d", r.Status)
	}
}

func TestWrongPasswordRefusedThenRateLimited(t *testing.T) {
	u := newTestUI(t, newFake(t, true), Config{LoginFailures: 5, LoginBackoff: time.Minute, LoginMaxBackoff: time.Hour})
	c := u.client()
	for i := range 5 {
		r := c.login(adminName, "wrong-password")
		if r.Status != http.StatusUnauthorized || !strings.Contains(r.Body, "Wrong user name or password") {
			t.Fatalf("attempt %d: %d", i+1, r.Status)
		}
	}
	// An unknown user is refused with the same words.
	if r := c.login("nobody", adminPass); r.Status != http.StatusUnauthorized || !strings.Contains(r.Body, "Wrong user name or password") {
		t.Fatalf("unknown user: %d, want 401 and the same message", r.Status)
	}
	// Five failures as admin from this address: admin waits from here,
	// even with the right password.
	r := c.login(adminName, adminPass)
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("right password after five failures: %d, want 429", r.Status)
	}
	if r.Header.Get("Retry-After") == "" || !strings.Contains(r.Body, "Too many failed sign-ins") {
		t.Errorf("429 page lacks Retry-After or its message")
	}
	// The wait passes.
	u.srv.now = func() time.Time { return time.Now().Add(61 * time.Second) }
	if r := c.login(adminName, adminPass); r.Status != http.StatusSeeOther {
		t.Fatalf("after the wait: %d", r.Status)
	}
}

// TestSignInLimiterKeysOnUserAndRealAddress: behind the edge every browser
// comes from the node's address; a guesser at admin there slows only its own
// guesses, and another user signs in; the edge's X-Real-IP tells clients apart.
func TestSignInLimiterKeysOnUserAndRealAddress(t *testing.T) {
	fake := newFake(t, true)
	if err := fake.PutUser(t.Context(), control.UserRequest{Name: "ann", Password: "ann-password-1", Role: raftfsm.RoleViewer}); err != nil {
		t.Fatal(err)
	}
	u := newTestUI(t, fake, Config{LoginFailures: 2, LoginBackoff: time.Hour, LoginMaxBackoff: time.Hour})
	guesser, ann, other := u.client(), u.client(), u.client()
	guesser.header = http.Header{"X-Real-Ip": {"203.0.113.7"}}
	ann.header = http.Header{"X-Real-Ip": {"203.0.113.7"}} // the same real address
	other.header = http.Header{"X-Real-Ip": {"198.51.100.2"}}
	for range 3 {
		guesser.login(adminName, "wrong-password")
	}
	if r := guesser.login(adminName, adminPass); r.Status != http.StatusTooManyRequests {
		t.Fatalf("the guesser's address as admin: %d, want 429", r.Status)
	}
	if r := other.login(adminName, adminPass); r.Status != http.StatusSeeOther {
		t.Fatalf("admin from another real address behind the same edge: %d, want 303", r.Status)
	}
	if r := ann.login("ann", "ann-password-1"); r.Status != http.StatusSeeOther {
		t.Fatalf("another user from the guesser's address: %d, want 303", r.Status)
	}
	// Ann's success does not clear the guesser's failures as admin.
	if r := guesser.login(adminName, adminPass); r.Status != http.StatusTooManyRequests {
		t.Fatalf("after another user's success: %d, want 429", r.Status)
	}
}

func TestUnknownUserRefused(t *testing.T) {
	u := newTestUI(t, newFake(t, true), Config{})
	if r := u.client().login("mallory", adminPass); r.Status != http.StatusUnauthorized {
		t.Fatalf("unknown user: %d", r.Status)
	}
}

func TestLoginNeedsItsCSRFToken(t *testing.T) {
	u := newTestUI(t, newFake(t, true), Config{})
	c := u.client()
	c.get("/login")
	if r := c.post("/login", url.Values{"username": {adminName}, "password": {adminPass}}); r.Status != http.StatusForbidden {
		t.Errorf("sign-in without csrf_token: %d, want 403", r.Status)
	}
	// A token from another browser's form does not match this one's cookie.
	other := u.client()
	tok := csrfOf(t, other.get("/login").Body)
	if r := c.post("/login", url.Values{"username": {adminName}, "password": {adminPass}, "csrf_token": {tok}}); r.Status != http.StatusForbidden {
		t.Errorf("sign-in with another form's token: %d, want 403", r.Status)
	}
}

func TestFormWithoutCSRFRefused(t *testing.T) {
	u := newTestUI(t, newFake(t, true), Config{})
	c := u.client()
	c.mustLogin(adminName, adminPass)
	before := u.fake.stateFingerprint()
	form := sampleForm("")
	form.Del("csrf_token")
	if r := c.postMultipart("/services/deploy", form, nil); r.Status != http.StatusForbidden {
		t.Errorf("deploy without a token: %d, want 403", r.Status)
	}
	if r := c.postMultipart("/services/deploy", sampleForm("forged-token"), nil); r.Status != http.StatusForbidden {
		t.Errorf("deploy with a wrong token: %d, want 403", r.Status)
	}
	// Another session's token does not fit this session.
	other := u.client()
	other.mustLogin(adminName, adminPass)
	if r := c.postMultipart("/services/deploy", sampleForm(other.token()), nil); r.Status != http.StatusForbidden {
		t.Errorf("deploy with another session's token: %d, want 403", r.Status)
	}
	for _, p := range []string{"/admin/settings", "/nodes/add", "/admin/users", "/logout"} {
		if r := c.post(p, url.Values{"count": {"1"}, "name": {"eve"}, "password": {"password1"}, "role": {"admin"}, "domain": {"x.example"}}); r.Status != http.StatusForbidden {
			t.Errorf("POST %s without a token: %d, want 403", p, r.Status)
		}
	}
	if after := u.fake.stateFingerprint(); after != before {
		t.Errorf("refused forms changed the state:\n%s\n%s", before, after)
	}
	if calls := u.fake.callList(); len(calls) != 0 {
		t.Errorf("refused forms reached the node: %v", calls)
	}
}

func TestRolesEnforced(t *testing.T) {
	f := newFake(t, true)
	u := newTestUI(t, f, Config{})
	ctx := context.Background()
	for name, role := range map[string]raftfsm.Role{"vera": raftfsm.RoleViewer, "dave": raftfsm.RoleDeployer} {
		if err := f.PutUser(ctx, control.UserRequest{Name: name, Password: "password-" + name, Role: role}); err != nil {
			t.Fatal(err)
		}
	}
	viewer := u.client()
	viewer.mustLogin("vera", "password-vera")
	before := f.stateFingerprint()
	tok := viewer.token()
	if r := viewer.postMultipart("/services/deploy", sampleForm(tok), nil); r.Status != http.StatusForbidden {
		t.Errorf("viewer deploy: %d, want 403", r.Status)
	}
	if len(f.deployList()) != 0 || f.stateFingerprint() != before {
		t.Errorf("a viewer's deploy reached the node")
	}
	services := viewer.get("/services")
	if strings.Contains(services.Body, `action="/services/deploy"`) {
		t.Errorf("the viewer sees the deploy form")
	}
	if r := viewer.get("/admin"); r.Status != http.StatusForbidden {
		t.Errorf("viewer admin page: %d", r.Status)
	}
	if strings.Contains(viewer.get("/").Body, `href="/admin"`) {
		t.Errorf("the viewer sees the admin link")
	}

	deployer := u.client()
	deployer.mustLogin("dave", "password-dave")
	tok = deployer.token()
	if r := deployer.postMultipart("/services/deploy", sampleForm(tok), nil); r.Status != http.StatusSeeOther {
		t.Fatalf("deployer deploy: %d", r.Status)
	}
	for _, p := range []string{"/admin/users", "/nodes/add", "/admin/settings", "/nodes/node-2/reboot"} {
		if r := deployer.post(p, url.Values{"csrf_token": {tok}, "name": {"eve"}, "password": {"password1"}, "role": {"admin"}, "count": {"1"}}); r.Status != http.StatusForbidden {
			t.Errorf("deployer POST %s: %d, want 403", p, r.Status)
		}
	}
	if _, ok := u.srv.lookupUser("eve"); ok {
		t.Errorf("a deployer added a user")
	}
	// A demotion takes effect at once, whatever the cookie says.
	if err := f.PutUser(ctx, control.UserRequest{Name: "dave", Role: raftfsm.RoleViewer}); err != nil {
		t.Fatal(err)
	}
	if r := deployer.post(servicePath(sampleKey)+"/restart", url.Values{"csrf_token": {tok}}); r.Status != http.StatusForbidden {
		t.Errorf("demoted deployer restart: %d, want 403", r.Status)
	}
}

func TestSessionEndsOnPasswordChangeAndExpiry(t *testing.T) {
	f := newFake(t, true)
	u := newTestUI(t, f, Config{SessionTTL: time.Hour})
	c := u.client()
	c.mustLogin(adminName, adminPass)
	if r := c.get("/"); r.Status != http.StatusOK {
		t.Fatalf("signed in: %d", r.Status)
	}
	if err := f.PutUser(context.Background(), control.UserRequest{Name: adminName, Password: "a-new-password", Role: raftfsm.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	if r := c.get("/"); r.Status != http.StatusSeeOther {
		t.Errorf("after a password change the old session still works: %d", r.Status)
	}
	c.mustLogin(adminName, "a-new-password")
	u.srv.now = func() time.Time { return time.Now().Add(time.Hour + time.Second) }
	if r := c.get("/"); r.Status != http.StatusSeeOther {
		t.Errorf("an expired session still works: %d", r.Status)
	}
}

func TestForgedSessionRefused(t *testing.T) {
	u := newTestUI(t, newFake(t, true), Config{})
	c := u.client()
	r := c.login(adminName, adminPass)
	var value string
	for _, ck := range (&http.Response{Header: r.Header}).Cookies() {
		if ck.Name == sessionCookie {
			value = ck.Value
		}
	}
	payload, sig, _ := strings.Cut(value, ".")
	raw, _ := b64.DecodeString(payload)
	forged := strings.Replace(string(raw), "|admin|admin|", "|admin|admin|", 1) + "x"
	for _, v := range []string{b64.EncodeToString([]byte(forged)) + "." + sig, value + "x", "garbage", ""} {
		req, _ := http.NewRequest(http.MethodGet, u.ts.URL+"/", nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: v})
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther {
			t.Errorf("cookie %q: %d, want a redirect to sign in", v, res.StatusCode)
		}
	}
}

// TestNextStaysOnTheSite: the sign-in redirect follows only a path on this
// site; every trick that browsers turn into another origin is dropped.
func TestNextStaysOnTheSite(t *testing.T) {
	for _, bad := range []string{
		"/\t/evil.example", "/\n/evil.example", "/\r/evil.example", "/\x00/evil", "/\x7f/evil", "/\u0085/evil",
		"//evil.example", "//evil.example/x", "\\evil", "/\\evil", "/\\/evil", "\\\\evil",
		"https://evil.example/", "javascript:alert(1)", "evil.example", " /x", "/ /evil",
		"/%2F/evil.example", "/login?next=/x", "", "/" + strings.Repeat("a", 2001), "/\xff",
	} {
		if got := safeNext(bad); got != "" {
			t.Errorf("safeNext(%q) = %q, want it dropped", bad, got)
		}
	}
	for _, good := range []string{"/", "/services", "/s/26a412/shop/prod/web?tab=logs", "/services#top", "/%09x"} {
		if got := safeNext(good); got != good {
			t.Errorf("safeNext(%q) = %q, want it kept", good, got)
		}
	}

	// Through the real form: the query's /%09/evil.example arrives as a tab.
	u := newTestUI(t, newFake(t, true), Config{})
	for _, next := range []string{"/%09/evil.example", "//evil", "%5Cevil", "/%5Cevil", "/%0D%0ALocation:%20//evil"} {
		c := u.client()
		page := c.get("/login?next=" + next)
		if strings.Contains(page.Body, "evil") {
			t.Errorf("the sign-in page for next=%s carries it on", next)
		}
		raw, err := url.QueryUnescape(next)
		if err != nil {
			t.Fatal(err)
		}
		r := c.post("/login", url.Values{"username": {adminName}, "password": {adminPass}, "csrf_token": {csrfOf(t, page.Body)}, "next": {raw}})
		if r.Status != http.StatusSeeOther || r.location() != "/" {
			t.Errorf("next=%s: %d to %q, want 303 to /", next, r.Status, r.location())
		}
	}
}
