package api

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/bootclaim"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// RouteKind says where a route runs.
type RouteKind int

// The route kinds.
const (
	// RoutePublic needs no key (GET /ping, and POST /v1/bootstrap/claim,
	// which proves the one-time bootstrap token instead).
	RoutePublic RouteKind = iota
	// RouteRead is linearizable by default (a read index from the leader,
	// then served from the local replica once it has applied it);
	// ?stale=true serves the local replica as it is (reads.go).
	RouteRead
	// RouteWrite runs on the leader; followers forward it.
	RouteWrite
	// RouteLocal runs on the node that owns the container; others proxy it there.
	RouteLocal
)

// String names the kind.
func (k RouteKind) String() string {
	switch k {
	case RoutePublic:
		return "public"
	case RouteRead:
		return "read"
	case RouteWrite:
		return "write"
	case RouteLocal:
		return "local"
	}
	return "unknown"
}

// Access is what a caller must present to use a route, on top of what its
// Kind implies.
type Access int

// The access levels.
const (
	// AccessKey needs the API key (or a client in the trusted networks); the
	// default of every route but the public ones.
	AccessKey Access = iota
	// AccessNone needs no credential in the request's headers: GET /ping,
	// and POST /v1/join, whose join token in the body is the credential.
	// Rate-limited per client IP.
	AccessNone
	// AccessNode needs the API key and a valid node certificate from the
	// cluster CA presented in the TLS handshake: the routes only agents
	// call (/v1/internal/*). The key alone is refused.
	AccessNode
)

// String names the access level.
func (a Access) String() string {
	switch a {
	case AccessKey:
		return "key"
	case AccessNone:
		return "none"
	case AccessNode:
		return "node"
	}
	return "unknown"
}

// BodyKind selects the size limit of a request body.
type BodyKind int

// The body kinds.
const (
	// BodyJSON is bounded by Options.MaxBodyBytes.
	BodyJSON BodyKind = iota
	// BodyUpload is bounded by Limits.MaxUploadBytes (build contexts).
	BodyUpload
	// BodyState is bounded by Limits.MaxStateBytes (state documents).
	BodyState
)

// Param is a query parameter of a route.
type Param struct {
	Name string
	// Type is the OpenAPI type: string, integer or boolean.
	Type        string
	Description string
	Required    bool
}

// Route is one entry of the route table: it is registered with Gin and
// documented in the OpenAPI document from the same fields.
type Route struct {
	Method, Path, Summary string
	Kind                  RouteKind
	// Access is what the caller must present (default AccessKey; public
	// routes need nothing). This table is the one place that says which
	// routes are internal (AccessNode).
	Access  Access
	Handler gin.HandlerFunc
	// Request and Response are values of the JSON body types (nil: none);
	// the OpenAPI schemas are reflected from them.
	Request, Response any
	// Query are the route's own query parameters; any other is refused.
	Query []Param
	// Status is the success status (default 200).
	Status int
	// RequestType and ResponseType are the content types when not JSON.
	RequestType, ResponseType string
	// Body selects the body size limit; MaxBody overrides it.
	Body    BodyKind
	MaxBody int64
	// OwnView marks a read answered from this node's own view (gossip,
	// raft, this document), not from the replicated state: it needs no
	// read index, so it answers with no leader and while catching up.
	OwnView bool
	// Role is the least role a caller needs; empty: viewer for GET and
	// HEAD, deployer for the rest (requiredRole). Admin routes say so.
	Role raftfsm.Role
}

// ginPath turns "/v1/nodes/{id}" into Gin's "/v1/nodes/:id".
func ginPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			parts[i] = ":" + s[1:len(s)-1]
		}
	}
	return strings.Join(parts, "/")
}

// Routes returns the route table of an API built with o: the built-in routes
// and o.Extra. New registers exactly these, and GET /v1/openapi.json
// documents exactly these.
func Routes(o Options) []Route {
	return newServer(o).routes()
}

// access is the route's effective access: public routes need nothing.
func (r Route) access() Access {
	if r.Kind == RoutePublic {
		return AccessNone
	}
	return r.Access
}

const serviceBase = "/v1/services/{ws}/{project}/{env}/{service}"

func (s *server) routes() []Route {
	p := func(name, typ, desc string) Param { return Param{Name: name, Type: typ, Description: desc} }
	rs := []Route{
		{Method: http.MethodGet, Path: "/ping", Summary: "Liveness: this node's id and version (no key)", Kind: RoutePublic, Handler: s.ping, Response: control.Ping{}},
		{Method: http.MethodPost, Path: "/v1/bootstrap/claim", Summary: "A new seed takes its cloud tokens and admin password from `dropmesh bootstrap` (no key: the one-time bootstrap token is proven)", Kind: RoutePublic, Handler: s.claimBootstrap, Request: bootclaim.Request{}, Response: bootclaim.Answer{}},
		{Method: http.MethodGet, Path: "/v1/cluster", Summary: "The leader, the term and every gossip member", Kind: RouteRead, Handler: s.cluster, Response: control.ClusterInfo{}, OwnView: true},
		{Method: http.MethodGet, Path: "/v1/openapi.json", Summary: "This document", Kind: RouteRead, Handler: s.openAPI, Response: map[string]any{}, OwnView: true},

		{Method: http.MethodGet, Path: "/v1/nodes", Summary: "Every node of the cluster", Kind: RouteRead, Handler: s.listNodes, Response: []raftfsm.Node{}},
		{Method: http.MethodPost, Path: "/v1/nodes", Role: raftfsm.RoleAdmin, Summary: "Add droplets to the cluster", Kind: RouteWrite, Handler: s.addNodes, Request: control.AddNodesRequest{}, Response: control.AddedNodes{}, Status: http.StatusAccepted},
		{Method: http.MethodDelete, Path: "/v1/nodes/{id}", Role: raftfsm.RoleAdmin, Summary: "Drain and remove a node", Kind: RouteWrite, Handler: s.removeNode, Status: http.StatusAccepted},
		{Method: http.MethodPost, Path: "/v1/nodes/{id}/reboot", Role: raftfsm.RoleAdmin, Summary: "Power-cycle a node's droplet", Kind: RouteWrite, Handler: s.rebootNode, Status: http.StatusAccepted},

		{Method: http.MethodGet, Path: "/v1/workspaces", Summary: "Every workspace with its projects", Kind: RouteRead, Handler: s.listWorkspaces, Response: []control.WorkspaceSummary{}},
		{Method: http.MethodPost, Path: "/v1/workspaces", Summary: "Create a workspace", Kind: RouteWrite, Handler: s.createWorkspace, Request: control.NameRequest{}, Response: control.WorkspaceInfo{}, Status: http.StatusCreated},
		{Method: http.MethodGet, Path: "/v1/workspaces/{ws}", Summary: "A workspace and everything in it (name or id)", Kind: RouteRead, Handler: s.getWorkspace, Response: control.WorkspaceInfo{}},
		{Method: http.MethodDelete, Path: "/v1/workspaces/{ws}", Summary: "Delete an empty workspace", Kind: RouteWrite, Handler: s.deleteWorkspace, Status: http.StatusNoContent},
		{Method: http.MethodPost, Path: "/v1/workspaces/{ws}/projects", Summary: "Create a project", Kind: RouteWrite, Handler: s.createProject, Request: control.NameRequest{}, Status: http.StatusCreated},
		{Method: http.MethodPost, Path: "/v1/workspaces/{ws}/projects/{project}/envs", Summary: "Create an environment", Kind: RouteWrite, Handler: s.createEnv, Request: control.NameRequest{}, Status: http.StatusCreated},

		{Method: http.MethodGet, Path: "/v1/services", Summary: "Every service (secrets redacted)", Kind: RouteRead, Handler: s.listServices, Response: []raftfsm.Service{},
			Query: []Param{p("workspace", "string", "only this workspace (name or id)")}},
		{Method: http.MethodPost, Path: "/v1/services", Summary: "Deploy a service spec (JSON or YAML)", Kind: RouteWrite, Handler: s.deploy, Request: raftfsm.ServiceSpec{}, Response: raftfsm.DeployResult{}, Status: http.StatusAccepted,
			Query: []Param{p("expect_generation", "integer", "refuse the deploy unless the service is at this generation")}},
		{Method: http.MethodGet, Path: serviceBase, Summary: "A service with its instances and last deploy", Kind: RouteRead, Handler: s.getService, Response: control.ServiceDetail{}},
		{Method: http.MethodDelete, Path: serviceBase, Summary: "Undeploy a service", Kind: RouteWrite, Handler: s.undeploy, Status: http.StatusAccepted},
		{Method: http.MethodPost, Path: serviceBase + "/restart", Summary: "Restart every instance of a service", Kind: RouteWrite, Handler: s.restart, Status: http.StatusAccepted},
		{Method: http.MethodGet, Path: serviceBase + "/health", Summary: "A service's health and history per instance", Kind: RouteRead, Handler: s.serviceHealth, Response: control.ServiceHealth{}},

		{Method: http.MethodGet, Path: "/v1/deploys", Summary: "Deploys, newest first", Kind: RouteRead, Handler: s.listDeploys, Response: []raftfsm.Deploy{},
			Query: []Param{p("service", "string", "only this service ([workspace/]project/env/service)")}},
		{Method: http.MethodGet, Path: "/v1/deploys/{id}", Summary: "A deploy and the phase of each instance", Kind: RouteRead, Handler: s.getDeploy, Response: control.DeployProgress{}},
		{Method: http.MethodGet, Path: "/v1/instances", Summary: "Instances", Kind: RouteRead, Handler: s.listInstances, Response: []raftfsm.Instance{},
			Query: []Param{p("service", "string", "only this service ([workspace/]project/env/service)"), p("node", "string", "only this node")}},

		{Method: http.MethodGet, Path: "/v1/containers/{name}/health", Summary: "Check a container now (the first system's answer)", Kind: RouteLocal, Handler: s.containerHealth, Response: control.HealthAnswer{},
			Query: []Param{p("port", "integer", "probe this port instead of the service's"), p("since", "string", "scan the log since (RFC 3339, unix seconds, or a duration ago such as 10m)")}},
		{Method: http.MethodGet, Path: "/v1/containers/{name}/logs", Summary: "A container's log, streamed as text", Kind: RouteLocal, Handler: s.containerLogs, ResponseType: "text/plain",
			Query: []Param{p("since", "string", "from this time (RFC 3339, unix seconds, or a duration ago such as 10m)"), p("tail", "integer", "only the last N lines"), p("follow", "boolean", "keep streaming new lines")}},

		{Method: http.MethodGet, Path: "/v1/agent/logs", Role: raftfsm.RoleAdmin, Summary: "This agent's own recent log", Kind: RouteLocal, Handler: s.agentLogs, Response: []control.LogEntry{},
			Query: []Param{p("since", "string", "from this time (RFC 3339, unix seconds, or a duration ago)"), p("limit", "integer", "at most this many entries (default 500)"), p("node", "string", "ask this node's agent instead")}},
		{Method: http.MethodGet, Path: "/v1/agent/stats", Summary: "This node's resource figures", Kind: RouteLocal, Handler: s.agentStats, Response: control.NodeStats{},
			Query: []Param{p("node", "string", "ask this node's agent instead")}},

		{Method: http.MethodGet, Path: "/v1/events", Summary: "The cluster's events, oldest first", Kind: RouteRead, Handler: s.listEvents, Response: []raftfsm.Event{},
			Query: []Param{p("since", "integer", "only events after this sequence number"), p("limit", "integer", "at most this many, the newest (default 100, at most 2000)"),
				p("service", "string", "only this service"), p("kind", "string", "only kinds with this prefix, such as deploy.")}},

		{Method: http.MethodGet, Path: "/v1/snapshots", Summary: "Droplet snapshots", Kind: RouteRead, Handler: s.listSnapshots, Response: []raftfsm.Snapshot{}},
		{Method: http.MethodPost, Path: "/v1/snapshots", Role: raftfsm.RoleAdmin, Summary: "Build a custom snapshot from an uploaded context", Kind: RouteWrite, Handler: s.createSnapshot, Request: control.SnapshotRequest{}, Status: http.StatusAccepted},

		{Method: http.MethodPost, Path: "/v1/contexts", Summary: "Upload a build context (tar or tar.gz)", Kind: RouteLocal, Handler: s.uploadContext, Response: control.ContextInfo{}, Status: http.StatusCreated,
			RequestType: "application/x-tar", Body: BodyUpload},
		{Method: http.MethodGet, Path: "/v1/contexts/{digest}", Summary: "Download a build context from a node that holds it", Kind: RouteLocal, Handler: s.getContext, ResponseType: "application/x-tar"},

		{Method: http.MethodGet, Path: "/v1/state/export", Role: raftfsm.RoleAdmin, Summary: "Export the deployments as a portable document", Kind: RouteRead, Handler: s.exportState, Response: raftfsm.ExportDocument{},
			Query: []Param{p("secrets", "string", "plain: include secrets in plain text (keep the file safe)")}},
		{Method: http.MethodPost, Path: "/v1/state/import", Role: raftfsm.RoleAdmin, Summary: "Replace the deployments with an exported document", Kind: RouteWrite, Handler: s.importState, Request: raftfsm.ExportDocument{}, Response: raftfsm.ImportResult{}, Body: BodyState},

		{Method: http.MethodGet, Path: "/v1/users", Role: raftfsm.RoleAdmin, Summary: "UI users (no password hashes)", Kind: RouteRead, Handler: s.listUsers, Response: []control.UserInfo{}},
		{Method: http.MethodPost, Path: "/v1/users", Role: raftfsm.RoleAdmin, Summary: "Add or change a UI user", Kind: RouteWrite, Handler: s.putUser, Request: control.UserRequest{}, Status: http.StatusNoContent},
		{Method: http.MethodDelete, Path: "/v1/users/{name}", Role: raftfsm.RoleAdmin, Summary: "Remove a UI user", Kind: RouteWrite, Handler: s.deleteUser, Status: http.StatusNoContent},

		{Method: http.MethodGet, Path: "/v1/tokens", Role: raftfsm.RoleAdmin, Summary: "API tokens with their roles and last use (never the tokens)", Kind: RouteRead, Handler: s.listTokens, Response: []control.TokenInfo{}},
		{Method: http.MethodPost, Path: "/v1/tokens", Role: raftfsm.RoleAdmin, Summary: "Create an API token with a role (the answer shows it once)", Kind: RouteWrite, Handler: s.createToken, Request: control.TokenRequest{}, Response: control.TokenCreated{}, Status: http.StatusCreated},
		{Method: http.MethodDelete, Path: "/v1/tokens/{ref}", Role: raftfsm.RoleAdmin, Summary: "Revoke an API token (id or name)", Kind: RouteWrite, Handler: s.revokeToken, Status: http.StatusNoContent},

		{Method: http.MethodGet, Path: "/v1/settings", Summary: "Cluster settings (tokens only as set or empty)", Kind: RouteRead, Handler: s.getSettings, Response: raftfsm.Settings{}},
		{Method: http.MethodPatch, Path: "/v1/settings", Role: raftfsm.RoleAdmin, Summary: "Change cluster settings", Kind: RouteWrite, Handler: s.patchSettings, Request: control.SettingsRequest{}, Status: http.StatusNoContent},

		{Method: http.MethodGet, Path: "/v1/webhooks", Role: raftfsm.RoleAdmin, Summary: "Notification targets", Kind: RouteRead, Handler: s.listWebhooks, Response: []raftfsm.Webhook{}},
		{Method: http.MethodPost, Path: "/v1/webhooks", Role: raftfsm.RoleAdmin, Summary: "Add or replace a notification target", Kind: RouteWrite, Handler: s.putWebhook, Request: raftfsm.Webhook{}, Response: raftfsm.Webhook{}, Status: http.StatusCreated},
		{Method: http.MethodDelete, Path: "/v1/webhooks/{id}", Role: raftfsm.RoleAdmin, Summary: "Remove a notification target", Kind: RouteWrite, Handler: s.deleteWebhook, Status: http.StatusNoContent},

		{Method: http.MethodGet, Path: "/v1/registries", Summary: "Private registries (no passwords)", Kind: RouteRead, Handler: s.listRegistries, Response: []control.RegistryInfo{}},
		{Method: http.MethodPost, Path: "/v1/registries", Role: raftfsm.RoleAdmin, Summary: "Store credentials for a private registry", Kind: RouteWrite, Handler: s.putRegistry, Request: control.RegistryRequest{}, Status: http.StatusNoContent},
		{Method: http.MethodDelete, Path: "/v1/registries/{registry}", Role: raftfsm.RoleAdmin, Summary: "Remove registry credentials", Kind: RouteWrite, Handler: s.deleteRegistry, Status: http.StatusNoContent},

		{Method: http.MethodGet, Path: "/v1/gossip-keys", Role: raftfsm.RoleAdmin, Summary: "The gossip keys by id (never the keys), a rotation in progress, each member's keys", Kind: RouteRead, Handler: s.gossipKeys, Response: control.GossipKeysInfo{}},
		{Method: http.MethodPost, Path: "/v1/gossip-keys/rotate", Role: raftfsm.RoleAdmin, Summary: "Start moving the cluster to a new gossip key, without a restart", Kind: RouteWrite, Handler: s.rotateGossipKey, Response: control.GossipKeysInfo{}, Status: http.StatusAccepted},

		{Method: http.MethodGet, Path: "/v1/ca", Summary: "The cluster CA and every node certificate with its expiry and revocation (no keys)", Kind: RouteRead, Handler: s.getCA, Response: control.CAInfo{}},

		{Method: http.MethodGet, Path: "/v1/certs", Summary: "Every TLS certificate of the edge: issued (ACME) and uploaded, with expiry and status (no keys)", Kind: RouteRead, Handler: s.listCerts, Response: control.CertsInfo{}},
		{Method: http.MethodPut, Path: "/v1/acme", Role: raftfsm.RoleAdmin, Summary: "Choose the ACME CA of automatic HTTPS (Let's Encrypt by default) or turn it off", Kind: RouteWrite, Handler: s.putACME, Request: control.ACMERequest{}, Status: http.StatusNoContent},
		{Method: http.MethodGet, Path: "/v1/origin-certs", Summary: "The edge's TLS certificates, by zone (no keys)", Kind: RouteRead, Handler: s.listOriginCerts, Response: []control.OriginCertInfo{}},
		{Method: http.MethodPut, Path: "/v1/origin-certs/{zone}", Role: raftfsm.RoleAdmin, Summary: "Store a zone's TLS certificate and key (the key sealed)", Kind: RouteWrite, Handler: s.putOriginCert, Request: control.OriginCertRequest{}, Status: http.StatusNoContent},
		{Method: http.MethodDelete, Path: "/v1/origin-certs/{zone}", Role: raftfsm.RoleAdmin, Summary: "Remove a zone's TLS certificate", Kind: RouteWrite, Handler: s.deleteOriginCert, Status: http.StatusNoContent},

		{Method: http.MethodPost, Path: "/v1/join", Summary: "Trade a one-time join token and a certificate request for a node certificate and the cluster's keys", Kind: RouteWrite, Access: AccessNone,
			Handler: s.join, Request: control.JoinRequest{}, Response: control.JoinAnswer{}},
		{Method: http.MethodPost, Path: "/v1/join-tokens", Role: raftfsm.RoleAdmin, Summary: "Make a one-time join token for a host joined by hand (join.sh)", Kind: RouteWrite, Handler: s.createJoinToken,
			Request: control.JoinTokenRequest{}, Response: control.JoinTokenInfo{}, Status: http.StatusCreated},

		{Method: http.MethodPost, Path: "/v1/internal/commands", Role: raftfsm.RoleAdmin, Summary: "Commit an agent's report (raftfsm.Encode bytes)", Kind: RouteWrite, Access: AccessNode, Handler: s.commitCommand, Response: control.CommitResult{},
			RequestType: "application/octet-stream"},
		{Method: http.MethodGet, Path: "/v1/internal/probe", Role: raftfsm.RoleAdmin, Summary: "Probe an address from this node (HTTP path or TCP)", Kind: RouteLocal, Access: AccessNode, Handler: s.probe, Response: control.ProbeResult{},
			Query: []Param{{Name: "addr", Type: "string", Description: "host:port", Required: true}, p("path", "string", "HTTP path; empty probes TCP")}},
		{Method: http.MethodPost, Path: "/v1/internal/certificate", Role: raftfsm.RoleAdmin, Summary: "Renew the calling node's certificate from a certificate request", Kind: RouteWrite, Access: AccessNode,
			Handler: s.renewCertificate, Request: control.CertificateRequest{}, Response: control.CertificateAnswer{}},
	}
	rs = append(rs, s.readIndexRoute())
	return append(rs, s.opts.Extra...)
}
