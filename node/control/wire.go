package control

// The API's wire: header names, error codes and the answer and request
// types that the API handler (node/api) writes and the API client
// (node/apiclient) and the CLI read. They live here, with no HTTP
// framework, so a client of the API never links the server's.

import (
	"fmt"
	"strconv"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// Header names of the API.
const (
	// HeaderIndex carries the raft index of the state a read answered from;
	// pass it back as ?index= for a blocking read.
	HeaderIndex = "X-Dropmesh-Index"
	// HeaderForwarded marks a request one agent forwarded to another, so a
	// forwarded request is never forwarded again.
	HeaderForwarded = "X-Dropmesh-Forwarded"
	// HeaderTimeout carries the time the caller still waits (a Go duration
	// such as "29.5s"); the agent gives up at that point and passes the rest
	// of it on when it forwards.
	HeaderTimeout = "X-Dropmesh-Timeout"
	// HeaderNode names the node a forwarded request speaks for: set by the
	// forwarding member from the caller's verified node certificate, and
	// believed only from a member presenting its own.
	HeaderNode = "X-Dropmesh-Node"
)

// Headers of the read path.
const (
	// HeaderLastContact is how long ago, in milliseconds, the serving node
	// last heard from the leader (0 for a linearizable read, whose leader
	// just confirmed its leadership); absent when it never did.
	HeaderLastContact = "X-Dropmesh-Last-Contact"
	// HeaderKnownLeader is "true" when the serving node knows a leader.
	HeaderKnownLeader = "X-Dropmesh-Known-Leader"
)

// Error codes of the error answer; clients branch on them.
const (
	CodeInvalid      = "invalid"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeNotAllowed   = "method_not_allowed"
	CodeConflict     = "conflict"
	CodeTooLarge     = "too_large"
	CodeRateLimited  = "rate_limited"
	CodeNotLeader    = "not_leader"
	CodeNoLeader     = "no_leader"
	// CodeOutcomeUnknown: the leader went away after the request reached
	// it; it may have been applied. Not retryable: look, then decide.
	CodeOutcomeUnknown = "outcome_unknown"
	// CodeCatchingUp: the node has not caught up since it started and
	// serves no read yet; retry (after Retry-After) or ask another node.
	CodeCatchingUp  = "catching_up"
	CodeTimeout     = "timeout"
	CodeProbeFailed = "probe_failed"
	CodeUnavailable = "unavailable"
	CodeInternal    = "internal"
)

// ErrorBody is the JSON shape of every error answer.
type ErrorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// Retryable reports whether a client may retry the same request (on this or
// another node) after an answer with this code.
func Retryable(code string) bool {
	return code == CodeNotLeader || code == CodeNoLeader || code == CodeRateLimited || code == CodeUnavailable || code == CodeCatchingUp
}

// Ping is the answer of GET /ping: nothing sensitive.
type Ping struct {
	Node    string `json:"node"`
	Version string `json:"version"`
}

// NameRequest creates a workspace, a project or an environment.
type NameRequest struct {
	Name string `json:"name"`
}

// AddedNodes names the nodes POST /v1/nodes is creating.
type AddedNodes struct {
	Nodes []string `json:"nodes"`
}

// WorkspaceSummary is one workspace in GET /v1/workspaces.
type WorkspaceSummary struct {
	ID        string        `json:"id"`
	Name      string        `json:"name"`
	CreatedAt time.Time     `json:"created_at"`
	Projects  []ProjectInfo `json:"projects"`
	Services  int           `json:"services"`
}

// ServiceDetail is a service with where it runs and how its last deploy went.
type ServiceDetail struct {
	// Name is the service as the CLI writes it (workspace name first).
	Name       string               `json:"name"`
	Service    raftfsm.Service      `json:"service"`
	Instances  []raftfsm.Instance   `json:"instances"`
	Placement  []raftfsm.Assignment `json:"placement"`
	LastDeploy *raftfsm.Deploy      `json:"last_deploy,omitempty"`
}

// UserInfo is a UI user without the password hash.
type UserInfo struct {
	Name      string       `json:"name"`
	Role      raftfsm.Role `json:"role"`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`
}

// RegistryInfo is a private registry without its password.
type RegistryInfo struct {
	Registry string `json:"registry"`
	Username string `json:"username"`
}

// OriginCertInfo is one zone's TLS certificate as GET /v1/origin-certs
// shows it: the public chain's facts, never the key.
type OriginCertInfo struct {
	Zone      string    `json:"zone"`
	Names     []string  `json:"names"`
	NotAfter  time.Time `json:"not_after"`
	UpdatedAt time.Time `json:"updated_at"`
}

// CAInfo is the cluster CA as GET /v1/ca shows it: the CA certificate's
// facts and every unexpired node certificate, never a key.
type CAInfo struct {
	Subject     string         `json:"subject"`
	Fingerprint string         `json:"fingerprint"`
	NotAfter    time.Time      `json:"not_after"`
	CreatedAt   time.Time      `json:"created_at"`
	CertPEM     string         `json:"cert_pem"`
	Certs       []NodeCertInfo `json:"certs"`
}

// NodeCertInfo is one node certificate of CAInfo.
type NodeCertInfo struct {
	Node      string     `json:"node"`
	Serial    string     `json:"serial"`
	NotBefore time.Time  `json:"not_before"`
	NotAfter  time.Time  `json:"not_after"`
	Revoked   bool       `json:"revoked"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	Reason    string     `json:"reason,omitempty"`
}

// CommitResult is the answer of POST /v1/internal/commands: what applying
// the report returned.
type CommitResult struct {
	Value any `json:"value,omitempty"`
}

// ProbeResult is the answer of a successful GET /v1/internal/probe.
type ProbeResult struct {
	OK bool `json:"ok"`
}

// SecretSet is what a secret or token reads as when it is set: the API
// never shows a sealed value.
const SecretSet = "set"

// MaxEventsPage bounds one GET /v1/events.
const MaxEventsPage = raftfsm.MaxEvents

// ParseSince reads a point in time as the API and the CLI accept it: an RFC
// 3339 time, unix seconds, or a duration before now such as 10m or 2h.
func ParseSince(raw string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, raw); err == nil {
		return t, nil
	}
	if secs, err := strconv.ParseInt(raw, 10, 64); err == nil && secs >= 0 && secs < 1<<40 {
		return time.Unix(secs, 0).UTC(), nil
	}
	if d, err := time.ParseDuration(raw); err == nil && d >= 0 && d < 100*365*24*time.Hour {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time, unix seconds, or a duration ago such as 10m", raw)
}

// DefaultBlockingWait is how long a blocking read (?index= without
// ?wait=) waits for a change: the API's default, which a client that
// blocks must outwait.
const DefaultBlockingWait = 5 * time.Minute
