package raftfsm

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// ClusterPKI is the cluster CA and what it has issued: node certificates,
// revocations and join tokens. The CA key is sealed (LabelCAKey); join
// tokens are kept only as hashes, so the state (and its snapshots and
// backups) never holds anything a new node could join with. Expired
// certificates, their revocations and long-expired tokens are dropped by
// the commands that add new ones, so the lists stay small.
type ClusterPKI struct {
	// CACertPEM is the CA's certificate; CAKey its PKCS #8 key, sealed.
	CACertPEM string `json:"ca_cert_pem,omitempty"`
	CAKey     Sealed `json:"ca_key,omitempty"`
	// CASubject, CAFingerprint ("sha256:<hex of DER>") and CANotAfter are
	// read from the certificate when it is set.
	CASubject     string    `json:"ca_subject,omitempty"`
	CAFingerprint string    `json:"ca_fingerprint,omitempty"`
	CANotAfter    time.Time `json:"ca_not_after,omitzero"`
	CreatedAt     time.Time `json:"created_at,omitzero"`
	// Certs are the node certificates issued and not yet expired, by serial.
	Certs map[string]*NodeCert `json:"certs"`
	// Revoked are the revoked certificates not yet expired, by serial.
	Revoked map[string]*Revocation `json:"revoked"`
	// JoinTokens are the join tokens, by hash.
	JoinTokens map[string]*JoinToken `json:"join_tokens"`
	// Revocations counts the certificates ever revoked, so a replica can
	// tell cheaply that a revocation happened (the Store then closes the
	// revoked peers' open raft connections).
	Revocations uint64 `json:"revocations,omitempty"`
}

// NodeCert is one issued node certificate.
type NodeCert struct {
	Serial    string    `json:"serial"`
	Node      string    `json:"node"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	IssuedAt  time.Time `json:"issued_at"`
}

// Revocation is a revoked certificate; it is kept until the certificate
// would have expired.
type Revocation struct {
	Serial   string    `json:"serial"`
	Node     string    `json:"node"`
	At       time.Time `json:"at"`
	Reason   string    `json:"reason,omitempty"`
	NotAfter time.Time `json:"not_after"`
}

// JoinToken is a one-time, expiring credential a new node trades for its
// certificate. Only its hash (HashJoinToken) is stored.
type JoinToken struct {
	Hash string `json:"hash"`
	// Purpose says what the token is for ("droplet", "join.sh"); Node, when
	// set, is the only node id that may use it.
	Purpose   string    `json:"purpose"`
	Node      string    `json:"node,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	UsedAt    time.Time `json:"used_at,omitzero"`
	UsedBy    string    `json:"used_by,omitempty"`
}

// LabelCAKey is the associated data the CA key is sealed with.
const LabelCAKey = "pki:ca_key"

// DefaultJoinTokenTTL is how long a join token is valid by default.
const DefaultJoinTokenTTL = time.Hour

// Bounds of the PKI state.
const (
	// MaxJoinTokenTTL is the longest a join token may live.
	MaxJoinTokenTTL = 7 * 24 * time.Hour
	// MaxLiveJoinTokens bounds the unused, unexpired tokens.
	MaxLiveJoinTokens = 256
	// joinTokenKeep is how long a used or expired token stays (for the
	// record) before a later command drops it.
	joinTokenKeep = 24 * time.Hour
	maxCACertPEM  = 16 << 10
)

// Errors of UseJoinToken; callers branch on them for the answer and the event.
var (
	ErrJoinTokenUnknown   = errors.New("join token unknown")
	ErrJoinTokenUsed      = errors.New("join token already used")
	ErrJoinTokenExpired   = errors.New("join token expired")
	ErrJoinTokenWrongNode = errors.New("join token is for another node")
)

var (
	serialPattern        = regexp.MustCompile(`^[0-9a-f]{1,40}$`)
	joinTokenHashPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	purposePattern       = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)
)

// joinTokenPrefix marks a dropmesh join token, so one pasted in the wrong
// place is recognisable (and secret scanners can find it).
const joinTokenPrefix = "dmj_"

// NewJoinToken makes a random join token and its hash. The token goes to
// the new node (user data, the join.sh command line); the hash into the
// state with CreateJoinToken.
func NewJoinToken() (token, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("join token: %w", err)
	}
	token = joinTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashJoinToken(token), nil
}

// HashJoinToken is the form a join token is stored and looked up in.
func HashJoinToken(token string) string {
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// CertFingerprint is "sha256:" and the hex SHA-256 of a certificate's DER
// (the same as node/pki's Fingerprint).
func CertFingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// IsRevoked reports whether the certificate with serial is revoked: the
// Revoked callback of every node's TLS checks.
func (p *ClusterPKI) IsRevoked(serial string) bool {
	_, ok := p.Revoked[serial]
	return ok
}

// CertsOf returns the node's unexpired certificates at at.
func (p *ClusterPKI) CertsOf(node string, at time.Time) []*NodeCert {
	var out []*NodeCert
	for _, serial := range SortedKeys(p.Certs) {
		if c := p.Certs[serial]; c.Node == node && c.NotAfter.After(at) {
			out = append(out, c)
		}
	}
	return out
}

// prune drops what has expired by at.
func (p *ClusterPKI) prune(at time.Time) {
	for serial, c := range p.Certs {
		if !c.NotAfter.After(at) {
			delete(p.Certs, serial)
		}
	}
	for serial, r := range p.Revoked {
		if !r.NotAfter.After(at) {
			delete(p.Revoked, serial)
		}
	}
	for h, t := range p.JoinTokens {
		end := t.ExpiresAt
		if !t.UsedAt.IsZero() && t.UsedAt.Before(end) {
			end = t.UsedAt
		}
		if at.Sub(end) > joinTokenKeep {
			delete(p.JoinTokens, h)
		}
	}
}

func (p *ClusterPKI) fillMaps() {
	if p.Certs == nil {
		p.Certs = map[string]*NodeCert{}
	}
	if p.Revoked == nil {
		p.Revoked = map[string]*Revocation{}
	}
	if p.JoinTokens == nil {
		p.JoinTokens = map[string]*JoinToken{}
	}
}

func newClusterPKI() ClusterPKI {
	var p ClusterPKI
	p.fillMaps()
	return p
}

func applySetClusterCA(s *State, c *SetClusterCA) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if s.PKI.CACertPEM != "" {
		return nil, fmt.Errorf("%w: the cluster CA is already set (%s)", ErrConflict, s.PKI.CAFingerprint)
	}
	if len(c.CACertPEM) > maxCACertPEM {
		return nil, invalidf("CA certificate: over %d KiB", maxCACertPEM>>10)
	}
	cert, err := ParseCertChain(c.CACertPEM)
	if err != nil {
		return nil, fmt.Errorf("CA %w", err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, invalidf("CA certificate %s is not a CA", cert.Subject)
	}
	if !cert.NotAfter.After(c.At) {
		return nil, invalidf("CA certificate expired at %s", cert.NotAfter.Format(time.RFC3339))
	}
	if !c.CAKey.Valid() {
		return nil, invalidf("CA key is not sealed")
	}
	s.PKI.CACertPEM, s.PKI.CAKey = c.CACertPEM, c.CAKey
	s.PKI.CASubject, s.PKI.CAFingerprint = cert.Subject.String(), CertFingerprint(cert)
	s.PKI.CANotAfter, s.PKI.CreatedAt = cert.NotAfter.UTC(), c.At
	s.event(c.At, EventCluster, SeverityInfo, "cluster CA created: "+s.PKI.CAFingerprint, nil)
	return nil, nil
}

func applyRecordNodeCert(s *State, c *RecordNodeCert) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if s.PKI.CACertPEM == "" {
		return nil, fmt.Errorf("node certificate: %w: no cluster CA", ErrConflict)
	}
	nc := c.Cert
	if err := ValidateNodeID(nc.Node); err != nil {
		return nil, err
	}
	if !serialPattern.MatchString(nc.Serial) {
		return nil, invalidf("certificate serial %q: want lowercase hex", nc.Serial)
	}
	if !nc.NotAfter.After(c.At) || !nc.NotAfter.After(nc.NotBefore) {
		return nil, invalidf("certificate %s of %s: not valid after %s", nc.Serial, nc.Node, nc.NotAfter.Format(time.RFC3339))
	}
	if _, ok := s.PKI.Certs[nc.Serial]; ok {
		return nil, fmt.Errorf("%w: certificate serial %s is already recorded", ErrConflict, nc.Serial)
	}
	if s.PKI.IsRevoked(nc.Serial) {
		return nil, fmt.Errorf("%w: certificate serial %s is revoked", ErrConflict, nc.Serial)
	}
	s.PKI.prune(c.At)
	nc.IssuedAt = c.At
	s.PKI.Certs[nc.Serial] = &nc
	return nil, nil
}

func applyRevokeCerts(s *State, c *RevokeCerts) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if c.Node == "" && len(c.Serials) == 0 {
		return nil, invalidf("revoke: name a node or serials")
	}
	if c.Node != "" {
		if err := ValidateNodeID(c.Node); err != nil {
			return nil, err
		}
	}
	if len(c.Reason) > 200 {
		return nil, invalidf("revoke: reason over 200 characters")
	}
	targets := map[string]*NodeCert{}
	for _, serial := range c.Serials {
		nc, ok := s.PKI.Certs[serial]
		if !ok {
			return nil, fmt.Errorf("certificate %q: %w", serial, ErrNotFound)
		}
		targets[serial] = nc
	}
	if c.Node != "" {
		for _, nc := range s.PKI.CertsOf(c.Node, c.At) {
			targets[nc.Serial] = nc
		}
	}
	n := 0
	for _, serial := range SortedKeys(targets) {
		nc := targets[serial]
		if s.PKI.IsRevoked(serial) || !nc.NotAfter.After(c.At) {
			continue
		}
		s.PKI.Revoked[serial] = &Revocation{Serial: serial, Node: nc.Node, At: c.At, Reason: c.Reason, NotAfter: nc.NotAfter}
		s.PKI.Revocations++
		s.event(c.At, EventCluster, SeverityWarn, fmt.Sprintf("certificate %s of %s revoked%s", serial, nc.Node, reasonSuffix(c.Reason)),
			func(e *Event) { e.Node = nc.Node })
		n++
	}
	return n, nil
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return ": " + r
}

func applyCreateJoinToken(s *State, c *CreateJoinToken) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	t := c.Token
	if !joinTokenHashPattern.MatchString(t.Hash) {
		return nil, invalidf("join token hash: want sha256:<64 hex digits>")
	}
	if !purposePattern.MatchString(t.Purpose) {
		return nil, invalidf("join token purpose %q: use 1-32 lowercase letters, digits, '.', '_' and '-'", t.Purpose)
	}
	if t.Node != "" {
		if err := ValidateNodeID(t.Node); err != nil {
			return nil, err
		}
	}
	if ttl := t.ExpiresAt.Sub(c.At); ttl <= 0 || ttl > MaxJoinTokenTTL {
		return nil, invalidf("join token: expiry %s must be after its creation and within %s", t.ExpiresAt.Format(time.RFC3339), MaxJoinTokenTTL)
	}
	if _, ok := s.PKI.JoinTokens[t.Hash]; ok {
		return nil, fmt.Errorf("%w: join token already exists", ErrConflict)
	}
	s.PKI.prune(c.At)
	live := 0
	for _, o := range s.PKI.JoinTokens {
		if o.UsedAt.IsZero() && o.ExpiresAt.After(c.At) {
			live++
		}
	}
	if live >= MaxLiveJoinTokens {
		return nil, fmt.Errorf("%w: %d join tokens are waiting to be used; delete some or let them expire", ErrConflict, live)
	}
	t.CreatedAt, t.UsedAt, t.UsedBy = c.At, time.Time{}, ""
	s.PKI.JoinTokens[t.Hash] = &t
	return nil, nil
}

func applyUseJoinToken(s *State, c *UseJoinToken) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if err := ValidateNodeID(c.UsedBy); err != nil {
		return nil, err
	}
	t, ok := s.PKI.JoinTokens[c.Hash]
	switch {
	case !ok:
		return nil, ErrJoinTokenUnknown
	case !t.UsedAt.IsZero():
		return nil, fmt.Errorf("%w (by %s at %s)", ErrJoinTokenUsed, t.UsedBy, t.UsedAt.Format(time.RFC3339))
	case !c.At.Before(t.ExpiresAt):
		return nil, fmt.Errorf("%w at %s", ErrJoinTokenExpired, t.ExpiresAt.Format(time.RFC3339))
	case t.Node != "" && t.Node != c.UsedBy:
		return nil, fmt.Errorf("%w: %s may not use the token of %s", ErrJoinTokenWrongNode, c.UsedBy, t.Node)
	}
	t.UsedAt, t.UsedBy = c.At, c.UsedBy
	s.event(c.At, EventCluster, SeverityInfo, fmt.Sprintf("join token (%s) used by %s", t.Purpose, c.UsedBy), func(e *Event) { e.Node = c.UsedBy })
	return *t, nil
}

func applyDeleteJoinToken(s *State, c *DeleteJoinToken) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if _, ok := s.PKI.JoinTokens[c.Hash]; !ok {
		return nil, fmt.Errorf("join token: %w", ErrNotFound)
	}
	delete(s.PKI.JoinTokens, c.Hash)
	return nil, nil
}
