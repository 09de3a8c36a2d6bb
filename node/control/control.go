// Package control is the contract between a dropmesh node and its two front
// ends, the HTTP API (node/api) and the web UI (ui): the Controller interface
// the agent implements, and the request and answer types that also travel as
// JSON between the API and its clients (node/apiclient, the CLI).
//
// Reads are served from the node's local replica of the state; writes go to
// the raft leader and fail with ErrNotLeader elsewhere (the API forwards
// them). Every error that comes from bad input wraps raftfsm.ErrInvalid.
package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// Sentinel errors the front ends map to HTTP statuses.
var (
	// ErrNotLeader: a write reached a follower (forward it, or retry).
	ErrNotLeader = raftfsm.ErrNotLeader
	// ErrNoLeader: the cluster has no leader right now (retry later).
	ErrNoLeader = errors.New("the cluster has no leader right now")
	// ErrNotFound, ErrConflict and ErrInvalid come from the state.
	ErrNotFound = raftfsm.ErrNotFound
	ErrConflict = raftfsm.ErrConflict
	ErrInvalid  = raftfsm.ErrInvalid
	// ErrNotLocal: the container asked for does not run on this node.
	ErrNotLocal = errors.New("the container does not run on this node")
	// ErrForbidden: the user's role does not allow the action.
	ErrForbidden = errors.New("forbidden")
	// ErrCatchingUp: this node has not caught up since it started; it
	// serves no read until it has (retry shortly, or ask another node).
	ErrCatchingUp = raftfsm.ErrCatchingUp
	// ErrOutcomeUnknown: a write may or may not have been applied (the
	// leadership was lost or the deadline passed after raft took it).
	ErrOutcomeUnknown = raftfsm.ErrOutcomeUnknown
)

// MaxBuildContextBytes bounds an uploaded build context (its uncompressed
// tar): the agent API, the UI and the agents' own validation use this one
// limit. Larger contexts belong in an image built elsewhere and pulled.
const MaxBuildContextBytes = 512 << 20

// Controller is everything the API and the UI ask of a node. node.Agent
// implements it; tests use fakes.
type Controller interface {
	// NodeID is this node's id.
	NodeID() string
	// Version is this binary's version.
	Version() string

	// View calls fn with the local replica under a read lock; fn copies what it needs.
	View(fn func(s *raftfsm.State))
	// Changed returns a channel closed at the next state change.
	Changed() <-chan struct{}
	// Consistent makes the next local read reflect every write committed so
	// far (on the leader: a barrier; on a follower: wait for the leader's
	// commit index).
	Consistent(ctx context.Context) error

	Reads

	// Cluster describes the leader, the term and every gossip member.
	Cluster(ctx context.Context) (ClusterInfo, error)
	// IsLeader reports whether this node is the raft leader.
	IsLeader() bool
	// Leader returns the leader's id and API address ("" when unknown).
	Leader() (id, api string)

	// Writes: leader only.
	Deploy(ctx context.Context, req DeployRequest) (raftfsm.DeployResult, error)
	Undeploy(ctx context.Context, service string, actor string) error
	RestartService(ctx context.Context, service string, actor string) error
	CreateWorkspace(ctx context.Context, name string) (WorkspaceInfo, error)
	DeleteWorkspace(ctx context.Context, ref string) error
	CreateProject(ctx context.Context, workspace, name string) error
	CreateEnvironment(ctx context.Context, workspace, project, name string) error
	AddNodes(ctx context.Context, req AddNodesRequest) ([]string, error)
	RemoveNode(ctx context.Context, id string) error
	RebootNode(ctx context.Context, id string) error
	PutUser(ctx context.Context, req UserRequest) error
	DeleteUser(ctx context.Context, name string) error
	// CreateToken makes an API token with a role; the answer carries the
	// token's text, the only time it is ever shown (the state keeps its hash).
	CreateToken(ctx context.Context, req TokenRequest, actor string) (TokenCreated, error)
	// RevokeToken removes an API token, by id or name.
	RevokeToken(ctx context.Context, ref string) error
	// RecordTokenUse records when tokens were last used (by id), in one batch;
	// any node may call it (a follower sends it to the leader).
	RecordTokenUse(ctx context.Context, uses map[string]time.Time) error
	UpdateSettings(ctx context.Context, req SettingsRequest) error
	PutWebhook(ctx context.Context, w raftfsm.Webhook) error
	DeleteWebhook(ctx context.Context, id string) error
	PutRegistry(ctx context.Context, req RegistryRequest) error
	DeleteRegistry(ctx context.Context, registry string) error
	// GossipKeys describes the gossip keyring and each member's keys.
	GossipKeys(ctx context.Context) (GossipKeysInfo, error)
	// RotateGossipKey starts moving the cluster to a new random gossip key
	// (leader only; the leader's duty finishes it, without a restart).
	RotateGossipKey(ctx context.Context) (GossipKeysInfo, error)
	// PutOriginCert stores a zone's TLS certificate chain and key (the key
	// sealed); every edge then serves the zone's hosts over TLS with it.
	PutOriginCert(ctx context.Context, zone, certPEM, keyPEM string) error
	DeleteOriginCert(ctx context.Context, zone string) error
	// SetACMEConfig chooses the CA of automatic HTTPS (or turns it off).
	SetACMEConfig(ctx context.Context, cfg raftfsm.ACMEConfig) error
	ExportState(ctx context.Context, plainSecrets bool) (raftfsm.ExportDocument, error)
	ImportState(ctx context.Context, doc raftfsm.ExportDocument) (raftfsm.ImportResult, error)
	CreateSnapshot(ctx context.Context, req SnapshotRequest) error
	// Commit applies an agent's report (instance, health, cron, build context)
	// on the leader. Only the report command types are accepted.
	Commit(ctx context.Context, cmd raftfsm.Command) (any, error)

	// Node-local operations (the API forwards them to the container's node).
	ContainerHealth(ctx context.Context, name string, port int, since time.Time) (HealthAnswer, error)
	ContainerLogs(ctx context.Context, name string, opts LogOptions, w io.Writer) error
	// ProbeAddress probes host:port (HTTP path or TCP) from this node: the
	// leader's second opinion before a restart.
	ProbeAddress(ctx context.Context, addr, path string) error
	AgentLogs(since time.Time, limit int) []LogEntry
	// StoreContext saves an uploaded build context (validated) and returns its digest.
	StoreContext(ctx context.Context, r io.Reader) (ContextInfo, error)
	// OpenContext opens a stored build context for a peer.
	OpenContext(digest string) (io.ReadCloser, int64, error)
	Stats(ctx context.Context) (NodeStats, error)
}

// Reads is what the read path asks of a node: reads are linearizable by
// default (a read index confirmed by the leader, then a wait until the
// serving node has applied it), stale on request, and never served before
// the node has caught up after a restart.
type Reads interface {
	// CatchUp returns nil once this node may serve reads, or an error
	// wrapping ErrCatchingUp that says how far it is.
	CatchUp() error
	// ReadIndex (leader only, ErrNotLeader elsewhere) confirms the
	// leadership with a quorum and returns the index a linearizable read
	// waits for.
	ReadIndex(ctx context.Context) (uint64, error)
	// WaitApplied waits until this node's state reflects index idx.
	WaitApplied(ctx context.Context, idx uint64) error
	// StaleContact says how stale a local read may be (a leader first
	// confirms a leadership it has not confirmed lately).
	StaleContact(ctx context.Context) raftfsm.Contact
}

// GossipKeysInfo is the answer of GET /v1/gossip-keys: the cluster's gossip
// keys by id (never the keys), a rotation in progress, and the keys each
// member says it has installed.
type GossipKeysInfo struct {
	// Primary is the id of the key that encrypts; Keys every key's id.
	Primary string   `json:"primary"`
	Keys    []string `json:"keys"`
	// Derived is true while the cluster still uses the key derived from
	// its secret (no rotation has happened).
	Derived  bool                    `json:"derived"`
	Rotation *raftfsm.GossipRotation `json:"rotation,omitempty"`
	Members  []GossipMember          `json:"members"`
}

// GossipMember is one member's gossip keys as it advertises them.
type GossipMember struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	// Keys are its key ids, the one it encrypts with first.
	Keys []string `json:"keys"`
}

// ClusterInfo is the answer of GET /v1/cluster.
type ClusterInfo struct {
	Leader  LeaderInfo   `json:"leader"`
	Term    uint64       `json:"term"`
	Members []MemberInfo `json:"members"`
}

// LeaderInfo names the raft leader.
type LeaderInfo struct {
	ID  string `json:"id"`
	API string `json:"api"`
}

// MemberInfo is one gossip member and its raft role.
type MemberInfo struct {
	ID     string    `json:"id"`
	Status string    `json:"status"` // alive | suspect | dead | left
	Since  time.Time `json:"since"`
	Raft   string    `json:"raft"` // voter | nonvoter | none
	API    string    `json:"api"`
	UI     string    `json:"ui,omitempty"`
	Edge   string    `json:"edge,omitempty"`
	Region string    `json:"region,omitempty"`
	// Version is the member's dropmesh version.
	Version string `json:"version,omitempty"`
}

// DeployRequest submits a service spec. Actor is the user (UI) or "api".
type DeployRequest struct {
	Spec  raftfsm.ServiceSpec `json:"spec"`
	Actor string              `json:"actor,omitempty"`
	// ExpectGeneration, when set, refuses the deploy if the service moved on.
	ExpectGeneration int64 `json:"expect_generation,omitempty"`
	// Role is the caller's role, from its credential: wildcard and apex
	// hosts need the admin role. Empty has no rights beyond a deployer's.
	Role raftfsm.Role `json:"-"`
}

// WorkspaceInfo is a workspace and everything in it, for GET /v1/workspaces/{ws}.
type WorkspaceInfo struct {
	ID        string             `json:"id"`
	Name      string             `json:"name"`
	Projects  []ProjectInfo      `json:"projects"`
	Services  []raftfsm.Service  `json:"services"`
	Instances []raftfsm.Instance `json:"instances"`
	Deploys   []raftfsm.Deploy   `json:"deploys,omitempty"`
}

// ProjectInfo is a project and its environments.
type ProjectInfo struct {
	Name string   `json:"name"`
	Envs []string `json:"envs"`
}

// AddNodesRequest grows the cluster.
type AddNodesRequest struct {
	Count  int    `json:"count"`
	Region string `json:"region,omitempty"`
	// Snapshot creates the new droplets from this snapshot (default: the base one).
	Snapshot string `json:"snapshot,omitempty"`
}

// UserRequest adds or changes a UI user. An empty password keeps the current one.
type UserRequest struct {
	Name     string       `json:"name"`
	Password string       `json:"password,omitempty"`
	Role     raftfsm.Role `json:"role"`
}

// TokenRequest asks for a new API token.
type TokenRequest struct {
	Name string       `json:"name"`
	Role raftfsm.Role `json:"role"`
	// User, when set, is the UI user the token belongs to: it never has
	// more than the user's role, and is revoked with the user.
	User string `json:"user,omitempty"`
}

// TokenCreated is a new API token: its text (shown only this once) and what
// the state records of it.
type TokenCreated struct {
	Token string    `json:"token"`
	Info  TokenInfo `json:"info"`
}

// TokenInfo is an API token without its hash.
type TokenInfo struct {
	ID         string       `json:"id"`
	Name       string       `json:"name"`
	Role       raftfsm.Role `json:"role"`
	User       string       `json:"user,omitempty"`
	CreatedBy  string       `json:"created_by,omitempty"`
	CreatedAt  time.Time    `json:"created_at"`
	LastUsedAt time.Time    `json:"last_used_at,omitzero"`
}

// NewTokenInfo is t without its hash.
func NewTokenInfo(t *raftfsm.APIToken) TokenInfo {
	return TokenInfo{ID: t.ID, Name: t.Name, Role: t.Role, User: t.User, CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt}
}

// SettingsRequest changes cluster settings; nil fields stay. Tokens arrive in
// plain text and are sealed by the leader.
type SettingsRequest struct {
	Domain         *string                 `json:"domain,omitempty"`
	UIHost         *string                 `json:"ui_host,omitempty"`
	Regions        []string                `json:"regions,omitempty"`
	DropletSize    *string                 `json:"droplet_size,omitempty"`
	BaseSnapshot   *string                 `json:"base_snapshot,omitempty"`
	DOToken        *string                 `json:"do_token,omitempty"`
	CFToken        *string                 `json:"cf_token,omitempty"`
	DesiredNodes   *int                    `json:"desired_nodes,omitempty"`
	HealthInterval *raftfsm.Duration       `json:"health_interval,omitempty"`
	DeadNodeGrace  *raftfsm.Duration       `json:"dead_node_grace,omitempty"`
	Backup         *raftfsm.BackupSettings `json:"backup,omitempty"`
	// SpacesSecret is the plain secret key of the backup bucket.
	SpacesSecret *string `json:"spaces_secret,omitempty"`
	// EgressAllow names the private ranges webhooks may reach (CIDR
	// prefixes; an empty list allows none again).
	EgressAllow *[]string `json:"egress_allow,omitempty"`
}

// RegistryRequest stores credentials for a private registry.
// ACMERequest is the body of PUT /v1/acme: the CA of automatic HTTPS.
// Directory "" is Let's Encrypt (its staging CA with Staging).
type ACMERequest struct {
	Enabled     bool              `json:"enabled"`
	Directory   string            `json:"directory,omitempty"`
	Staging     bool              `json:"staging,omitempty"`
	DirectoryCA string            `json:"directory_ca,omitempty"`
	Email       string            `json:"email,omitempty"`
	RenewBefore *raftfsm.Duration `json:"renew_before,omitempty"`
	Resolvers   []string          `json:"resolvers,omitempty"`
}

// Config is the request as the state stores it.
func (r ACMERequest) Config() (raftfsm.ACMEConfig, error) {
	cfg := raftfsm.ACMEConfig{Enabled: r.Enabled, Directory: r.Directory, DirectoryCA: r.DirectoryCA, Email: r.Email,
		Resolvers: r.Resolvers}
	switch {
	case r.Staging && r.Directory != "":
		return cfg, fmt.Errorf("%w: acme: give staging or a directory, not both", raftfsm.ErrInvalid)
	case r.Staging:
		cfg.Directory = raftfsm.LetsEncryptStagingDirectory
	case r.Directory == "" && r.Enabled:
		cfg.Directory = raftfsm.LetsEncryptDirectory
	}
	if r.RenewBefore != nil {
		cfg.RenewBefore = *r.RenewBefore
	}
	return cfg, nil
}

// OriginCertRequest is the body of PUT /v1/origin-certs/{zone}: a PEM
// certificate chain (leaf first) and its PEM private key.
type OriginCertRequest struct {
	CertPEM string `json:"cert_pem"`
	KeyPEM  string `json:"key_pem"`
}

// RegistryRequest stores the credentials of a private registry.
type RegistryRequest struct {
	Registry string `json:"registry"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// SnapshotRequest builds a custom snapshot named Name from an uploaded build
// context (its digest), FROM which user images can start.
type SnapshotRequest struct {
	Name    string   `json:"name"`
	Context string   `json:"context"`
	Regions []string `json:"regions,omitempty"`
}

// HealthAnswer is the seed-compatible answer of GET /v1/containers/{name}/health.
type HealthAnswer struct {
	Status    string    `json:"status"` // healthy | degraded | unhealthy
	Reason    string    `json:"reason"`
	CheckedAt time.Time `json:"checked_at"`
}

// LogOptions select container log lines.
type LogOptions struct {
	Since  time.Time
	Tail   int
	Follow bool
	// MaxBytes caps what one stream sends (a noisy container cannot flood a client).
	MaxBytes int64
}

// LogEntry is one line of an agent's own log.
type LogEntry struct {
	Time    time.Time      `json:"time"`
	Level   string         `json:"level"`
	Message string         `json:"msg"`
	Attrs   map[string]any `json:"attrs,omitempty"`
}

// ContextInfo describes a stored build context.
type ContextInfo struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// NodeStats are a node's resource figures for the UI.
type NodeStats struct {
	Node          string  `json:"node"`
	CPUPercent    float64 `json:"cpu_percent"`
	MemUsedBytes  uint64  `json:"mem_used_bytes"`
	MemTotalBytes uint64  `json:"mem_total_bytes"`
	Containers    int     `json:"containers"`
	Load1         float64 `json:"load1"`
	// ImageBytes is the disk the node's images take: the engine's image
	// layers and the exports it serves to its peers (node/imagepeer).
	ImageBytes uint64 `json:"image_bytes"`
}

// ServiceHealth is the answer of `dropmesh health NAME --json` and
// GET /v1/services/{name}/health.
type ServiceHealth struct {
	Service   string           `json:"service"`
	Instances []InstanceHealth `json:"instances"`
}

// InstanceHealth is one instance's health and history.
type InstanceHealth struct {
	Node      string            `json:"node"`
	Container string            `json:"container"`
	Status    string            `json:"status"` // healthy | degraded | unhealthy | starting
	Reason    string            `json:"reason"`
	Restarts  int               `json:"restarts"`
	History   []raftfsm.Segment `json:"history"`
}

// ServiceHealthOf builds the health answer of a service from the state.
func ServiceHealthOf(s *raftfsm.State, key, displayName string) (ServiceHealth, bool) {
	if _, ok := s.Services[key]; !ok {
		return ServiceHealth{}, false
	}
	out := ServiceHealth{Service: displayName, Instances: []InstanceHealth{}}
	for _, in := range s.ServiceInstances(key) {
		status := in.Health
		if status == "" {
			status = raftfsm.HealthStarting
		}
		out.Instances = append(out.Instances, InstanceHealth{Node: in.Node, Container: in.Container, Status: status,
			Reason: in.HealthReason, Restarts: in.Restarts, History: in.History.Segments()})
	}
	return out, true
}

// DeployProgress is a deploy and the phase of each of its instances, for the
// CLI's live progress lines and the UI.
type DeployProgress struct {
	Deploy    raftfsm.Deploy     `json:"deploy"`
	Instances []InstanceProgress `json:"instances"`
	// Done is set once the deploy succeeded or failed.
	Done bool `json:"done"`
}

// InstanceProgress is one instance's place in a roll-out.
type InstanceProgress struct {
	Instance   string `json:"instance"`
	Node       string `json:"node"`
	Desired    int64  `json:"desired_generation"`
	Generation int64  `json:"generation"`
	Phase      string `json:"phase"`
	Error      string `json:"error,omitempty"`
	Health     string `json:"health,omitempty"`
}

// DeployProgressOf builds the progress of deploy id from the state.
func DeployProgressOf(s *raftfsm.State, id string) (DeployProgress, bool) {
	d, ok := s.Deploys[id]
	if !ok {
		return DeployProgress{}, false
	}
	p := DeployProgress{Deploy: *d, Done: d.Status != raftfsm.DeployRolling, Instances: []InstanceProgress{}}
	for _, in := range s.ServiceInstances(d.Service) {
		p.Instances = append(p.Instances, InstanceProgress{Instance: in.ID, Node: in.Node, Desired: in.DesiredGeneration,
			Generation: in.Generation, Phase: in.Phase, Error: in.Error, Health: in.Health})
	}
	return p, true
}
