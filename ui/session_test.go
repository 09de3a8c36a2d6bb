package ui

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

func TestSessionRoundTrip(t *testing.T) {
	g := signer{key: testKey}
	now := time.Now()
	u := &raftfsm.User{Name: "alice", Role: raftfsm.RoleDeployer, PasswordHash: "$2a$10$hash-one"}
	users := map[string]*raftfsm.User{"alice": u}
	lookup := func(n string) (*raftfsm.User, bool) { v, ok := users[n]; return v, ok }

	value, made := g.newSession(u, now.Add(time.Hour))
	got, err := g.parseSession(value, now, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if got.User != "alice" || got.Role != raftfsm.RoleDeployer || got.ID != made.ID {
		t.Fatalf("parsed %+v, made %+v", got, made)
	}
	if g.csrfToken(got) != g.csrfToken(made) {
		t.Errorf("CSRF token differs between the making and the parsing")
	}
	other, _ := g.newSession(u, now.Add(time.Hour))
	if o, _ := g.parseSession(other, now, lookup); g.csrfToken(o) == g.csrfToken(got) {
		t.Errorf("two sign-ins share a CSRF token")
	}

	cases := []struct {
		name  string
		value string
		now   time.Time
		want  error
	}{
		{"expired", value, now.Add(time.Hour), errSessionExpired},
		{"tampered", strings.Replace(value, ".", "x.", 1), now, errBadSession},
		{"other key", func() string {
			v, _ := signer{key: []byte("another key of at least 32 bytes!")}.newSession(u, now.Add(time.Hour))
			return v
		}(), now, errBadSession},
		{"empty", "", now, errNoSession},
		{"no dot", "abc", now, errBadSession},
	}
	for _, c := range cases {
		if _, err := g.parseSession(c.value, c.now, lookup); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// The role comes from the state; a new password ends the session.
	u.Role = raftfsm.RoleViewer
	if got, _ := g.parseSession(value, now, lookup); got.Role != raftfsm.RoleViewer {
		t.Errorf("role %s, want the state's viewer", got.Role)
	}
	u.PasswordHash = "$2a$10$hash-two"
	if _, err := g.parseSession(value, now, lookup); !errors.Is(err, errSessionRevoked) {
		t.Errorf("after a password change: %v", err)
	}
	delete(users, "alice")
	if _, err := g.parseSession(value, now, lookup); !errors.Is(err, errSessionRevoked) {
		t.Errorf("after the user's removal: %v", err)
	}
}

func TestRoleAllows(t *testing.T) {
	for _, c := range []struct {
		role, level raftfsm.Role
		want        bool
	}{
		{raftfsm.RoleAdmin, raftfsm.RoleAdmin, true},
		{raftfsm.RoleAdmin, raftfsm.RoleViewer, true},
		{raftfsm.RoleDeployer, raftfsm.RoleDeployer, true},
		{raftfsm.RoleDeployer, raftfsm.RoleAdmin, false},
		{raftfsm.RoleViewer, raftfsm.RoleDeployer, false},
		{raftfsm.RoleViewer, raftfsm.RoleViewer, true},
		{"root", raftfsm.RoleViewer, false},
		{"", "", false},
	} {
		if got := roleAllows(c.role, c.level); got != c.want {
			t.Errorf("roleAllows(%q, %q) = %v", c.role, c.level, got)
		}
	}
	var s *session
	if s.can(raftfsm.RoleViewer) {
		t.Errorf("no session can do something")
	}
}

func TestForwardHeader(t *testing.T) {
	g := signer{key: testKey}
	now := time.Now()
	for _, want := range []forwarded{{IP: "198.51.100.7"}, {IP: "2001:db8::7", HTTPS: true}} {
		v := g.forwardValue(want, now)
		if got, ok := g.parseForward(v, now.Add(10*time.Second), time.Minute); !ok || got != want {
			t.Fatalf("parse %q: %+v %v, want %+v", v, got, ok, want)
		}
	}
	v := g.forwardValue(forwarded{IP: "198.51.100.7"}, now)
	if _, ok := g.parseForward(v, now.Add(2*time.Minute), time.Minute); ok {
		t.Errorf("an old header was accepted")
	}
	if _, ok := g.parseForward(strings.Replace(v, "198.51.100.7", "10.0.0.1", 1), now, time.Minute); ok {
		t.Errorf("a changed address was accepted")
	}
	if _, ok := g.parseForward(strings.Replace(v, "|http|", "|https|", 1), now, time.Minute); ok {
		t.Errorf("a changed scheme was accepted")
	}
	if _, ok := (signer{key: []byte("another key of at least 32 bytes!")}).parseForward(v, now, time.Minute); ok {
		t.Errorf("another key accepted the header")
	}
	for _, bad := range []string{"", "1.2.3.4", "a|b|c", "1.2.3.4|x|y|z", "1.2.3.4|ftp|1|z", "1.2.3.4|http|y|z|w"} {
		if _, ok := g.parseForward(bad, now, time.Minute); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}
