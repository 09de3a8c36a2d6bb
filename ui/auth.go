package ui

import (
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// ctxSession is the gin context key of the signed-in session.
const ctxSession = "dropmesh.session"

// dummyHash is compared against when the user does not exist, so a wrong
// user name takes as long as a wrong password (no user enumeration by timing).
const dummyHash = "$2a$10$d/UL/pS0XQoH/VQuU/xtJu4cTcY/RM.2nXGCXM3xK.UYXrGiHh/A2"

// sessionOf returns the request's session (set by requireSession), or nil.
func sessionOf(c *gin.Context) *session {
	if v, ok := c.Get(ctxSession); ok {
		if s, ok := v.(*session); ok {
			return s
		}
	}
	return nil
}

// lookupUser copies a user out of the state.
func (s *server) lookupUser(name string) (*raftfsm.User, bool) {
	var u *raftfsm.User
	s.node.View(func(st *raftfsm.State) {
		if p, ok := st.Users[name]; ok {
			c := *p
			u = &c
		}
	})
	return u, u != nil
}

// readSession checks the request's session cookie.
func (s *server) readSession(r *http.Request) (session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, errNoSession
	}
	return s.sign.parseSession(ck.Value, s.now(), s.lookupUser)
}

// requireSession lets signed-in requests through. Others go to the sign-in
// page (a navigation) or get 401 (the page's script then goes there).
func (s *server) requireSession(c *gin.Context) {
	sess, err := s.readSession(c.Request)
	if err == nil {
		c.Set(ctxSession, &sess)
		return
	}
	if !errors.Is(err, errNoSession) {
		s.clearCookie(c, sessionCookie, "/")
	}
	c.Abort()
	if isBackground(c.Request) {
		c.Header("Cache-Control", "no-store")
		c.String(http.StatusUnauthorized, "sign in again")
		return
	}
	// A navigation that started on another site (a follower's redirect to
	// the leader) carries no SameSite=Strict cookie: reload it once from
	// this site, and the cookie comes along if there is one.
	if errors.Is(err, errNoSession) && c.Request.Method == http.MethodGet && c.GetHeader("Sec-Fetch-Site") == "cross-site" {
		s.render(c, http.StatusOK, &pageData{Name: "reload", Title: "Loading", Assets: s.assets, Now: s.now()})
		return
	}
	to := "/login"
	if c.Request.Method == http.MethodGet && c.Request.URL.Path != "/" {
		to += "?next=" + url.QueryEscape(c.Request.URL.RequestURI())
	}
	c.Redirect(http.StatusSeeOther, to)
}

// requireRole refuses users whose role is below level.
func (s *server) requireRole(level raftfsm.Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		if sess := sessionOf(c); !sess.can(level) {
			role := "none"
			if sess != nil {
				role = string(sess.Role)
			}
			s.renderError(c, http.StatusForbidden, "Not allowed",
				fmt.Sprintf("Your role (%s) cannot do this; it needs %s. Nothing was changed.", role, level))
		}
	}
}

// limitBody bounds the request body: a form, or a form with a build context.
func (s *server) limitBody(upload bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		limit := s.cfg.MaxFormBytes
		if upload {
			limit = s.cfg.MaxUploadBytes
		}
		if c.Request.ContentLength > limit {
			// Known too large before reading: say so without depending on
			// where the multipart reader would have hit the limit.
			s.renderError(c, http.StatusRequestEntityTooLarge, "Too large", "The form is too large. Nothing was changed.")
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	}
}

// parseForm reads an urlencoded or multipart form (files beyond a few MiB
// spill to temporary files, which net/http removes after the request).
func parseForm(r *http.Request) error {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "multipart/form-data" {
		return r.ParseMultipartForm(8 << 20)
	}
	return r.ParseForm()
}

// requireCSRF refuses a form without the session's CSRF token: 403, and
// nothing changes.
func (s *server) requireCSRF(c *gin.Context) {
	if err := parseForm(c.Request); err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			s.renderError(c, http.StatusRequestEntityTooLarge, "Too large", "The form is too large. Nothing was changed.")
			return
		}
		s.renderError(c, http.StatusBadRequest, "Bad form", "The form could not be read. Nothing was changed.")
		return
	}
	sess := sessionOf(c)
	if sess == nil || !tokenEqual(c.Request.PostFormValue("csrf_token"), s.sign.csrfToken(*sess)) {
		s.logger.Warn("ui form refused: missing or wrong CSRF token", "path", c.Request.URL.Path, "client", s.clientIP(c))
		s.renderError(c, http.StatusForbidden, "Form expired",
			"The form was missing its security token or it did not match your session. Nothing was changed: reload the page and try again.")
	}
}

// clientIP is the browser's real address: from a follower's signed header
// when it proxied the request, from the edge's X-Real-IP when the local edge
// did (fromThisHost: a header from anywhere else is ignored), else the
// connection's.
func (s *server) clientIP(c *gin.Context) string {
	if v := c.GetHeader(forwardHeader); v != "" {
		if f, ok := s.sign.parseForward(v, s.now(), s.cfg.ForwardMaxAge); ok {
			return f.IP
		}
	}
	if fromThisHost(c.Request) {
		if real, err := netip.ParseAddr(strings.TrimSpace(c.GetHeader("X-Real-IP"))); err == nil {
			return real.Unmap().String()
		}
	}
	return c.ClientIP()
}

// setCookie sets one of the UI's cookies: HttpOnly, SameSite=Strict, and
// Secure when the browser came over TLS (secureRequest).
func (s *server) setCookie(c *gin.Context, name, value, path string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, Secure: s.secureRequest(c.Request), SameSite: http.SameSiteStrictMode})
}

func (s *server) clearCookie(c *gin.Context, name, path string) { s.setCookie(c, name, "", path, -1) }

// loginData is the sign-in page's data.
type loginData struct {
	Username string
	Next     string
	Token    string
}

// safeNext keeps a post-sign-in destination only if it is a path on this
// site, and returns "" otherwise. Browsers drop tabs and newlines from a
// Location and read a backslash as a slash, so "/\t/evil.example" (the
// query's /%09/evil.example) or "/\\evil" would leave the site as
// "//evil.example": every control character, space and backslash is
// refused, then the rest must parse as a bare path (no scheme, no host)
// that does not start with "//".
func safeNext(next string) string {
	if next == "" || len(next) > 2000 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/login") {
		return ""
	}
	for _, r := range next {
		if r <= ' ' || r == 0x7f || r == '\\' || (r >= 0x80 && r <= 0x9f) || r == utf8.RuneError {
			return ""
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return ""
	}
	return next
}

// loginPage shows the sign-in form with a fresh CSRF token tied to a
// pre-session cookie.
func (s *server) loginPage(c *gin.Context) {
	if _, err := s.readSession(c.Request); err == nil {
		c.Redirect(http.StatusSeeOther, "/")
		return
	}
	s.renderLogin(c, http.StatusOK, "", c.Query("next"), "")
}

func (s *server) renderLogin(c *gin.Context, status int, username, next, alert string) {
	nonce := randomToken(16)
	s.setCookie(c, loginCookie, nonce, "/login", 3600)
	p := &pageData{Name: "login", Title: "Sign in", Alert: alert, Assets: s.assets, Now: s.now(),
		Data: loginData{Username: username, Next: safeNext(next), Token: s.sign.loginToken(nonce)}}
	s.node.View(func(st *raftfsm.State) { p.Cluster = st.Settings.ClusterName })
	s.render(c, status, p)
}

// login checks the form: the (user, address) limiter, CSRF token, then
// user and password.
func (s *server) login(c *gin.Context) {
	ip := s.clientIP(c)
	now := s.now()
	if err := parseForm(c.Request); err != nil {
		s.renderError(c, http.StatusBadRequest, "Bad form", "The sign-in form could not be read.")
		return
	}
	name := strings.TrimSpace(c.Request.PostFormValue("username"))
	if blocked, wait := s.limiter.Blocked(name, ip, now); blocked {
		secs := int(math.Ceil(wait.Seconds()))
		c.Header("Retry-After", strconv.Itoa(secs))
		s.renderLogin(c, http.StatusTooManyRequests, name, c.Request.PostFormValue("next"),
			fmt.Sprintf("Too many failed sign-ins as this user from your address. Try again in %d seconds.", secs))
		return
	}
	ck, err := c.Request.Cookie(loginCookie)
	if err != nil || !tokenEqual(c.Request.PostFormValue("csrf_token"), s.sign.loginToken(ck.Value)) {
		s.renderError(c, http.StatusForbidden, "Form expired",
			"The sign-in form was missing its security token or it expired. Open the sign-in page again.")
		return
	}
	password := c.Request.PostFormValue("password")
	u, ok := s.lookupUser(name)
	hash := dummyHash
	if ok {
		hash = u.PasswordHash
	}
	match := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	if !ok || !match || password == "" {
		s.limiter.Fail(name, ip, now)
		s.logger.Warn("ui sign-in failed", "user", name, "client", ip)
		s.renderLogin(c, http.StatusUnauthorized, name, c.Request.PostFormValue("next"), "Wrong user name or password.")
		return
	}
	s.limiter.Succeed(name, ip)
	value, _ := s.sign.newSession(u, now.Add(s.cfg.SessionTTL))
	s.setCookie(c, sessionCookie, value, "/", int(s.cfg.SessionTTL.Seconds()))
	s.clearCookie(c, loginCookie, "/login")
	s.logger.Info("ui sign-in", "user", u.Name, "role", u.Role, "client", ip)
	to := safeNext(c.Request.PostFormValue("next"))
	if u.Role == raftfsm.RoleAdmin && s.setupNeeded() {
		to = "/setup"
	}
	if to == "" {
		to = "/"
	}
	c.Redirect(http.StatusSeeOther, to)
}

// logout ends the session in this browser.
func (s *server) logout(c *gin.Context) {
	s.clearCookie(c, sessionCookie, "/")
	c.Redirect(http.StatusSeeOther, "/login")
}
