package raftfsm

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// CommandType identifies a command in the log. Append only: never renumber or
// reuse a value, a log written by an older version must still replay.
type CommandType uint8

// The command types. The comment on each payload type says what it does.
const (
	CmdInvalid CommandType = iota
	CmdInitCluster
	CmdUpdateSettings
	CmdPutUser
	CmdDeleteUser
	CmdUpsertNode
	CmdSetNodeStatus
	CmdRecordPings
	CmdRemoveNode
	CmdCreateWorkspace
	CmdDeleteWorkspace
	CmdCreateProject
	CmdCreateEnvironment
	CmdDeployService
	CmdUndeployService
	CmdAdvanceRollout
	CmdReportInstances
	CmdFinishDeploy
	CmdReportHealth
	CmdRestartInstance
	CmdRecordCronRun
	CmdMoveInstance
	CmdPurgeHistory
	CmdRecordIntent
	CmdResolveIntent
	CmdAppendEvent
	CmdPutWebhook
	CmdDeleteWebhook
	CmdAdvanceNotified
	CmdPutRegistry
	CmdDeleteRegistry
	CmdPutBuildContext
	CmdImportState
	CmdPutSnapshot
	CmdSetStranded
	CmdPutOriginCert
	CmdDeleteOriginCert
	CmdSetGossipKeys
	CmdSetClusterCA
	CmdRecordNodeCert
	CmdRevokeCerts
	CmdCreateJoinToken
	CmdUseJoinToken
	CmdDeleteJoinToken
	CmdDeadlined
	CmdCreateAPIToken
	CmdRevokeAPIToken
	CmdRecordTokenUse
	CmdPutSealedWebhook
	CmdSetEgressAllow
	CmdPutImage
	CmdSetACMEConfig
	CmdSetACMEAccount
	CmdRecordACMEOrder
	CmdPlaceACMEOrder
	CmdResolveACMEOrder
	CmdDeleteIssuedCert

	// cmdEnd is one past the last command type; keep it last.
	cmdEnd
)

// MaxCommandType is the newest command type this version understands. Agents
// advertise it in their gossip metadata; the leader only emits a type every
// voter knows.
const MaxCommandType = cmdEnd - 1

var commandNames = [...]string{
	CmdInvalid: "invalid", CmdInitCluster: "init_cluster", CmdUpdateSettings: "update_settings",
	CmdPutUser: "put_user", CmdDeleteUser: "delete_user", CmdUpsertNode: "upsert_node",
	CmdSetNodeStatus: "set_node_status", CmdRecordPings: "record_pings", CmdRemoveNode: "remove_node",
	CmdCreateWorkspace: "create_workspace", CmdDeleteWorkspace: "delete_workspace",
	CmdCreateProject: "create_project", CmdCreateEnvironment: "create_environment",
	CmdDeployService: "deploy_service", CmdUndeployService: "undeploy_service",
	CmdAdvanceRollout: "advance_rollout", CmdReportInstances: "report_instances",
	CmdFinishDeploy: "finish_deploy", CmdReportHealth: "report_health",
	CmdRestartInstance: "restart_instance", CmdRecordCronRun: "record_cron_run",
	CmdMoveInstance: "move_instance", CmdPurgeHistory: "purge_history",
	CmdRecordIntent: "record_intent", CmdResolveIntent: "resolve_intent",
	CmdAppendEvent: "append_event", CmdPutWebhook: "put_webhook", CmdDeleteWebhook: "delete_webhook",
	CmdAdvanceNotified: "advance_notified", CmdPutRegistry: "put_registry",
	CmdDeleteRegistry: "delete_registry", CmdPutBuildContext: "put_build_context",
	CmdImportState: "import_state", CmdPutSnapshot: "put_snapshot", CmdSetStranded: "set_stranded",
	CmdPutOriginCert: "put_origin_cert", CmdDeleteOriginCert: "delete_origin_cert",
	CmdSetGossipKeys: "set_gossip_keys", CmdSetClusterCA: "set_cluster_ca", CmdRecordNodeCert: "record_node_cert",
	CmdRevokeCerts: "revoke_certs", CmdCreateJoinToken: "create_join_token", CmdUseJoinToken: "use_join_token",
	CmdDeleteJoinToken: "delete_join_token", CmdDeadlined: "deadlined", CmdCreateAPIToken: "create_api_token",
	CmdRevokeAPIToken: "revoke_api_token", CmdRecordTokenUse: "record_token_use",
	CmdPutSealedWebhook: "put_sealed_webhook",
	CmdSetEgressAllow:   "set_egress_allow",
	CmdPutImage:         "put_image",
	CmdSetACMEConfig:    "set_acme_config", CmdSetACMEAccount: "set_acme_account",
	CmdRecordACMEOrder: "record_acme_order", CmdPlaceACMEOrder: "place_acme_order",
	CmdResolveACMEOrder: "resolve_acme_order", CmdDeleteIssuedCert: "delete_issued_cert",
}

// String names the command type for logs and errors.
func (t CommandType) String() string {
	if int(t) < len(commandNames) && commandNames[t] != "" {
		return commandNames[t]
	}
	return fmt.Sprintf("command(%d)", uint8(t))
}

// Command is a typed payload that changes the state.
type Command interface {
	Type() CommandType
}

// envelopeVersion is the first byte of every encoded command.
const envelopeVersion = 1

// Errors that callers branch on.
var (
	// ErrUnknownCommand is a type byte this version does not know.
	ErrUnknownCommand = errors.New("unknown command type")
	// ErrBadEnvelope is an entry too short or of an unknown envelope version.
	ErrBadEnvelope = errors.New("bad command envelope")
	// ErrNotFound names a missing entity.
	ErrNotFound = errors.New("not found")
	// ErrConflict is a command that contradicts the state (a duplicate name, a
	// stale generation, a node that still has instances).
	ErrConflict = errors.New("conflict")
)

// Encode turns a command into a log entry: version byte, type byte, JSON
// payload; a command that sets a field tagged with a newer protocol gets
// envelope 2, which also carries the protocols it needs (see protocol.go).
func Encode(c Command) ([]byte, error) {
	var buf bytes.Buffer
	if need, full, tagged := protocols(c); tagged {
		buf.WriteByte(envelopeTagged)
		buf.WriteByte(byte(c.Type()))
		buf.Write(taggedHeader(need, full))
	} else {
		buf.WriteByte(envelopeVersion)
		buf.WriteByte(byte(c.Type()))
	}
	if err := json.NewEncoder(&buf).Encode(c); err != nil {
		return nil, fmt.Errorf("encode %s: %w", c.Type(), err)
	}
	return buf.Bytes(), nil
}

// Decode parses a log entry into its command at this release's Protocol.
// It never panics; unknown types, unknown fields (unless the entry says
// they may be ignored) and malformed payloads are errors.
func Decode(entry []byte) (Command, error) { return DecodeAt(entry, Protocol) }

// DecodeAt is Decode as the release at protocol proto decodes: it does not
// know the command types and tagged fields added after proto, so an entry
// that needs them is refused, and fields the entry marks ignorable are
// dropped. Tests use it to play an older replica during a rolling upgrade.
func DecodeAt(entry []byte, proto int) (Command, error) {
	return decodeEntry(entry, proto, func(t CommandType) (func() Command, bool) {
		h, ok := handlerFor(t)
		return h.new, ok
	})
}

// decodeEntry is DecodeAt with the command types' constructors from
// lookup (the handler table; a test's own command types).
func decodeEntry(entry []byte, proto int, lookup func(CommandType) (func() Command, bool)) (Command, error) {
	if len(entry) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadEnvelope, len(entry))
	}
	t := CommandType(entry[1])
	payload, lenient := entry[2:], false
	switch {
	case entry[0] == envelopeVersion:
	case entry[0] == envelopeTagged && proto >= ProtocolFieldTags:
		if len(entry) < 6 {
			return nil, fmt.Errorf("%w: %d bytes", ErrBadEnvelope, len(entry))
		}
		need, full := int(binary.BigEndian.Uint16(entry[2:4])), int(binary.BigEndian.Uint16(entry[4:6]))
		if need > proto {
			return nil, fmt.Errorf("%w: %s needs protocol %d, this agent has %d", ErrProtocol, t, need, proto)
		}
		payload, lenient = entry[6:], full > proto
	default:
		return nil, fmt.Errorf("%w: version %d", ErrBadEnvelope, entry[0])
	}
	newCmd, ok := lookup(t)
	if !ok || commandSince(t) > proto {
		return nil, fmt.Errorf("%w: %d", ErrUnknownCommand, entry[1])
	}
	c := newCmd()
	dec := json.NewDecoder(bytes.NewReader(payload))
	if !lenient {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("decode %s: %w", t, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("decode %s: trailing data", t)
	}
	if err := forgetNewer(c, proto, lenient); err != nil {
		return nil, fmt.Errorf("decode %s: %w", t, err)
	}
	return c, nil
}

// InitCluster sets the cluster up once: its id and name, the admin user and the
// default workspace.
type InitCluster struct {
	At                 time.Time `json:"at"`
	ClusterID          string    `json:"cluster_id"`
	ClusterName        string    `json:"cluster_name"`
	LocalMode          bool      `json:"local_mode,omitempty"`
	AdminName          string    `json:"admin_name"`
	AdminPasswordHash  string    `json:"admin_password_hash"`
	DefaultWorkspaceID string    `json:"default_workspace_id"`
	Settings           *Settings `json:"settings,omitempty"`
}

// UpdateSettings changes the cluster settings; nil fields are left alone.
type UpdateSettings struct {
	At             time.Time       `json:"at"`
	Domain         *string         `json:"domain,omitempty"`
	UIHost         *string         `json:"ui_host,omitempty"`
	Regions        []string        `json:"regions,omitempty"`
	DropletSize    *string         `json:"droplet_size,omitempty"`
	BaseSnapshot   *string         `json:"base_snapshot,omitempty"`
	DOToken        *Sealed         `json:"do_token,omitempty"`
	CFToken        *Sealed         `json:"cf_token,omitempty"`
	DOBaseURL      *string         `json:"do_base_url,omitempty"`
	CFBaseURL      *string         `json:"cf_base_url,omitempty"`
	DesiredNodes   *int            `json:"desired_nodes,omitempty"`
	HealthInterval *Duration       `json:"health_interval,omitempty"`
	DeadNodeGrace  *Duration       `json:"dead_node_grace,omitempty"`
	Backup         *BackupSettings `json:"backup,omitempty"`
}

// SetEgressAllow replaces Settings.EgressAllow: the private ranges (CIDR
// prefixes) webhooks may reach. Its own command, not an UpdateSettings
// field, so that the protocol check keeps it from agents that predate it.
type SetEgressAllow struct {
	At     time.Time `json:"at"`
	Ranges []string  `json:"ranges"`
}

// PutUser creates or updates a UI user.
type PutUser struct {
	At           time.Time `json:"at"`
	Name         string    `json:"name"`
	PasswordHash string    `json:"password_hash,omitempty"`
	Role         Role      `json:"role"`
}

// DeleteUser removes a UI user; the last admin cannot be removed.
type DeleteUser struct {
	At   time.Time `json:"at"`
	Name string    `json:"name"`
}

// UpsertNode records a node (from its gossip metadata) or updates its addresses.
type UpsertNode struct {
	At   time.Time `json:"at"`
	Node Node      `json:"node"`
}

// SetNodeStatus changes the leader's verdict on a node.
type SetNodeStatus struct {
	At     time.Time  `json:"at"`
	Node   string     `json:"node"`
	Status NodeStatus `json:"status"`
	Reason string     `json:"reason,omitempty"`
	// Reboot marks the status change as the leader's power-cycle of the droplet.
	Reboot bool `json:"reboot,omitempty"`
}

// PingResult is one node's answer to the leader's ping.
type PingResult struct {
	Node string `json:"node"`
	OK   bool   `json:"ok"`
}

// RecordPings counts the leader's pings: a failure adds one to the node's
// consecutive failures, a success resets them.
type RecordPings struct {
	At      time.Time    `json:"at"`
	Results []PingResult `json:"results"`
}

// RemoveNode forgets a node. It must have no instances left (drain first).
type RemoveNode struct {
	At     time.Time `json:"at"`
	Node   string    `json:"node"`
	Reason string    `json:"reason,omitempty"`
}

// CreateWorkspace creates a workspace; the leader picks the id.
type CreateWorkspace struct {
	At   time.Time `json:"at"`
	ID   string    `json:"id"`
	Name string    `json:"name"`
}

// DeleteWorkspace removes an empty workspace.
type DeleteWorkspace struct {
	At time.Time `json:"at"`
	ID string    `json:"id"`
}

// CreateProject creates a project in a workspace.
type CreateProject struct {
	At          time.Time `json:"at"`
	WorkspaceID string    `json:"workspace_id"`
	Name        string    `json:"name"`
}

// CreateEnvironment creates an environment in a project.
type CreateEnvironment struct {
	At          time.Time `json:"at"`
	WorkspaceID string    `json:"workspace_id"`
	Project     string    `json:"project"`
	Name        string    `json:"name"`
}

// Assignment places one slot of a service on a node.
type Assignment struct {
	Slot int    `json:"slot"`
	Node string `json:"node"`
}

// DeployService submits a new generation of a service (creating it, and its
// workspace, project and environment, when needed) with its placement, and
// starts a roll-out.
type DeployService struct {
	At       time.Time `json:"at"`
	DeployID string    `json:"deploy_id"`
	Actor    string    `json:"actor,omitempty"`
	// WorkspaceID is the resolved workspace; WorkspaceName is set when the
	// leader creates it with this deploy.
	WorkspaceID   string       `json:"workspace_id"`
	WorkspaceName string       `json:"workspace_name,omitempty"`
	Spec          ServiceSpec  `json:"spec"`
	Placement     []Assignment `json:"placement"`
	// ExpectGeneration guards against lost updates: when non-zero, the
	// service's current generation must equal it.
	ExpectGeneration int64 `json:"expect_generation,omitempty"`
}

// UndeployService removes a service; agents remove its containers and the
// leader its DNS records.
type UndeployService struct {
	At       time.Time `json:"at"`
	Service  string    `json:"service"`
	DeployID string    `json:"deploy_id,omitempty"`
	Actor    string    `json:"actor,omitempty"`
}

// AdvanceRollout moves a batch of instances to a generation (the leader's
// roll-out controller, or a rollback to the live generation).
type AdvanceRollout struct {
	At         time.Time `json:"at"`
	DeployID   string    `json:"deploy_id,omitempty"`
	Service    string    `json:"service"`
	Generation int64     `json:"generation"`
	Instances  []string  `json:"instances"`
}

// InstanceReport is what an agent observed of one instance; each field fills
// the Instance field of the same name (ImageDigest: see there).
type InstanceReport struct {
	Instance         string `json:"instance"`
	Generation       int64  `json:"generation"`
	ContainerID      string `json:"container_id,omitempty"`
	Container        string `json:"container,omitempty"`
	ImageDigest      string `json:"image_digest,omitempty"`
	Address          string `json:"address,omitempty"`
	State            string `json:"state"`
	Phase            string `json:"phase,omitempty"`
	Error            string `json:"error,omitempty"`
	FailedGeneration int64  `json:"failed_generation,omitempty"`
	RestartNonceSeen int64  `json:"restart_nonce_seen,omitempty"`
}

// ReportInstances records what a node's agent observed. Reports for instances
// no longer placed on that node are ignored (they are stale, not errors).
type ReportInstances struct {
	At      time.Time        `json:"at"`
	Node    string           `json:"node"`
	Reports []InstanceReport `json:"reports"`
}

// FinishDeploy ends a roll-out: succeeded makes its generation live; failed
// records the reason and, in the same step, sends every instance that was
// moved to the failed generation back to the live one.
type FinishDeploy struct {
	At       time.Time `json:"at"`
	DeployID string    `json:"deploy_id"`
	Status   string    `json:"status"`
	Reason   string    `json:"reason,omitempty"`
}

// HealthReport is one check result of one instance.
type HealthReport struct {
	Instance  string    `json:"instance"`
	Status    string    `json:"status"`
	Reason    string    `json:"reason,omitempty"`
	CheckedAt time.Time `json:"checked_at"`
}

// ReportHealth records check results from a node's agent: status, the count of
// consecutive unhealthy results, and the run-length history.
type ReportHealth struct {
	At      time.Time      `json:"at"`
	Node    string         `json:"node"`
	Results []HealthReport `json:"results"`
}

// RestartInstance asks the instance's agent to restart its container and
// starts the back-off before the next restart.
type RestartInstance struct {
	At       time.Time `json:"at"`
	Instance string    `json:"instance"`
	Reason   string    `json:"reason"`
}

// RecordCronRun records one run of a scheduled task.
type RecordCronRun struct {
	At         time.Time `json:"at"`
	Node       string    `json:"node"`
	Instance   string    `json:"instance"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	ExitCode   int       `json:"exit_code"`
}

// MoveInstance reschedules an instance onto another node (healing, draining).
type MoveInstance struct {
	At       time.Time `json:"at"`
	Instance string    `json:"instance"`
	Node     string    `json:"node"`
	Reason   string    `json:"reason"`
}

// PurgeHistory drops health segments that ended before Before.
type PurgeHistory struct {
	At     time.Time `json:"at"`
	Before time.Time `json:"before"`
}

// RecordIntent records a cloud operation before the leader makes it.
type RecordIntent struct {
	At     time.Time `json:"at"`
	Intent Intent    `json:"intent"`
}

// CloudChanges are the resources a cloud operation created, changed or removed.
type CloudChanges struct {
	VPC            *VPC      `json:"vpc,omitempty"`
	Firewall       *Firewall `json:"firewall,omitempty"`
	Droplet        *Droplet  `json:"droplet,omitempty"`
	DeleteDroplet  string    `json:"delete_droplet,omitempty"`
	Snapshot       *Snapshot `json:"snapshot,omitempty"`
	DNS            *DNSHost  `json:"dns,omitempty"`
	DeleteDNS      string    `json:"delete_dns,omitempty"`
	NextNodeSeq    int       `json:"next_node_seq,omitempty"`
	DeleteSnapshot string    `json:"delete_snapshot,omitempty"`
}

// ResolveIntent records the outcome of a cloud operation and what it changed.
// An empty IntentID records changes that had no intent (adoption at start-up).
type ResolveIntent struct {
	At       time.Time    `json:"at"`
	IntentID string       `json:"intent_id,omitempty"`
	Status   string       `json:"status,omitempty"`
	Error    string       `json:"error,omitempty"`
	Changes  CloudChanges `json:"changes"`
	// Retry keeps the intent pending (a transient failure), counting the attempt.
	Retry bool `json:"retry,omitempty"`
}

// AppendEvent adds an event that no other command records.
type AppendEvent struct {
	At    time.Time `json:"at"`
	Event Event     `json:"event"`
}

// PutWebhook adds or replaces a notification target.
type PutWebhook struct {
	At      time.Time `json:"at"`
	Webhook Webhook   `json:"webhook"`
}

// PutSealedWebhook adds or replaces a notification target whose URL is
// sealed (Webhook.SealedURL, with its shortened form in Webhook.Short):
// a webhook URL is a bearer secret. PutWebhook (plain URL) stays for the
// log entries of older releases.
type PutSealedWebhook struct {
	At      time.Time `json:"at"`
	Webhook Webhook   `json:"webhook"`
}

// DeleteWebhook removes a notification target.
type DeleteWebhook struct {
	At time.Time `json:"at"`
	ID string    `json:"id"`
}

// AdvanceNotified moves the webhook cursor; the leader commits it before it
// sends, so each event is sent at most once.
type AdvanceNotified struct {
	At  time.Time `json:"at"`
	Seq uint64    `json:"seq"`
}

// PutRegistry stores credentials for a private registry.
type PutRegistry struct {
	At         time.Time          `json:"at"`
	Credential RegistryCredential `json:"credential"`
}

// DeleteRegistry removes registry credentials.
type DeleteRegistry struct {
	At       time.Time `json:"at"`
	Registry string    `json:"registry"`
}

// PutBuildContext records that a node holds an uploaded build context.
type PutBuildContext struct {
	At      time.Time `json:"at"`
	Digest  string    `json:"digest"`
	Size    int64     `json:"size"`
	Node    string    `json:"node"`
	Dropped bool      `json:"dropped,omitempty"`
}

// ImportState replaces the deployments (workspaces, services, users,
// registries, webhooks) with those of an exported document. Nodes, cloud
// resources and settings of this cluster stay. Instances are placed again by
// the leader and given in Placements.
type ImportState struct {
	At         time.Time               `json:"at"`
	Document   ExportDocument          `json:"document"`
	Placements map[string][]Assignment `json:"placements"`
	DeployIDs  map[string]string       `json:"deploy_ids"`
}

// PutSnapshot records a snapshot's build progress or its result.
type PutSnapshot struct {
	At       time.Time `json:"at"`
	Snapshot Snapshot  `json:"snapshot"`
}

// SetStranded flags (or clears) a stateful service whose node died with its volume.
type SetStranded struct {
	At      time.Time `json:"at"`
	Service string    `json:"service"`
	Reason  string    `json:"reason"`
}

// PutOriginCert adds or replaces the origin certificate of a DNS zone; every
// agent's edge then serves the zone's hosts over TLS with it.
type PutOriginCert struct {
	At   time.Time  `json:"at"`
	Cert OriginCert `json:"cert"`
}

// SetGossipKeys replaces the cluster's gossip keyring (a rotation's steps;
// the leader makes the key and seals it).
type SetGossipKeys struct {
	At      time.Time     `json:"at"`
	Keyring GossipKeyring `json:"keyring"`
}

// DeleteOriginCert removes a zone's origin certificate.
type DeleteOriginCert struct {
	At   time.Time `json:"at"`
	Zone string    `json:"zone"`
}

// SetClusterCA installs the cluster CA. It is set once, at bootstrap: a
// second CA is refused (rotating the CA is not supported).
type SetClusterCA struct {
	At        time.Time `json:"at"`
	CACertPEM string    `json:"ca_cert_pem"`
	CAKey     Sealed    `json:"ca_key"`
}

// RecordNodeCert records a node certificate the leader has signed.
type RecordNodeCert struct {
	At   time.Time `json:"at"`
	Cert NodeCert  `json:"cert"`
}

// RevokeCerts revokes every unexpired certificate of Node (when set) and
// the certificates in Serials. The result is how many it revoked.
type RevokeCerts struct {
	At      time.Time `json:"at"`
	Node    string    `json:"node,omitempty"`
	Serials []string  `json:"serials,omitempty"`
	Reason  string    `json:"reason,omitempty"`
}

// CreateJoinToken stores a new join token's hash.
type CreateJoinToken struct {
	At    time.Time `json:"at"`
	Token JoinToken `json:"token"`
}

// UseJoinToken spends a join token for node UsedBy: it is refused, and
// nothing changes, when the token is unknown (ErrJoinTokenUnknown), used
// (ErrJoinTokenUsed), expired at At (ErrJoinTokenExpired) or for another
// node (ErrJoinTokenWrongNode). Two nodes racing with one token: raft
// orders the commands, the second is refused.
type UseJoinToken struct {
	At     time.Time `json:"at"`
	Hash   string    `json:"hash"`
	UsedBy string    `json:"used_by"`
}

// DeleteJoinToken withdraws a join token before it is used.
type DeleteJoinToken struct {
	At   time.Time `json:"at"`
	Hash string    `json:"hash"`
}

// Type implementations, one line each so the table stays readable.

func (*InitCluster) Type() CommandType       { return CmdInitCluster }
func (*UpdateSettings) Type() CommandType    { return CmdUpdateSettings }
func (*PutUser) Type() CommandType           { return CmdPutUser }
func (*DeleteUser) Type() CommandType        { return CmdDeleteUser }
func (*UpsertNode) Type() CommandType        { return CmdUpsertNode }
func (*SetNodeStatus) Type() CommandType     { return CmdSetNodeStatus }
func (*RecordPings) Type() CommandType       { return CmdRecordPings }
func (*RemoveNode) Type() CommandType        { return CmdRemoveNode }
func (*CreateWorkspace) Type() CommandType   { return CmdCreateWorkspace }
func (*DeleteWorkspace) Type() CommandType   { return CmdDeleteWorkspace }
func (*CreateProject) Type() CommandType     { return CmdCreateProject }
func (*CreateEnvironment) Type() CommandType { return CmdCreateEnvironment }
func (*DeployService) Type() CommandType     { return CmdDeployService }
func (*UndeployService) Type() CommandType   { return CmdUndeployService }
func (*AdvanceRollout) Type() CommandType    { return CmdAdvanceRollout }
func (*ReportInstances) Type() CommandType   { return CmdReportInstances }
func (*FinishDeploy) Type() CommandType      { return CmdFinishDeploy }
func (*ReportHealth) Type() CommandType      { return CmdReportHealth }
func (*RestartInstance) Type() CommandType   { return CmdRestartInstance }
func (*RecordCronRun) Type() CommandType     { return CmdRecordCronRun }
func (*MoveInstance) Type() CommandType      { return CmdMoveInstance }
func (*PurgeHistory) Type() CommandType      { return CmdPurgeHistory }
func (*RecordIntent) Type() CommandType      { return CmdRecordIntent }
func (*ResolveIntent) Type() CommandType     { return CmdResolveIntent }
func (*AppendEvent) Type() CommandType       { return CmdAppendEvent }
func (*PutWebhook) Type() CommandType        { return CmdPutWebhook }
func (*DeleteWebhook) Type() CommandType     { return CmdDeleteWebhook }
func (*PutSealedWebhook) Type() CommandType  { return CmdPutSealedWebhook }
func (*AdvanceNotified) Type() CommandType   { return CmdAdvanceNotified }
func (*PutRegistry) Type() CommandType       { return CmdPutRegistry }
func (*DeleteRegistry) Type() CommandType    { return CmdDeleteRegistry }
func (*PutBuildContext) Type() CommandType   { return CmdPutBuildContext }
func (*SetEgressAllow) Type() CommandType    { return CmdSetEgressAllow }
func (*ImportState) Type() CommandType       { return CmdImportState }
func (*PutSnapshot) Type() CommandType       { return CmdPutSnapshot }
func (*SetStranded) Type() CommandType       { return CmdSetStranded }
func (*PutOriginCert) Type() CommandType     { return CmdPutOriginCert }
func (*DeleteOriginCert) Type() CommandType  { return CmdDeleteOriginCert }
func (*SetGossipKeys) Type() CommandType     { return CmdSetGossipKeys }
func (*SetClusterCA) Type() CommandType      { return CmdSetClusterCA }
func (*RecordNodeCert) Type() CommandType    { return CmdRecordNodeCert }
func (*RevokeCerts) Type() CommandType       { return CmdRevokeCerts }
func (*CreateJoinToken) Type() CommandType   { return CmdCreateJoinToken }
func (*UseJoinToken) Type() CommandType      { return CmdUseJoinToken }
func (*DeleteJoinToken) Type() CommandType   { return CmdDeleteJoinToken }
