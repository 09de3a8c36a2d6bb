package ui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// Cookie names.
const (
	sessionCookie = "dropmesh_session"
	loginCookie   = "dropmesh_login"
	flashCookie   = "dropmesh_flash"
)

// Errors of session verification; the handlers treat them all as "sign in again".
var (
	errNoSession      = errors.New("no session")
	errBadSession     = errors.New("session cookie is damaged or forged")
	errSessionExpired = errors.New("session expired")
	errSessionRevoked = errors.New("session no longer valid (user removed or password changed)")
)

// session is a signed-in user as the cookie and the state describe them.
type session struct {
	User string
	// Role is the user's current role in the state (a demotion takes effect
	// at once, whatever the cookie says).
	Role    raftfsm.Role
	Expires time.Time
	// ID is random per sign-in; CSRF tokens are tied to it.
	ID string
}

// can reports whether the session's role allows a level of action.
func (s *session) can(level raftfsm.Role) bool { return s != nil && roleAllows(s.Role, level) }

// roleAllows reports whether role has at least the power of level.
func roleAllows(role, level raftfsm.Role) bool {
	rank := func(r raftfsm.Role) int {
		switch r {
		case raftfsm.RoleAdmin:
			return 3
		case raftfsm.RoleDeployer:
			return 2
		case raftfsm.RoleViewer:
			return 1
		}
		return 0
	}
	return rank(role) >= rank(level) && rank(role) > 0
}

// signer signs and checks session cookies, CSRF tokens and forwarded-client
// headers with the session key, each under its own label.
type signer struct {
	key []byte
}

func (g signer) mac(label string, parts ...string) []byte {
	h := hmac.New(sha256.New, g.key)
	h.Write([]byte("dropmesh-ui/" + label))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return h.Sum(nil)
}

var b64 = base64.RawURLEncoding

// passwordFingerprint ties a session to the password hash it was made
// under: changing the password ends every older session.
func passwordFingerprint(hash string) string {
	sum := sha256.Sum256([]byte("dropmesh-ui/pw\x00" + hash))
	return b64.EncodeToString(sum[:12])
}

func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the platform is broken; no token is safe
	}
	return b64.EncodeToString(b)
}

// newSession encodes a session cookie value for user u, valid until exp.
func (g signer) newSession(u *raftfsm.User, exp time.Time) (value string, s session) {
	s = session{User: u.Name, Role: u.Role, Expires: exp, ID: randomToken(12)}
	payload := strings.Join([]string{"v1", u.Name, string(u.Role), strconv.FormatInt(exp.Unix(), 10),
		passwordFingerprint(u.PasswordHash), s.ID}, "|")
	return b64.EncodeToString([]byte(payload)) + "." + b64.EncodeToString(g.mac("session", payload)), s
}

// parseSession checks a cookie value against the key, the clock and the
// state's users (looked up with user).
func (g signer) parseSession(value string, now time.Time, user func(name string) (*raftfsm.User, bool)) (session, error) {
	if value == "" {
		return session{}, errNoSession
	}
	enc, sig, ok := strings.Cut(value, ".")
	if !ok || len(value) > 1024 {
		return session{}, errBadSession
	}
	raw, err1 := b64.DecodeString(enc)
	mac, err2 := b64.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, g.mac("session", string(raw))) {
		return session{}, errBadSession
	}
	f := strings.Split(string(raw), "|")
	if len(f) != 6 || f[0] != "v1" {
		return session{}, errBadSession
	}
	exp, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return session{}, errBadSession
	}
	s := session{User: f[1], Role: raftfsm.Role(f[2]), Expires: time.Unix(exp, 0), ID: f[5]}
	if !now.Before(s.Expires) {
		return session{}, errSessionExpired
	}
	u, ok := user(s.User)
	if !ok || !hmac.Equal([]byte(passwordFingerprint(u.PasswordHash)), []byte(f[4])) {
		return session{}, errSessionRevoked
	}
	s.Role = u.Role
	return s, nil
}

// csrfToken is the token every form of a session carries.
func (g signer) csrfToken(s session) string {
	return b64.EncodeToString(g.mac("csrf", s.ID, s.User)[:18])
}

// loginToken is the CSRF token of the sign-in form, tied to the random
// value of the pre-session cookie.
func (g signer) loginToken(nonce string) string {
	return b64.EncodeToString(g.mac("login", nonce)[:18])
}

// tokenEqual compares a submitted token with the expected one in constant time.
func tokenEqual(got, want string) bool {
	return got != "" && hmac.Equal([]byte(got), []byte(want))
}

// forwardHeader carries the browser's address and scheme from a follower to
// the leader when the follower proxies; it is signed so a browser cannot
// forge its address to dodge the sign-in rate limit, nor the scheme.
const forwardHeader = "X-Dropmesh-UI-Forwarded"

// forwarded is what a proxying follower vouches for: the browser's address
// and whether the browser reached the follower over TLS.
type forwarded struct {
	IP    string
	HTTPS bool
}

func (f forwarded) scheme() string {
	if f.HTTPS {
		return "https"
	}
	return "http"
}

func (g signer) forwardValue(f forwarded, now time.Time) string {
	ts := strconv.FormatInt(now.Unix(), 10)
	return f.IP + "|" + f.scheme() + "|" + ts + "|" + b64.EncodeToString(g.mac("forward", f.IP, f.scheme(), ts))
}

// parseForward checks a signed forward header no older than maxAge.
func (g signer) parseForward(v string, now time.Time, maxAge time.Duration) (forwarded, bool) {
	f := strings.Split(v, "|")
	if len(f) != 4 || (f[1] != "http" && f[1] != "https") {
		return forwarded{}, false
	}
	mac, err := b64.DecodeString(f[3])
	if err != nil || !hmac.Equal(mac, g.mac("forward", f[0], f[1], f[2])) {
		return forwarded{}, false
	}
	ts, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return forwarded{}, false
	}
	if age := now.Sub(time.Unix(ts, 0)); age > maxAge || age < -maxAge {
		return forwarded{}, false
	}
	return forwarded{IP: f[0], HTTPS: f[1] == "https"}, true
}
