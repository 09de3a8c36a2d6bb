package control

import (
	"context"
	"time"
)

// Enroller is what the API asks of a node to let other nodes in and keep
// their certificates current: a new node trades a one-time join token for
// its certificate and the cluster's keys, a member renews its certificate,
// an admin makes join tokens. node.Agent implements it; the leader does the
// work and followers' APIs forward to it.
type Enroller interface {
	// Join checks and uses req's token, signs req's certificate request for
	// the node the token allows, and returns what the node needs to start.
	// remoteIP is the address the request came from (the joining node's,
	// also when a follower forwarded it).
	Join(ctx context.Context, req JoinRequest, remoteIP string) (JoinAnswer, error)
	// RenewCertificate signs a new certificate for nodeID, the node whose
	// valid certificate the caller presented, from its certificate request.
	RenewCertificate(ctx context.Context, nodeID string, csrPEM []byte) (CertificateAnswer, error)
	// CreateJoinToken makes a one-time join token (its hash committed).
	CreateJoinToken(ctx context.Context, req JoinTokenRequest) (JoinTokenInfo, error)
}

// JoinRequest is the body of POST /v1/join, sent by a node that has no
// certificate yet (over TLS, the server's chain checked against the CA
// fingerprint the node was given).
type JoinRequest struct {
	// Token is the one-time join token from the node's user data (or
	// `dropmesh join-token create` for a host joined by hand).
	Token string `json:"token"`
	// NodeID is the id the node will run as; a token made for a droplet
	// allows only that droplet's node id.
	NodeID string `json:"node_id"`
	// IP is the private address the node advertises (it goes into the
	// certificate).
	IP string `json:"ip"`
	// CSR is the node's certificate request (PEM); the CA signs the identity
	// the leader decides, never what the request claims.
	CSR string `json:"csr"`
}

// JoinAnswer is what a node gets for a valid join token.
type JoinAnswer struct {
	// Certificate is the node's certificate (PEM), CA the cluster CA's.
	Certificate string `json:"certificate"`
	CA          string `json:"ca"`
	// ClusterSecret is the cluster secret (64 hex): the API key, the seal
	// key and the derived gossip key come from it.
	ClusterSecret string `json:"cluster_secret"`
	// GossipKeys are the gossip keys in use (hex), the primary first.
	GossipKeys []string `json:"gossip_keys"`
	// ClusterName labels the gossip.
	ClusterName string `json:"cluster_name"`
}

// CertificateRequest is the body of POST /v1/internal/certificate: a
// member's request for a fresh certificate (renewal).
type CertificateRequest struct {
	CSR string `json:"csr"`
}

// CertificateAnswer is a freshly signed certificate.
type CertificateAnswer struct {
	Certificate string    `json:"certificate"`
	Serial      string    `json:"serial"`
	NotAfter    time.Time `json:"not_after"`
}

// JoinTokenRequest asks for a join token. TTL 0 takes the default (1 hour).
type JoinTokenRequest struct {
	// TTL is how long the token stays usable, such as "1h".
	TTL string `json:"ttl,omitempty"`
	// Node binds the token to one node id (empty: the joining host's own).
	Node string `json:"node,omitempty"`
	// Purpose says what the token is for, in the events ("join.sh").
	Purpose string `json:"purpose,omitempty"`
}

// JoinTokenInfo is a new join token: shown once, only its hash is kept.
type JoinTokenInfo struct {
	Token string `json:"token"`
	// CAFingerprint pins the cluster CA for the joining node
	// (--ca-fingerprint).
	CAFingerprint string    `json:"ca_fingerprint"`
	ExpiresAt     time.Time `json:"expires_at"`
	Node          string    `json:"node,omitempty"`
}
