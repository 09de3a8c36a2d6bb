package raftfsm

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"time"
)

// APIToken is a credential for the agent API that carries a role (the same
// roles as the UI users). The state holds only the SHA-256 of the token: the
// token itself is shown once, when it is made, and never stored. A token is
// 256 random bits, so an unsalted hash is as good as a slow one here.
type APIToken struct {
	// ID is 12 hex digits; it is also the token's visible prefix, so a
	// request's token is found without comparing every hash.
	ID   string `json:"id"`
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Hash is the hex SHA-256 of the whole token text.
	Hash string `json:"hash"`
	// User, when set, is the UI user the token belongs to: the token never
	// has more rights than the user has now, and goes with the user.
	User      string    `json:"user,omitempty"`
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// LastUsedAt is when a node last served a request with the token, to a
	// minute or so (uses are batched: see RecordTokenUse).
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// APITokenPrefix starts every API token: dmt_<id>_<secret>.
const APITokenPrefix = "dmt_"

// MaxAPITokens bounds the tokens of a cluster.
const MaxAPITokens = 1000

// MaxTokenUses bounds the uses one RecordTokenUse carries.
const MaxTokenUses = MaxAPITokens

var (
	tokenIDPattern      = regexp.MustCompile(`^[0-9a-f]{12}$`)
	apiTokenHashPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// tokenTextPattern is dmt_, the id, _, and 43 base64url characters (32 bytes).
	tokenTextPattern = regexp.MustCompile(`^dmt_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$`)
)

// APITokenText builds a token's text from its id and secret part (43
// base64url characters, made by the caller from 32 random bytes).
func APITokenText(id, secret string) string { return APITokenPrefix + id + "_" + secret }

// APITokenID returns the id of a token's text, and false when the text does
// not have a token's shape (it is then no token at all, perhaps the cluster
// API key).
func APITokenID(text string) (string, bool) {
	m := tokenTextPattern.FindStringSubmatch(text)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// MakeAPIToken draws a new token's id and secret and returns its text and
// its record (the hash, never the text). The leader calls it before it
// commits CreateAPIToken; Apply never does (it reads randomness).
func MakeAPIToken(name string, role Role, createdBy string) (string, APIToken, error) {
	var id [6]byte
	var secret [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", APIToken{}, fmt.Errorf("make API token %s: %w", name, err)
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return "", APIToken{}, fmt.Errorf("make API token %s: %w", name, err)
	}
	tid := hex.EncodeToString(id[:])
	text := APITokenText(tid, base64.RawURLEncoding.EncodeToString(secret[:]))
	return text, APIToken{ID: tid, Name: name, Role: role, Hash: HashAPIToken(text), CreatedBy: createdBy}, nil
}

// HashAPIToken is the hash the state keeps of a token's text.
func HashAPIToken(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// Matches reports, in constant time, whether text is this token.
func (t *APIToken) Matches(text string) bool {
	return subtle.ConstantTimeCompare([]byte(HashAPIToken(text)), []byte(t.Hash)) == 1
}

// rank orders the roles; 0 is no role.
func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleDeployer:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Allows reports whether a caller with role r may do what needs the role need.
func (r Role) Allows(need Role) bool { return r.rank() > 0 && r.rank() >= need.rank() }

// EffectiveRole is the role a request with t has in s: the token's, capped
// by its user's current role; false when its user is gone.
func (s *State) EffectiveRole(t *APIToken) (Role, bool) {
	if t.User == "" {
		return t.Role, true
	}
	u, ok := s.Users[t.User]
	if !ok {
		return "", false
	}
	if u.Role.rank() < t.Role.rank() {
		return u.Role, true
	}
	return t.Role, true
}

// ValidateTokenName checks the name of an API token (the pattern of user names).
func ValidateTokenName(s string) error {
	if !userNamePattern.MatchString(s) {
		return invalidf("token name %q: use a lowercase letter then up to 31 of a-z 0-9 _ . -", s)
	}
	return nil
}

// TokenByRef finds a token by id or by name.
func (s *State) TokenByRef(ref string) (*APIToken, bool) {
	if t, ok := s.Tokens[ref]; ok {
		return t, true
	}
	for _, t := range s.Tokens {
		if t.Name == ref {
			return t, true
		}
	}
	return nil, false
}

// CreateAPIToken adds an API token. The leader makes the id and the secret
// and hashes it; the command carries only the hash.
type CreateAPIToken struct {
	At    time.Time `json:"at"`
	Token APIToken  `json:"token"`
}

// RevokeAPIToken removes an API token: the next request with it gets 401.
type RevokeAPIToken struct {
	At time.Time `json:"at"`
	ID string    `json:"id"`
}

// RecordTokenUse records when tokens were last used. Nodes note uses in
// memory and send them in batches (never a raft write per request); a use
// older than the one recorded, or of a token since revoked, is ignored.
type RecordTokenUse struct {
	At   time.Time            `json:"at"`
	Uses map[string]time.Time `json:"uses"`
}

func (*CreateAPIToken) Type() CommandType { return CmdCreateAPIToken }
func (*RevokeAPIToken) Type() CommandType { return CmdRevokeAPIToken }
func (*RecordTokenUse) Type() CommandType { return CmdRecordTokenUse }

func applyCreateAPIToken(s *State, c *CreateAPIToken) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	t := c.Token
	if !tokenIDPattern.MatchString(t.ID) {
		return nil, invalidf("token id %q: want 12 hex digits", t.ID)
	}
	if err := ValidateTokenName(t.Name); err != nil {
		return nil, err
	}
	if !t.Role.Valid() {
		return nil, invalidf("role %q: want admin, deployer or viewer", t.Role)
	}
	if !apiTokenHashPattern.MatchString(t.Hash) {
		return nil, invalidf("token hash: want a hex SHA-256")
	}
	if t.User != "" {
		u, ok := s.Users[t.User]
		if !ok {
			return nil, fmt.Errorf("token %s for user %s: %w", t.Name, t.User, ErrNotFound)
		}
		if !u.Role.Allows(t.Role) {
			return nil, invalidf("token %s: role %s is more than its user %s has (%s)", t.Name, t.Role, u.Name, u.Role)
		}
	}
	if _, ok := s.Tokens[t.ID]; ok {
		return nil, fmt.Errorf("%w: token id %s exists", ErrConflict, t.ID)
	}
	if _, ok := s.TokenByRef(t.Name); ok {
		return nil, fmt.Errorf("%w: a token named %s exists; revoke it first", ErrConflict, t.Name)
	}
	if len(s.Tokens) >= MaxAPITokens {
		return nil, fmt.Errorf("%w: %d tokens, the most a cluster keeps; revoke some", ErrConflict, len(s.Tokens))
	}
	t.CreatedAt, t.LastUsedAt = c.At, time.Time{}
	s.Tokens[t.ID] = &t
	s.event(c.At, EventToken, SeverityInfo, fmt.Sprintf("API token %s (%s) created with role %s", t.Name, t.ID, t.Role), nil)
	return nil, nil
}

func applyRevokeAPIToken(s *State, c *RevokeAPIToken) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	t, ok := s.Tokens[c.ID]
	if !ok {
		return nil, fmt.Errorf("token %s: %w", c.ID, ErrNotFound)
	}
	delete(s.Tokens, c.ID)
	s.event(c.At, EventToken, SeverityInfo, fmt.Sprintf("API token %s (%s) revoked", t.Name, t.ID), nil)
	return nil, nil
}

func applyRecordTokenUse(s *State, c *RecordTokenUse) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if len(c.Uses) > MaxTokenUses {
		return nil, invalidf("%d token uses in one command, at most %d", len(c.Uses), MaxTokenUses)
	}
	for id, at := range c.Uses {
		if !tokenIDPattern.MatchString(id) || at.IsZero() {
			return nil, invalidf("token use %q at %s: want a token id and a time", id, at)
		}
	}
	for id, at := range c.Uses {
		if t, ok := s.Tokens[id]; ok && at.After(t.LastUsedAt) {
			t.LastUsedAt = at
		}
	}
	return nil, nil
}

// revokeTokensOf removes the tokens of a removed user.
func (s *State) revokeTokensOf(at time.Time, user string) {
	for _, id := range SortedKeys(s.Tokens) {
		if t := s.Tokens[id]; t.User == user {
			delete(s.Tokens, id)
			s.event(at, EventToken, SeverityInfo, fmt.Sprintf("API token %s (%s) revoked with its user %s", t.Name, t.ID, user), nil)
		}
	}
}
