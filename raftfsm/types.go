package raftfsm

import (
	"time"
)

// State is the whole replicated state. Every agent holds a full replica. Maps
// are keyed by the entity's id (or name where the name is the id). Readers get
// it through FSM.View and must not keep or mutate it.
type State struct {
	Settings   Settings                       `json:"settings"`
	Users      map[string]*User               `json:"users"`
	Nodes      map[string]*Node               `json:"nodes"`
	Workspaces map[string]*Workspace          `json:"workspaces"`
	Services   map[string]*Service            `json:"services"`
	Instances  map[string]*Instance           `json:"instances"`
	Deploys    map[string]*Deploy             `json:"deploys"`
	Cloud      Cloud                          `json:"cloud"`
	Registries map[string]*RegistryCredential `json:"registries"`
	Contexts   map[string]*BuildContext       `json:"build_contexts"`
	Webhooks   map[string]*Webhook            `json:"webhooks"`
	Events     EventLog                       `json:"events"`
	// OriginCerts are the edge's TLS certificates, by DNS zone.
	OriginCerts map[string]*OriginCert `json:"origin_certs,omitempty"`
	// Gossip is the gossip keyring after a rotation (empty before).
	Gossip GossipKeyring `json:"gossip,omitzero"`
	// PKI is the cluster CA, its node certificates, revocations and join tokens.
	PKI ClusterPKI `json:"pki"`
	// Tokens are the API tokens by id (hashes only).
	Tokens map[string]*APIToken `json:"api_tokens,omitempty"`
	// Images are the images built once or pushed, by reference (images.go).
	Images map[string]*Image `json:"images,omitempty"`
	// ACME is automatic HTTPS: the CA config and account, issued
	// certificates and order intents.
	ACME ACME `json:"acme,omitzero"`
	// Index is the raft index of the last command applied to this state.
	Index uint64 `json:"index"`
}

// NewState returns an empty state with every map allocated.
func NewState() *State {
	return &State{
		Users:       map[string]*User{},
		Nodes:       map[string]*Node{},
		Workspaces:  map[string]*Workspace{},
		Services:    map[string]*Service{},
		Instances:   map[string]*Instance{},
		Deploys:     map[string]*Deploy{},
		Cloud:       newCloud(),
		Registries:  map[string]*RegistryCredential{},
		Contexts:    map[string]*BuildContext{},
		Webhooks:    map[string]*Webhook{},
		OriginCerts: map[string]*OriginCert{},
		PKI:         newClusterPKI(),
		Tokens:      map[string]*APIToken{},
		Images:      map[string]*Image{},
		ACME:        ACME{Certs: map[string]*IssuedCert{}, Orders: map[string]*ACMEOrder{}},
	}
}

func newCloud() Cloud {
	return Cloud{
		Droplets:  map[string]*Droplet{},
		Snapshots: map[string]*Snapshot{},
		DNS:       map[string]*DNSHost{},
		Intents:   map[string]*Intent{},
	}
}

// Settings are the cluster-wide settings, set at bootstrap and from the UI.
type Settings struct {
	Initialized bool      `json:"initialized"`
	ClusterID   string    `json:"cluster_id"`
	ClusterName string    `json:"cluster_name"`
	CreatedAt   time.Time `json:"created_at"`
	// LocalMode is set when the cluster runs against the embedded fake cloud.
	LocalMode bool `json:"local_mode,omitempty"`
	// DOBaseURL and CFBaseURL point the cloud clients somewhere other than the
	// real APIs (the fake cloud in local mode and tests).
	DOBaseURL string `json:"do_base_url,omitempty"`
	CFBaseURL string `json:"cf_base_url,omitempty"`
	// Domain is the Cloudflare zone the UI host lives in.
	Domain string `json:"domain,omitempty"`
	// UIHost is the public name of the web UI (mesh.<domain>), an A record on the leader.
	UIHost string `json:"ui_host,omitempty"`
	// Regions are the DigitalOcean regions the cluster uses; the first is the default.
	Regions      []string `json:"regions,omitempty"`
	DropletSize  string   `json:"droplet_size,omitempty"`
	BaseSnapshot string   `json:"base_snapshot,omitempty"`
	DOToken      Sealed   `json:"do_token,omitempty"`
	CFToken      Sealed   `json:"cf_token,omitempty"`
	// DesiredNodes is how many nodes the leader keeps the cluster at (0 = do not grow).
	DesiredNodes   int      `json:"desired_nodes,omitempty"`
	HealthInterval Duration `json:"health_interval,omitempty"`
	// DeadNodeGrace is how long a rebooted node may stay dead before its services
	// are rescheduled and its droplet replaced.
	DeadNodeGrace Duration       `json:"dead_node_grace,omitempty"`
	Backup        BackupSettings `json:"backup"`
	// NotifiedSeq is the last event sequence number handed to the webhooks; the
	// leader advances it before sending, so an event is sent at most once.
	NotifiedSeq uint64 `json:"notified_seq,omitempty"`
	// EgressAllow lists private ranges (CIDR prefixes) that webhooks and
	// other user-named targets may reach; by default every private,
	// loopback and link-local address is refused (node/egress).
	EgressAllow []string `json:"egress_allow,omitempty"`
}

// BackupSettings configure the leader's scheduled control-plane backups.
type BackupSettings struct {
	Enabled  bool     `json:"enabled"`
	Interval Duration `json:"interval,omitempty"`
	Keep     int      `json:"keep,omitempty"`
	// Dir is a directory on the leader (local mode); Spaces an S3-compatible bucket.
	Dir    string        `json:"dir,omitempty"`
	Spaces *SpacesTarget `json:"spaces,omitempty"`
}

// SpacesTarget is a DigitalOcean Spaces (S3-compatible) backup destination.
type SpacesTarget struct {
	Endpoint  string `json:"endpoint"`
	Region    string `json:"region"`
	Bucket    string `json:"bucket"`
	Prefix    string `json:"prefix,omitempty"`
	AccessKey string `json:"access_key"`
	SecretKey Sealed `json:"secret_key"`
}

// Role is what a UI user may do.
type Role string

// The roles, from most to least powerful.
const (
	RoleAdmin    Role = "admin"
	RoleDeployer Role = "deployer"
	RoleViewer   Role = "viewer"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleDeployer || r == RoleViewer }

// User is a UI user. The password is a bcrypt hash made by the leader.
type User struct {
	Name         string    `json:"name"`
	PasswordHash string    `json:"password_hash"`
	Role         Role      `json:"role"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// NodeStatus is the leader's verdict on a node.
type NodeStatus string

// Node statuses. Active nodes get placements; draining nodes are being emptied
// for removal; rebooting ones were power-cycled by the leader; dead ones did
// not come back in time and are being replaced.
const (
	NodeActive    NodeStatus = "active"
	NodeDraining  NodeStatus = "draining"
	NodeRebooting NodeStatus = "rebooting"
	NodeDead      NodeStatus = "dead"
)

// Valid reports whether s is a known node status.
func (s NodeStatus) Valid() bool {
	return s == NodeActive || s == NodeDraining || s == NodeRebooting || s == NodeDead
}

// Node is one droplet running an agent.
type Node struct {
	ID        string `json:"id"`
	DropletID int    `json:"droplet_id,omitempty"`
	Region    string `json:"region,omitempty"`
	PublicIP  string `json:"public_ip,omitempty"`
	PrivateIP string `json:"private_ip,omitempty"`
	API       string `json:"api,omitempty"`
	UI        string `json:"ui,omitempty"`
	Edge      string `json:"edge,omitempty"`
	Gossip    string `json:"gossip,omitempty"`
	Raft      string `json:"raft,omitempty"`
	Version   string `json:"version,omitempty"`

	Status       NodeStatus `json:"status"`
	StatusReason string     `json:"status_reason,omitempty"`
	StatusSince  time.Time  `json:"status_since"`
	JoinedAt     time.Time  `json:"joined_at"`

	// ConsecutiveFailedPings counts the leader's failed /ping probes in a row.
	ConsecutiveFailedPings int       `json:"consecutive_failed_pings"`
	LastSeen               time.Time `json:"last_seen"`
	Reboots                int       `json:"reboots,omitempty"`
	RebootedAt             time.Time `json:"rebooted_at,omitempty"`
}

// Workspace groups projects; its id is 6 hex digits and appears in container names.
type Workspace struct {
	ID        string              `json:"id"`
	Name      string              `json:"name"`
	CreatedAt time.Time           `json:"created_at"`
	Projects  map[string]*Project `json:"projects"`
}

// Project groups environments of one application.
type Project struct {
	Name      string                  `json:"name"`
	CreatedAt time.Time               `json:"created_at"`
	Envs      map[string]*Environment `json:"envs"`
}

// Environment (prod, staging, ...) groups services of a project.
type Environment struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Service is a deployed service: its current spec, generation and revisions.
type Service struct {
	Key         string `json:"key"`
	WorkspaceID string `json:"workspace_id"`
	Project     string `json:"project"`
	Env         string `json:"env"`
	Name        string `json:"name"`
	// Spec is the newest submitted spec (secrets sealed).
	Spec ServiceSpec `json:"spec"`
	// Generation counts submitted specs; LiveGeneration is the newest one that
	// rolled out successfully (what new or moved instances run; 0 = none yet).
	Generation     int64      `json:"generation"`
	LiveGeneration int64      `json:"live_generation"`
	Revisions      []Revision `json:"revisions"`
	LastDeploy     string     `json:"last_deploy,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	// Stranded is set when a stateful service's node is dead and its volume
	// cannot follow it elsewhere; an operator has to decide.
	Stranded string `json:"stranded,omitempty"`
}

// MaxRevisions is how many specs a service keeps (the live one and the ones a
// rollback may return to).
const MaxRevisions = 5

// Revision is one submitted spec of a service.
type Revision struct {
	Generation int64       `json:"generation"`
	Spec       ServiceSpec `json:"spec"`
	DeployID   string      `json:"deploy_id"`
	At         time.Time   `json:"at"`
}

// Revision returns the spec of generation gen, if the service still keeps it.
func (s *Service) Revision(gen int64) (ServiceSpec, bool) {
	for i := len(s.Revisions) - 1; i >= 0; i-- {
		if s.Revisions[i].Generation == gen {
			return s.Revisions[i].Spec, true
		}
	}
	return ServiceSpec{}, false
}

// Instance is one placed replica of a service: where it runs, what its agent
// observed, and its health.
type Instance struct {
	ID      string `json:"id"`
	Service string `json:"service"`
	Slot    int    `json:"slot"`
	Node    string `json:"node"`
	// DesiredGeneration is the generation the node should run (0 = nothing yet).
	DesiredGeneration int64 `json:"desired_generation"`
	// RestartNonce is bumped by the leader to ask the agent for a restart.
	RestartNonce int64     `json:"restart_nonce,omitempty"`
	CreatedAt    time.Time `json:"created_at"`

	// Observed, as reported by the node's agent. ImageDigest is the image
	// the instance runs (a cron instance: its runs): the registry's manifest
	// digest ("sha256:...", as in repo@sha256:...) when the image came from
	// a registry, else the local image id (built on the node, or node-local
	// such as local/base).
	Generation  int64     `json:"generation"`
	ContainerID string    `json:"container_id,omitempty"`
	Container   string    `json:"container,omitempty"`
	ImageDigest string    `json:"image_digest,omitempty"`
	Address     string    `json:"address,omitempty"`
	State       string    `json:"state,omitempty"`
	Phase       string    `json:"phase,omitempty"`
	Error       string    `json:"error,omitempty"`
	ObservedAt  time.Time `json:"observed_at,omitempty"`
	// FailedGeneration is the newest generation this node could not bring up.
	FailedGeneration int64 `json:"failed_generation,omitempty"`
	RestartNonceSeen int64 `json:"restart_nonce_seen,omitempty"`

	// Health, as checked by the node's agent.
	Health               string    `json:"health,omitempty"`
	HealthReason         string    `json:"health_reason,omitempty"`
	CheckedAt            time.Time `json:"checked_at,omitempty"`
	ConsecutiveUnhealthy int       `json:"consecutive_unhealthy"`
	History              History   `json:"history,omitempty"`

	// Healing by the leader.
	Restarts      int       `json:"restarts"`
	RestartStreak int       `json:"restart_streak,omitempty"`
	LastRestartAt time.Time `json:"last_restart_at,omitempty"`
	NextRestartAt time.Time `json:"next_restart_at,omitempty"`
	CrashLooping  bool      `json:"crash_looping,omitempty"`

	// Scheduled tasks.
	LastRunAt       time.Time `json:"last_run_at,omitempty"`
	LastRunExit     int       `json:"last_run_exit,omitempty"`
	LastRunDuration Duration  `json:"last_run_duration,omitempty"`
	Runs            int       `json:"runs,omitempty"`
}

// Instance phases, as agents report them. PhaseChecking is followed by the
// count, as in "health 1/3".
const (
	PhasePending   = "pending"
	PhasePulling   = "pulling"
	PhaseBuilding  = "building"
	PhaseStarting  = "starting"
	PhaseChecking  = "health"
	PhaseRouting   = "routing"
	PhaseReady     = "ready"
	PhaseScheduled = "scheduled"
	PhaseRunning   = "running"
	PhaseFailed    = "failed"
	PhaseStopped   = "stopped"
)

// InstanceID is the id of slot slot of service key.
func InstanceID(serviceKey string, slot int) string {
	return serviceKey + "#" + itoa(slot)
}

// Health statuses, shared by the checks, the state and the API.
const (
	HealthHealthy   = "healthy"
	HealthDegraded  = "degraded"
	HealthUnhealthy = "unhealthy"
	HealthStarting  = "starting"
)

// ValidHealth reports whether s is a known health status.
func ValidHealth(s string) bool {
	return s == HealthHealthy || s == HealthDegraded || s == HealthUnhealthy || s == HealthStarting
}

// Segment is a run of identical health results: Count checks from From to To.
// It is how the API and the UI see a History.
type Segment struct {
	Status string    `json:"status"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Count  int       `json:"count"`
}

// HistoryRetention is how long health segments are kept before the leader purges them.
const HistoryRetention = 7 * 24 * time.Hour

// Deploy statuses.
const (
	DeployRolling   = "rolling"
	DeploySucceeded = "succeeded"
	DeployFailed    = "failed"
)

// Deploy is one roll-out of a generation of a service.
type Deploy struct {
	ID             string    `json:"id"`
	Service        string    `json:"service"`
	Generation     int64     `json:"generation"`
	PrevGeneration int64     `json:"prev_generation"`
	MaxParallel    int       `json:"max_parallel"`
	Status         string    `json:"status"`
	Reason         string    `json:"reason,omitempty"`
	Actor          string    `json:"actor,omitempty"`
	StartedAt      time.Time `json:"started_at"`
	FinishedAt     time.Time `json:"finished_at,omitempty"`
}

// MaxDeploys bounds the deploy records kept; the oldest finished ones go first.
const MaxDeploys = 500

// Cloud is what the leader knows of the cluster's cloud resources, and the
// intents it recorded before calling the provider.
type Cloud struct {
	VPC       *VPC                 `json:"vpc,omitempty"`
	Firewall  *Firewall            `json:"firewall,omitempty"`
	Droplets  map[string]*Droplet  `json:"droplets"`
	Snapshots map[string]*Snapshot `json:"snapshots"`
	DNS       map[string]*DNSHost  `json:"dns"`
	Intents   map[string]*Intent   `json:"intents"`
	// NextNodeSeq numbers the nodes the leader creates (node-1, node-2, ...).
	NextNodeSeq int `json:"next_node_seq"`
}

// VPC is the cluster's private network.
type VPC struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Region  string `json:"region"`
	IPRange string `json:"ip_range"`
}

// Firewall is the cluster's cloud firewall (by tag).
type Firewall struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Droplet states as the leader tracks them.
const (
	DropletCreating = "creating"
	DropletActive   = "active"
	DropletDeleting = "deleting"
)

// Droplet is a droplet the leader created (or adopted) for a node.
type Droplet struct {
	Name      string    `json:"name"`
	NodeID    string    `json:"node_id"`
	ID        int       `json:"id,omitempty"`
	Region    string    `json:"region"`
	Size      string    `json:"size,omitempty"`
	Snapshot  string    `json:"snapshot,omitempty"`
	Status    string    `json:"status"`
	PublicIP  string    `json:"public_ip,omitempty"`
	PrivateIP string    `json:"private_ip,omitempty"`
	Replaces  string    `json:"replaces,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Snapshot kinds and statuses.
const (
	SnapshotBase     = "base"
	SnapshotCustom   = "custom"
	SnapshotBuilding = "building"
	SnapshotReady    = "ready"
	SnapshotFailed   = "failed"
)

// Snapshot is a DigitalOcean droplet snapshot the cluster uses or builds.
type Snapshot struct {
	Name        string    `json:"name"`
	ID          int       `json:"id,omitempty"`
	Kind        string    `json:"kind"`
	Status      string    `json:"status"`
	Phase       string    `json:"phase,omitempty"`
	Progress    int       `json:"progress,omitempty"`
	Regions     []string  `json:"regions,omitempty"`
	WantRegions []string  `json:"want_regions,omitempty"`
	SourceNode  string    `json:"source_node,omitempty"`
	Error       string    `json:"error,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// DNSHost is the set of A records the leader keeps for one host name.
type DNSHost struct {
	Host      string    `json:"host"`
	ZoneID    string    `json:"zone_id,omitempty"`
	IPs       []string  `json:"ips"`
	Proxied   bool      `json:"proxied"`
	RecordIDs []string  `json:"record_ids,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// IntentKind names a cloud operation the leader is about to make.
type IntentKind string

// The cloud operations that go through intents.
const (
	IntentCreateDroplet    IntentKind = "create_droplet"
	IntentDeleteDroplet    IntentKind = "delete_droplet"
	IntentPowerCycle       IntentKind = "power_cycle"
	IntentEnsureDNS        IntentKind = "ensure_dns"
	IntentDeleteDNS        IntentKind = "delete_dns"
	IntentEnsureVPC        IntentKind = "ensure_vpc"
	IntentEnsureFirewall   IntentKind = "ensure_firewall"
	IntentCreateSnapshot   IntentKind = "create_snapshot"
	IntentTransferSnapshot IntentKind = "transfer_snapshot"
)

// Intent statuses.
const (
	IntentPending = "pending"
	IntentDone    = "done"
	IntentFailed  = "failed"
)

// Intent records a cloud operation before it is made, so a new leader finishes
// it instead of repeating it.
type Intent struct {
	ID         string            `json:"id"`
	Kind       IntentKind        `json:"kind"`
	Target     string            `json:"target"`
	Params     map[string]string `json:"params,omitempty"`
	Status     string            `json:"status"`
	Error      string            `json:"error,omitempty"`
	Attempts   int               `json:"attempts"`
	CreatedAt  time.Time         `json:"created_at"`
	FinishedAt time.Time         `json:"finished_at,omitempty"`
}

// MaxFinishedIntents bounds the finished intents kept for the record.
const MaxFinishedIntents = 200

// RegistryCredential lets agents pull from a private registry.
type RegistryCredential struct {
	Registry string `json:"registry"`
	Username string `json:"username"`
	Password Sealed `json:"password"`
}

// BuildContext is an uploaded build context, stored by digest on the nodes
// that hold it.
type BuildContext struct {
	Digest     string    `json:"digest"`
	Size       int64     `json:"size"`
	Holders    []string  `json:"holders"`
	UploadedAt time.Time `json:"uploaded_at"`
}

// Webhook formats.
const (
	WebhookGeneric = "generic"
	WebhookSlack   = "slack"
	WebhookDiscord = "discord"
)

// Webhook is a notification target for events.
type Webhook struct {
	ID string `json:"id"`
	// URL is the plain URL: only in webhooks put by older releases (and on
	// its way in, before the node seals it). See WebhookURL.
	URL string `json:"url,omitempty"`
	// SealedURL is the URL sealed with WebhookLabel(ID).
	SealedURL Sealed `json:"sealed_url,omitempty"`
	// Short is the URL shortened (ShortURL), what lists show.
	Short  string `json:"short,omitempty"`
	Format string `json:"format"`
	// Kinds filters events by kind prefix ("deploy.", "heal."); empty = the default set.
	Kinds     []string  `json:"kinds,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}
