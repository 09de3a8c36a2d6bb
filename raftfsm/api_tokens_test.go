package raftfsm

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestAPITokens(t *testing.T) {
	f := newFixture(t)
	text := APITokenText("0123456789ab", strings.Repeat("A", 43))
	id, ok := APITokenID(text)
	if !ok || id != "0123456789ab" {
		t.Fatalf("APITokenID(%q) = %q, %v", text, id, ok)
	}
	for _, bad := range []string{"", "dmt_0123456789ab", "dmt_0123456789AB_" + strings.Repeat("A", 43), text + "A", "Bearer " + text} {
		if _, ok := APITokenID(bad); ok {
			t.Errorf("APITokenID(%q) accepted", bad)
		}
	}
	tok := APIToken{ID: id, Name: "ci", Role: RoleDeployer, Hash: HashAPIToken(text), CreatedBy: "admin"}
	for name, bad := range map[string]APIToken{
		"id":   {ID: "xyz", Name: "ci", Role: RoleViewer, Hash: tok.Hash},
		"name": {ID: id, Name: "CI!", Role: RoleViewer, Hash: tok.Hash},
		"role": {ID: id, Name: "ci", Role: "root", Hash: tok.Hash},
		"hash": {ID: id, Name: "ci", Role: RoleViewer, Hash: text},
	} {
		if err := f.refuse(&CreateAPIToken{At: t0, Token: bad}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	f.refuse(&CreateAPIToken{Token: tok}) // no time stamp
	f.must(&CreateAPIToken{At: t0, Token: tok})
	got := f.fsm.Clone().Tokens[id]
	if got == nil || got.Role != RoleDeployer || got.CreatedAt != t0 || !got.Matches(text) || got.Matches(text+"x") {
		t.Fatalf("stored token %+v", got)
	}
	if strings.Contains(f.stateJSON(), text) {
		t.Fatal("the state holds the token's text")
	}
	dupName := tok
	dupName.ID = "ba9876543210"
	if err := f.refuse(&CreateAPIToken{At: t0, Token: dupName}); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate name: %v", err)
	}
	if err := f.refuse(&CreateAPIToken{At: t0, Token: APIToken{ID: id, Name: "other", Role: RoleViewer, Hash: tok.Hash}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate id: %v", err)
	}

	// Uses: the latest wins, an older one and an unknown token are ignored.
	used := t0.Add(time.Hour)
	f.must(&RecordTokenUse{At: used, Uses: map[string]time.Time{id: used, "ffffffffffff": used}})
	f.must(&RecordTokenUse{At: used, Uses: map[string]time.Time{id: t0}})
	if got := f.fsm.Clone().Tokens[id].LastUsedAt; !got.Equal(used) {
		t.Fatalf("last use %s, want %s", got, used)
	}
	if err := f.refuse(&RecordTokenUse{At: used, Uses: map[string]time.Time{"nope": used}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad id in a use: %v", err)
	}

	if err := f.refuse(&RevokeAPIToken{At: t0, ID: "ffffffffffff"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	f.must(&RevokeAPIToken{At: t0, ID: id})
	if _, ok := f.fsm.Clone().TokenByRef("ci"); ok {
		t.Fatal("the token survived its revocation")
	}
}

func TestAPITokensOfAUser(t *testing.T) {
	f := newFixture(t)
	f.must(&PutUser{At: t0, Name: "ann", PasswordHash: "$2a$10$abcdefghijklmnopqrstuuvwxyzabcdefghijklmnopqrstuvwxyz12", Role: RoleDeployer})
	text, tok, err := MakeAPIToken("ann-ci", RoleDeployer, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := APITokenID(text); !ok || id != tok.ID || !tok.Matches(text) {
		t.Fatalf("MakeAPIToken: %q %+v", text, tok)
	}
	tok.User = "ann"
	over := tok
	over.ID, over.Name, over.Role = "ba9876543210", "ann-admin", RoleAdmin
	if err := f.refuse(&CreateAPIToken{At: t0, Token: over}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a token above its user's role: %v", err)
	}
	ghost := tok
	ghost.ID, ghost.Name, ghost.User = "ba9876543211", "ghost", "nobody"
	if err := f.refuse(&CreateAPIToken{At: t0, Token: ghost}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a token of an unknown user: %v", err)
	}
	f.must(&CreateAPIToken{At: t0, Token: tok})

	// The token's role follows the user's down, never up.
	st := f.fsm.Clone()
	if r, ok := st.EffectiveRole(st.Tokens[tok.ID]); !ok || r != RoleDeployer {
		t.Fatalf("effective role %q %v", r, ok)
	}
	f.must(&PutUser{At: t0, Name: "ann", Role: RoleViewer})
	st = f.fsm.Clone()
	if r, ok := st.EffectiveRole(st.Tokens[tok.ID]); !ok || r != RoleViewer {
		t.Fatalf("after the user became a viewer: %q %v", r, ok)
	}
	f.must(&PutUser{At: t0, Name: "ann", Role: RoleAdmin})
	st = f.fsm.Clone()
	if r, _ := st.EffectiveRole(st.Tokens[tok.ID]); r != RoleDeployer {
		t.Fatalf("after the user became an admin: %q, want the token's deployer", r)
	}
	// Removing the user revokes its tokens.
	f.must(&DeleteUser{At: t0, Name: "ann"})
	if _, ok := f.fsm.Clone().Tokens[tok.ID]; ok {
		t.Fatal("the token outlived its user")
	}
}
