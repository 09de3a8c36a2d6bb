package mesh

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/memberlist"
)

// NodeMeta is what every agent tells the others about itself through gossip.
// It travels as JSON in memberlist's node metadata, which is limited to
// MaxMetaSize bytes.
type NodeMeta struct {
	// ID is the node id; it must equal the memberlist node name.
	ID string `json:"id"`
	// DropletID is the DigitalOcean droplet id (0 when unknown, e.g. local mode).
	DropletID int `json:"droplet,omitempty"`
	// Region is the droplet's region slug.
	Region string `json:"region,omitempty"`
	// PublicIP and PrivateIP are the droplet's addresses.
	PublicIP  string `json:"pub,omitempty"`
	PrivateIP string `json:"priv,omitempty"`
	// API, UI, Raft and Edge are host:port addresses of this agent's
	// services; empty when the agent does not run that service.
	API  string `json:"api,omitempty"`
	UI   string `json:"ui,omitempty"`
	Raft string `json:"raft,omitempty"`
	Edge string `json:"edge,omitempty"`
	// Version is the dropmesh version.
	Version string `json:"v,omitempty"`
	// Proto is the protocol of the replicated log this agent applies
	// (raftfsm.Protocol: its newest command types and fields; releases
	// before field tags advertised their newest command type).
	Proto int `json:"proto,omitempty"`
	// Keys are the KeyIDs of the gossip keys this agent has installed,
	// comma-separated, the one it encrypts with first: what a key rotation
	// waits on. (A string keeps NodeMeta comparable.)
	Keys string `json:"keys,omitempty"`
}

// KeyIDs splits Keys: the primary key's id first (none when Keys is empty).
func (m NodeMeta) KeyIDs() []string {
	if m.Keys == "" {
		return nil
	}
	return strings.Split(m.Keys, ",")
}

// MaxMetaSize is the largest encoded NodeMeta memberlist accepts.
const MaxMetaSize = memberlist.MetaMaxSize

var (
	// ErrInvalidMeta marks metadata that fails validation or decoding.
	ErrInvalidMeta = errors.New("mesh: invalid node metadata")
	// ErrMetaTooLarge marks metadata whose encoding exceeds MaxMetaSize.
	ErrMetaTooLarge = errors.New("mesh: node metadata too large")
)

var (
	// nodeIDPattern is the node id rule shared with raftfsm.ValidateNodeID
	// (a DNS label); mesh keeps its own copy so it imports no dropmesh package.
	nodeIDPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	// regionPattern accepts DigitalOcean slugs (nyc3) and local names (local).
	regionPattern = regexp.MustCompile(`^[a-z0-9-]{0,32}$`)
	// versionPattern accepts semver-ish strings and git describe output.
	versionPattern = regexp.MustCompile(`^[A-Za-z0-9.+_-]{0,64}$`)
)

// validNodeID reports whether id is a well-formed node id.
func validNodeID(id string) bool { return nodeIDPattern.MatchString(id) }

// Validate checks every field; gossip is untrusted, so a member whose
// metadata fails here is refused.
func (m NodeMeta) Validate() error {
	if !validNodeID(m.ID) {
		return fmt.Errorf("%w: id %q: use 1-63 lowercase letters, digits and '-'", ErrInvalidMeta, m.ID)
	}
	if m.DropletID < 0 {
		return fmt.Errorf("%w: node %s: negative droplet id %d", ErrInvalidMeta, m.ID, m.DropletID)
	}
	if !regionPattern.MatchString(m.Region) {
		return fmt.Errorf("%w: node %s: region %q", ErrInvalidMeta, m.ID, m.Region)
	}
	for _, ip := range []struct{ name, v string }{{"public ip", m.PublicIP}, {"private ip", m.PrivateIP}} {
		if ip.v != "" && net.ParseIP(ip.v) == nil {
			return fmt.Errorf("%w: node %s: %s %q is not an IP address", ErrInvalidMeta, m.ID, ip.name, ip.v)
		}
	}
	for _, a := range []struct{ name, v string }{{"api", m.API}, {"ui", m.UI}, {"raft", m.Raft}, {"edge", m.Edge}} {
		if a.v != "" && !validHostPort(a.v) {
			return fmt.Errorf("%w: node %s: %s address %q is not host:port", ErrInvalidMeta, m.ID, a.name, a.v)
		}
	}
	if !versionPattern.MatchString(m.Version) {
		return fmt.Errorf("%w: node %s: version %q", ErrInvalidMeta, m.ID, m.Version)
	}
	if m.Proto < 0 {
		return fmt.Errorf("%w: node %s: negative protocol %d", ErrInvalidMeta, m.ID, m.Proto)
	}
	ids := m.KeyIDs()
	if len(ids) > maxMetaKeys {
		return fmt.Errorf("%w: node %s: %d gossip keys, at most %d", ErrInvalidMeta, m.ID, len(ids), maxMetaKeys)
	}
	for _, k := range ids {
		if !keyIDPattern.MatchString(k) {
			return fmt.Errorf("%w: node %s: gossip key id %q", ErrInvalidMeta, m.ID, k)
		}
	}
	return nil
}

// maxMetaKeys bounds NodeMeta.Keys (a keyring holds a few keys at most).
const maxMetaKeys = 8

// keyIDPattern is KeyID's shape.
var keyIDPattern = regexp.MustCompile(`^[0-9a-f]{12}$`)

// hostPattern is a conservative host name: letters, digits, '-', '.'.
var hostPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)

// validHostPort reports whether s is host:port with an IP or a plain host
// name and a port in 1-65535.
func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return false
	}
	return net.ParseIP(host) != nil || hostPattern.MatchString(host)
}

// encodeMeta validates and encodes meta, refusing encodings larger than
// MaxMetaSize (memberlist panics on oversized metadata, so this check is what
// keeps bad input from crashing the agent).
func encodeMeta(meta NodeMeta) ([]byte, error) {
	if err := meta.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("mesh: encode metadata of %s: %w", meta.ID, err)
	}
	if len(b) > MaxMetaSize {
		return nil, fmt.Errorf("%w: node %s: %d bytes, limit %d", ErrMetaTooLarge, meta.ID, len(b), MaxMetaSize)
	}
	return b, nil
}

// decodeMeta decodes and validates gossiped metadata. Unknown fields are
// allowed (a newer agent may add some); anything else wrong is an error
// wrapping ErrInvalidMeta.
func decodeMeta(b []byte) (NodeMeta, error) {
	var meta NodeMeta
	if len(b) == 0 {
		return meta, fmt.Errorf("%w: empty", ErrInvalidMeta)
	}
	if len(b) > MaxMetaSize {
		return meta, fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidMeta, len(b), MaxMetaSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&meta); err != nil {
		return NodeMeta{}, fmt.Errorf("%w: %v", ErrInvalidMeta, err)
	}
	if dec.More() {
		return NodeMeta{}, fmt.Errorf("%w: trailing data", ErrInvalidMeta)
	}
	if err := meta.Validate(); err != nil {
		return NodeMeta{}, err
	}
	return meta, nil
}
