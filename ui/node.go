package ui

import (
	"context"
	"io"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Node is what the UI needs of the agent: the subset of control.Controller
// it reads and acts through. node.Agent satisfies it.
type Node interface {
	// NodeID is this node's id.
	NodeID() string
	// Version is this binary's version (shown in the footer).
	Version() string
	// View calls fn with the local replica under a read lock.
	View(fn func(s *raftfsm.State))
	// Changed returns a channel closed at the next state change.
	Changed() <-chan struct{}
	// Cluster describes the leader, the term and every gossip member.
	Cluster(ctx context.Context) (control.ClusterInfo, error)
	// IsLeader reports whether this node is the raft leader.
	IsLeader() bool
	// Leader returns the leader's id and API address ("" when unknown).
	Leader() (id, api string)

	Deploy(ctx context.Context, req control.DeployRequest) (raftfsm.DeployResult, error)
	Undeploy(ctx context.Context, service string, actor string) error
	RestartService(ctx context.Context, service string, actor string) error
	AddNodes(ctx context.Context, req control.AddNodesRequest) ([]string, error)
	RemoveNode(ctx context.Context, id string) error
	RebootNode(ctx context.Context, id string) error
	PutUser(ctx context.Context, req control.UserRequest) error
	DeleteUser(ctx context.Context, name string) error
	UpdateSettings(ctx context.Context, req control.SettingsRequest) error
	CreateSnapshot(ctx context.Context, req control.SnapshotRequest) error
	// PutWebhook adds or replaces a notification target (the UI sets w.ID);
	// DeleteWebhook removes one.
	PutWebhook(ctx context.Context, w raftfsm.Webhook) error
	DeleteWebhook(ctx context.Context, id string) error

	// ContainerLogs streams a container's log (the agent forwards to the
	// container's node).
	ContainerLogs(ctx context.Context, name string, opts control.LogOptions, w io.Writer) error
	// AgentLogs returns this agent's own recent log lines.
	AgentLogs(since time.Time, limit int) []control.LogEntry
	// StoreContext saves an uploaded build context and returns its digest.
	StoreContext(ctx context.Context, r io.Reader) (control.ContextInfo, error)
	// Stats are this node's resource figures.
	Stats(ctx context.Context) (control.NodeStats, error)
}

// PeerStatser is optionally implemented by a Node that can fetch another
// node's figures (GET /v1/agent/stats on that node's API). Without it the
// infrastructure page shows CPU and memory for the serving node only and says
// so.
type PeerStatser interface {
	PeerStats(ctx context.Context, nodeID string) (control.NodeStats, error)
}

// PeerAgentLogser is optionally implemented by a Node that can fetch any
// node's own recent log lines (this node's, or GET /v1/agent/logs on that
// node's API). Without it the admin page shows the serving node's log only
// and says so.
type PeerAgentLogser interface {
	PeerAgentLogs(ctx context.Context, nodeID string, since time.Time, limit int) ([]control.LogEntry, error)
}

var _ Node = control.Controller(nil)
