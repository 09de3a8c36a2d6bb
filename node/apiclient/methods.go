package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// One method per route of the API, in the order of its route table.

// Ping asks an agent for its id and version (no key needed).
func (c *Client) Ping(ctx context.Context) (control.Ping, error) {
	var out control.Ping
	// Not Get: /ping takes no read options (no ?index=, no ?stale).
	_, err := c.call(ctx, request{method: http.MethodGet, path: "/ping"}, &out)
	return out, err
}

// Cluster describes the leader, the term and every member.
func (c *Client) Cluster(ctx context.Context, opts ...ReadOption) (control.ClusterInfo, error) {
	var out control.ClusterInfo
	return out, c.Get(ctx, "/v1/cluster", nil, &out, opts...)
}

// OpenAPI returns the API's OpenAPI document.
func (c *Client) OpenAPI(ctx context.Context) (map[string]any, error) {
	var out map[string]any
	return out, c.Get(ctx, "/v1/openapi.json", nil, &out)
}

// Nodes lists the nodes.
func (c *Client) Nodes(ctx context.Context, opts ...ReadOption) ([]raftfsm.Node, error) {
	var out []raftfsm.Node
	return out, c.Get(ctx, "/v1/nodes", nil, &out, opts...)
}

// AddNodes grows the cluster and returns the new nodes' names.
func (c *Client) AddNodes(ctx context.Context, req control.AddNodesRequest) ([]string, error) {
	var out control.AddedNodes
	return out.Nodes, c.send(ctx, http.MethodPost, "/v1/nodes", nil, req, &out)
}

// RemoveNode drains and removes a node.
func (c *Client) RemoveNode(ctx context.Context, id string) error {
	return c.send(ctx, http.MethodDelete, "/v1/nodes/"+url.PathEscape(id), nil, nil, nil)
}

// RebootNode power-cycles a node's droplet.
func (c *Client) RebootNode(ctx context.Context, id string) error {
	return c.send(ctx, http.MethodPost, "/v1/nodes/"+url.PathEscape(id)+"/reboot", nil, nil, nil)
}

// Workspaces lists the workspaces.
func (c *Client) Workspaces(ctx context.Context, opts ...ReadOption) ([]control.WorkspaceSummary, error) {
	var out []control.WorkspaceSummary
	return out, c.Get(ctx, "/v1/workspaces", nil, &out, opts...)
}

// CreateWorkspace creates a workspace.
func (c *Client) CreateWorkspace(ctx context.Context, name string) (control.WorkspaceInfo, error) {
	var out control.WorkspaceInfo
	return out, c.send(ctx, http.MethodPost, "/v1/workspaces", nil, control.NameRequest{Name: name}, &out)
}

// Workspace returns a workspace (by name or id) and everything in it.
func (c *Client) Workspace(ctx context.Context, ref string, opts ...ReadOption) (control.WorkspaceInfo, error) {
	var out control.WorkspaceInfo
	return out, c.Get(ctx, "/v1/workspaces/"+url.PathEscape(ref), nil, &out, opts...)
}

// DeleteWorkspace deletes an empty workspace.
func (c *Client) DeleteWorkspace(ctx context.Context, ref string) error {
	return c.send(ctx, http.MethodDelete, "/v1/workspaces/"+url.PathEscape(ref), nil, nil, nil)
}

// CreateProject creates a project in a workspace.
func (c *Client) CreateProject(ctx context.Context, workspace, name string) error {
	return c.send(ctx, http.MethodPost, "/v1/workspaces/"+url.PathEscape(workspace)+"/projects", nil, control.NameRequest{Name: name}, nil)
}

// CreateEnvironment creates an environment in a project.
func (c *Client) CreateEnvironment(ctx context.Context, workspace, project, name string) error {
	return c.send(ctx, http.MethodPost, "/v1/workspaces/"+url.PathEscape(workspace)+"/projects/"+url.PathEscape(project)+"/envs", nil, control.NameRequest{Name: name}, nil)
}

// Services lists the services, of one workspace when workspace is not empty.
func (c *Client) Services(ctx context.Context, workspace string, opts ...ReadOption) ([]raftfsm.Service, error) {
	var q url.Values
	if workspace != "" {
		q = url.Values{"workspace": {workspace}}
	}
	var out []raftfsm.Service
	return out, c.Get(ctx, "/v1/services", q, &out, opts...)
}

// Deploy submits a spec document (YAML or JSON, sent as is). A non-zero
// expectGeneration refuses the deploy if the service moved on.
func (c *Client) Deploy(ctx context.Context, spec []byte, expectGeneration int64) (raftfsm.DeployResult, error) {
	var q url.Values
	if expectGeneration > 0 {
		q = url.Values{"expect_generation": {strconv.FormatInt(expectGeneration, 10)}}
	}
	var out raftfsm.DeployResult
	ctype := "application/yaml"
	if trimmed := strings.TrimSpace(string(spec)); strings.HasPrefix(trimmed, "{") {
		ctype = "application/json"
	}
	_, err := c.call(ctx, request{method: http.MethodPost, path: "/v1/services", query: q, body: spec, contentType: ctype, write: true}, &out)
	return out, err
}

// DeploySpec submits a spec value.
func (c *Client) DeploySpec(ctx context.Context, spec raftfsm.ServiceSpec) (raftfsm.DeployResult, error) {
	data, err := json.Marshal(spec)
	if err != nil {
		return raftfsm.DeployResult{}, fmt.Errorf("encode spec: %w", err)
	}
	return c.Deploy(ctx, data, 0)
}

// ServicePath is the API path of a service named "[workspace/]project/env/service"
// (the default workspace when none is given).
func ServicePath(name string) (string, error) {
	n, err := raftfsm.ParseServiceName(name)
	if err != nil {
		return "", err
	}
	ws := n.Workspace
	if ws == "" {
		ws = raftfsm.DefaultWorkspaceName
	}
	return "/v1/services/" + url.PathEscape(ws) + "/" + url.PathEscape(n.Project) + "/" + url.PathEscape(n.Env) + "/" + url.PathEscape(n.Service), nil
}

// Service returns a service with its instances and last deploy.
func (c *Client) Service(ctx context.Context, name string, opts ...ReadOption) (control.ServiceDetail, error) {
	var out control.ServiceDetail
	p, err := ServicePath(name)
	if err != nil {
		return out, err
	}
	return out, c.Get(ctx, p, nil, &out, opts...)
}

// Undeploy removes a service.
func (c *Client) Undeploy(ctx context.Context, name string) error {
	p, err := ServicePath(name)
	if err != nil {
		return err
	}
	return c.send(ctx, http.MethodDelete, p, nil, nil, nil)
}

// Restart restarts every instance of a service.
func (c *Client) Restart(ctx context.Context, name string) error {
	p, err := ServicePath(name)
	if err != nil {
		return err
	}
	return c.send(ctx, http.MethodPost, p+"/restart", nil, nil, nil)
}

// ServiceHealth returns a service's health per instance.
func (c *Client) ServiceHealth(ctx context.Context, name string, opts ...ReadOption) (control.ServiceHealth, error) {
	var out control.ServiceHealth
	p, err := ServicePath(name)
	if err != nil {
		return out, err
	}
	return out, c.Get(ctx, p+"/health", nil, &out, opts...)
}

// Deploys lists deploys, newest first, of one service when service is not empty.
func (c *Client) Deploys(ctx context.Context, service string, opts ...ReadOption) ([]raftfsm.Deploy, error) {
	var q url.Values
	if service != "" {
		q = url.Values{"service": {service}}
	}
	var out []raftfsm.Deploy
	return out, c.Get(ctx, "/v1/deploys", q, &out, opts...)
}

// DeployProgress returns a deploy and the phase of each instance.
func (c *Client) DeployProgress(ctx context.Context, id string, opts ...ReadOption) (control.DeployProgress, error) {
	var out control.DeployProgress
	return out, c.Get(ctx, "/v1/deploys/"+url.PathEscape(id), nil, &out, opts...)
}

// InstanceFilter selects instances; empty fields match all.
type InstanceFilter struct {
	Service string
	Node    string
}

// Instances lists instances.
func (c *Client) Instances(ctx context.Context, f InstanceFilter, opts ...ReadOption) ([]raftfsm.Instance, error) {
	q := url.Values{}
	if f.Service != "" {
		q.Set("service", f.Service)
	}
	if f.Node != "" {
		q.Set("node", f.Node)
	}
	var out []raftfsm.Instance
	return out, c.Get(ctx, "/v1/instances", q, &out, opts...)
}

// ContainerHealth checks a container now, on whichever node runs it.
func (c *Client) ContainerHealth(ctx context.Context, name string, port int, since time.Time) (control.HealthAnswer, error) {
	q := url.Values{}
	if port > 0 {
		q.Set("port", strconv.Itoa(port))
	}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339Nano))
	}
	var out control.HealthAnswer
	return out, c.Get(ctx, "/v1/containers/"+url.PathEscape(name)+"/health", q, &out)
}

// LogsQuery selects container log lines.
type LogsQuery struct {
	// Since is a time (RFC 3339, unix seconds) or a duration ago such as "10m".
	Since  string
	Tail   int
	Follow bool
}

// ContainerLogs streams a container's log from whichever node runs it. The
// caller closes the stream; with Follow it lasts until ctx ends or the
// container's log does.
func (c *Client) ContainerLogs(ctx context.Context, name string, q LogsQuery) (io.ReadCloser, error) {
	v := url.Values{}
	if q.Since != "" {
		v.Set("since", q.Since)
	}
	if q.Tail > 0 {
		v.Set("tail", strconv.Itoa(q.Tail))
	}
	if q.Follow {
		v.Set("follow", "true")
	}
	resp, cancel, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/containers/" + url.PathEscape(name) + "/logs", query: v, stream: q.Follow})
	if err != nil {
		return nil, err
	}
	return &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}, nil
}

// cancelOnClose releases the request's context when the body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (r *cancelOnClose) Close() error {
	err := r.ReadCloser.Close()
	r.cancel()
	return err
}

// AgentLogs returns an agent's own recent log (node "" = the agent asked).
func (c *Client) AgentLogs(ctx context.Context, node string, since time.Time, limit int) ([]control.LogEntry, error) {
	q := url.Values{}
	if node != "" {
		q.Set("node", node)
	}
	if !since.IsZero() {
		q.Set("since", since.UTC().Format(time.RFC3339Nano))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out []control.LogEntry
	return out, c.Get(ctx, "/v1/agent/logs", q, &out)
}

// AgentStats returns a node's resource figures (node "" = the agent asked).
func (c *Client) AgentStats(ctx context.Context, node string) (control.NodeStats, error) {
	var q url.Values
	if node != "" {
		q = url.Values{"node": {node}}
	}
	var out control.NodeStats
	return out, c.Get(ctx, "/v1/agent/stats", q, &out)
}

// EventQuery selects events. With Since set, the page starts after it
// (oldest first); without, the newest Limit events come.
type EventQuery struct {
	Since   uint64
	Limit   int
	Service string
	Kind    string
}

// Events lists events.
func (c *Client) Events(ctx context.Context, f EventQuery, opts ...ReadOption) ([]raftfsm.Event, error) {
	q := url.Values{}
	if f.Since > 0 {
		q.Set("since", strconv.FormatUint(f.Since, 10))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Service != "" {
		q.Set("service", f.Service)
	}
	if f.Kind != "" {
		q.Set("kind", f.Kind)
	}
	var out []raftfsm.Event
	return out, c.Get(ctx, "/v1/events", q, &out, opts...)
}

// Snapshots lists droplet snapshots.
func (c *Client) Snapshots(ctx context.Context, opts ...ReadOption) ([]raftfsm.Snapshot, error) {
	var out []raftfsm.Snapshot
	return out, c.Get(ctx, "/v1/snapshots", nil, &out, opts...)
}

// CreateSnapshot builds a custom snapshot from an uploaded context.
func (c *Client) CreateSnapshot(ctx context.Context, req control.SnapshotRequest) error {
	return c.send(ctx, http.MethodPost, "/v1/snapshots", nil, req, nil)
}

// UploadContext uploads a build context (tar or tar.gz). It is seekable so
// a retry on another agent can send it again.
func (c *Client) UploadContext(ctx context.Context, r io.ReadSeeker) (control.ContextInfo, error) {
	var out control.ContextInfo
	_, err := c.call(ctx, request{method: http.MethodPost, path: "/v1/contexts", upload: r, contentType: "application/x-tar", write: true, stream: true}, &out)
	return out, err
}

// FetchContext downloads a build context from a node that holds it.
func (c *Client) FetchContext(ctx context.Context, digest string) (io.ReadCloser, error) {
	resp, cancel, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/contexts/" + url.PathEscape(digest), stream: true})
	if err != nil {
		return nil, err
	}
	return &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}, nil
}

// ExportState exports the deployments; plainSecrets includes the secrets
// in plain text.
func (c *Client) ExportState(ctx context.Context, plainSecrets bool, opts ...ReadOption) (raftfsm.ExportDocument, error) {
	var q url.Values
	if plainSecrets {
		q = url.Values{"secrets": {"plain"}}
	}
	var out raftfsm.ExportDocument
	return out, c.Get(ctx, "/v1/state/export", q, &out, opts...)
}

// ImportState replaces the deployments with an exported document (sent as
// is: the agent validates it completely before anything changes).
func (c *Client) ImportState(ctx context.Context, doc []byte) (raftfsm.ImportResult, error) {
	var out raftfsm.ImportResult
	_, err := c.call(ctx, request{method: http.MethodPost, path: "/v1/state/import", body: doc, contentType: "application/json", write: true}, &out)
	return out, err
}

// Users lists the UI users.
func (c *Client) Users(ctx context.Context, opts ...ReadOption) ([]control.UserInfo, error) {
	var out []control.UserInfo
	return out, c.Get(ctx, "/v1/users", nil, &out, opts...)
}

// PutUser adds or changes a UI user.
func (c *Client) PutUser(ctx context.Context, req control.UserRequest) error {
	return c.send(ctx, http.MethodPost, "/v1/users", nil, req, nil)
}

// DeleteUser removes a UI user.
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	return c.send(ctx, http.MethodDelete, "/v1/users/"+url.PathEscape(name), nil, nil, nil)
}

// Tokens lists the API tokens (never the tokens themselves).
func (c *Client) Tokens(ctx context.Context, opts ...ReadOption) ([]control.TokenInfo, error) {
	var out []control.TokenInfo
	return out, c.Get(ctx, "/v1/tokens", nil, &out, opts...)
}

// CreateToken makes an API token with a role; the answer's Token is shown
// only this once.
func (c *Client) CreateToken(ctx context.Context, req control.TokenRequest) (control.TokenCreated, error) {
	var out control.TokenCreated
	return out, c.send(ctx, http.MethodPost, "/v1/tokens", nil, req, &out)
}

// RevokeToken removes an API token by id or name.
func (c *Client) RevokeToken(ctx context.Context, ref string) error {
	return c.send(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(ref), nil, nil, nil)
}

// Settings returns the cluster settings (tokens only as "set" or "").
func (c *Client) Settings(ctx context.Context, opts ...ReadOption) (raftfsm.Settings, error) {
	var out raftfsm.Settings
	return out, c.Get(ctx, "/v1/settings", nil, &out, opts...)
}

// UpdateSettings changes cluster settings.
func (c *Client) UpdateSettings(ctx context.Context, req control.SettingsRequest) error {
	return c.send(ctx, http.MethodPatch, "/v1/settings", nil, req, nil)
}

// Webhooks lists the notification targets.
func (c *Client) Webhooks(ctx context.Context, opts ...ReadOption) ([]raftfsm.Webhook, error) {
	var out []raftfsm.Webhook
	return out, c.Get(ctx, "/v1/webhooks", nil, &out, opts...)
}

// PutWebhook adds or replaces a notification target and returns it stored.
func (c *Client) PutWebhook(ctx context.Context, w raftfsm.Webhook) (raftfsm.Webhook, error) {
	var out raftfsm.Webhook
	return out, c.send(ctx, http.MethodPost, "/v1/webhooks", nil, w, &out)
}

// DeleteWebhook removes a notification target.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return c.send(ctx, http.MethodDelete, "/v1/webhooks/"+url.PathEscape(id), nil, nil, nil)
}

// GossipKeys describes the gossip keyring and each member's keys.
func (c *Client) GossipKeys(ctx context.Context, opts ...ReadOption) (control.GossipKeysInfo, error) {
	var out control.GossipKeysInfo
	return out, c.Get(ctx, "/v1/gossip-keys", nil, &out, opts...)
}

// RotateGossipKey starts a gossip key rotation; the leader finishes it.
func (c *Client) RotateGossipKey(ctx context.Context) (control.GossipKeysInfo, error) {
	var out control.GossipKeysInfo
	return out, c.send(ctx, http.MethodPost, "/v1/gossip-keys/rotate", nil, nil, &out)
}

// CA returns the cluster CA and every node certificate (no keys).
func (c *Client) CA(ctx context.Context, opts ...ReadOption) (control.CAInfo, error) {
	var out control.CAInfo
	return out, c.Get(ctx, "/v1/ca", nil, &out, opts...)
}

// Certs lists every TLS certificate of the edge, issued and uploaded,
// with the ACME configuration (no keys).
func (c *Client) Certs(ctx context.Context, opts ...ReadOption) (control.CertsInfo, error) {
	var out control.CertsInfo
	return out, c.Get(ctx, "/v1/certs", nil, &out, opts...)
}

// SetACME chooses the ACME CA of automatic HTTPS, or turns it off.
func (c *Client) SetACME(ctx context.Context, req control.ACMERequest) error {
	return c.send(ctx, http.MethodPut, "/v1/acme", nil, req, nil)
}

// OriginCerts lists the edge's TLS certificates (no keys).
func (c *Client) OriginCerts(ctx context.Context, opts ...ReadOption) ([]control.OriginCertInfo, error) {
	var out []control.OriginCertInfo
	return out, c.Get(ctx, "/v1/origin-certs", nil, &out, opts...)
}

// PutOriginCert stores a zone's TLS certificate chain and private key.
func (c *Client) PutOriginCert(ctx context.Context, zone, certPEM, keyPEM string) error {
	return c.send(ctx, http.MethodPut, "/v1/origin-certs/"+url.PathEscape(zone), nil, control.OriginCertRequest{CertPEM: certPEM, KeyPEM: keyPEM}, nil)
}

// DeleteOriginCert removes a zone's TLS certificate.
func (c *Client) DeleteOriginCert(ctx context.Context, zone string) error {
	return c.send(ctx, http.MethodDelete, "/v1/origin-certs/"+url.PathEscape(zone), nil, nil, nil)
}

// Registries lists the private registries (no passwords).
func (c *Client) Registries(ctx context.Context, opts ...ReadOption) ([]control.RegistryInfo, error) {
	var out []control.RegistryInfo
	return out, c.Get(ctx, "/v1/registries", nil, &out, opts...)
}

// PutRegistry stores credentials for a private registry.
func (c *Client) PutRegistry(ctx context.Context, req control.RegistryRequest) error {
	return c.send(ctx, http.MethodPost, "/v1/registries", nil, req, nil)
}

// DeleteRegistry removes registry credentials.
func (c *Client) DeleteRegistry(ctx context.Context, registry string) error {
	return c.send(ctx, http.MethodDelete, "/v1/registries/"+url.PathEscape(registry), nil, nil, nil)
}

// Commit sends an agent's report to the leader (any agent forwards it) and
// returns what applying it returned, as JSON.
func (c *Client) Commit(ctx context.Context, cmd raftfsm.Command) (json.RawMessage, error) {
	data, err := raftfsm.Encode(cmd)
	if err != nil {
		return nil, err
	}
	var out struct {
		Value json.RawMessage `json:"value"`
	}
	_, err = c.call(ctx, request{method: http.MethodPost, path: "/v1/internal/commands", body: data, contentType: "application/octet-stream", write: true}, &out)
	return out.Value, err
}

// Probe asks the agent to probe addr (an HTTP path, or TCP when path is
// empty); a failed probe is an *APIError with code probe_failed.
func (c *Client) Probe(ctx context.Context, addr, path string) error {
	q := url.Values{"addr": {addr}}
	if path != "" {
		q.Set("path", path)
	}
	return c.Get(ctx, "/v1/internal/probe", q, nil)
}

// Join trades a one-time join token and a certificate request for the
// node's certificate and the cluster's keys (POST /v1/join, no API key).
// The client must verify the agent against the CA the node was told to
// expect (its fingerprint). A join is never retried blindly: a token is
// used once.
func (c *Client) Join(ctx context.Context, req control.JoinRequest) (control.JoinAnswer, error) {
	var out control.JoinAnswer
	body, err := json.Marshal(req)
	if err != nil {
		return out, err
	}
	_, err = c.call(ctx, request{method: http.MethodPost, path: "/v1/join", body: body, contentType: "application/json", write: true, anonymous: true}, &out)
	return out, err
}

// RenewCertificate asks the leader for a fresh certificate for the calling
// node (its current certificate is the client certificate of c's TLS).
func (c *Client) RenewCertificate(ctx context.Context, csrPEM []byte) (control.CertificateAnswer, error) {
	var out control.CertificateAnswer
	err := c.send(ctx, http.MethodPost, "/v1/internal/certificate", nil, control.CertificateRequest{CSR: string(csrPEM)}, &out)
	return out, err
}

// CreateJoinToken makes a one-time join token (admin).
func (c *Client) CreateJoinToken(ctx context.Context, req control.JoinTokenRequest) (control.JoinTokenInfo, error) {
	var out control.JoinTokenInfo
	err := c.send(ctx, http.MethodPost, "/v1/join-tokens", nil, req, &out)
	return out, err
}
