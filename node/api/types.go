package api

import (
	"slices"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Answer and request types of the API that control does not define.

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
	ID        string                `json:"id"`
	Name      string                `json:"name"`
	CreatedAt time.Time             `json:"created_at"`
	Projects  []control.ProjectInfo `json:"projects"`
	Services  int                   `json:"services"`
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

// CertInfo is one TLS certificate of the edge as GET /v1/certs shows it:
// an issued one (source "acme") or an uploaded origin certificate (source
// "uploaded", named by its zone). Never a key.
type CertInfo struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	// Zone is an uploaded certificate's zone.
	Zone        string     `json:"zone,omitempty"`
	Service     string     `json:"service,omitempty"`
	Hosts       []string   `json:"hosts"`
	Status      string     `json:"status"`
	NotAfter    *time.Time `json:"not_after,omitempty"`
	IssuedAt    *time.Time `json:"issued_at,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	Failures    int        `json:"failures,omitempty"`
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
}

// CertsInfo is GET /v1/certs: the ACME CA in use and every certificate.
type CertsInfo struct {
	ACME  ACMEInfo   `json:"acme"`
	Certs []CertInfo `json:"certs"`
}

// ACMEInfo is the ACME configuration without its secrets (there are none
// but the account key, which is never shown).
type ACMEInfo struct {
	Enabled     bool   `json:"enabled"`
	Directory   string `json:"directory,omitempty"`
	Email       string `json:"email,omitempty"`
	RenewBefore string `json:"renew_before"`
	Account     string `json:"account,omitempty"`
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

// Deep copies: handlers copy what they read under the state's read lock and
// encode after it is released, so nothing they encode may alias the state.

func cloneService(svc *raftfsm.Service) raftfsm.Service {
	out := *svc
	out.Spec = redactSpec(svc.Spec)
	out.Revisions = make([]raftfsm.Revision, len(svc.Revisions))
	for i, r := range svc.Revisions {
		r.Spec = redactSpec(r.Spec)
		out.Revisions[i] = r
	}
	return out
}

// redactSpec copies a spec with its sealed secrets shown as "set".
func redactSpec(spec raftfsm.ServiceSpec) raftfsm.ServiceSpec {
	out := spec.Clone()
	out.Secrets = nil
	for k := range out.SealedSecrets {
		out.SealedSecrets[k] = SecretSet
	}
	return out
}

func cloneInstance(in *raftfsm.Instance) raftfsm.Instance {
	out := *in
	out.History = slices.Clone(in.History)
	return out
}

func cloneSnapshot(sn *raftfsm.Snapshot) raftfsm.Snapshot {
	out := *sn
	out.Regions = slices.Clone(sn.Regions)
	out.WantRegions = slices.Clone(sn.WantRegions)
	return out
}

func cloneWebhook(w *raftfsm.Webhook) raftfsm.Webhook {
	out := w.Redacted() // the URL is a bearer secret: shortened, never sealed or plain
	out.Kinds = slices.Clone(w.Kinds)
	return out
}

// redactSettings copies the settings with every sealed value shown as "set".
func redactSettings(st raftfsm.Settings) raftfsm.Settings {
	out := st
	out.Regions = slices.Clone(st.Regions)
	mark := func(v raftfsm.Sealed) raftfsm.Sealed {
		if v == "" {
			return ""
		}
		return SecretSet
	}
	out.DOToken, out.CFToken = mark(st.DOToken), mark(st.CFToken)
	if st.Backup.Spaces != nil {
		sp := *st.Backup.Spaces
		sp.SecretKey = mark(sp.SecretKey)
		out.Backup.Spaces = &sp
	}
	return out
}

// workspaceInfo builds GET /v1/workspaces/{ws} from the state.
func workspaceInfo(st *raftfsm.State, w *raftfsm.Workspace) control.WorkspaceInfo {
	info := control.WorkspaceInfo{ID: w.ID, Name: w.Name, Projects: projectsOf(w), Services: []raftfsm.Service{}, Instances: []raftfsm.Instance{}}
	for _, key := range raftfsm.SortedKeys(st.Services) {
		svc := st.Services[key]
		if svc.WorkspaceID != w.ID {
			continue
		}
		info.Services = append(info.Services, cloneService(svc))
		for _, in := range st.ServiceInstances(key) {
			info.Instances = append(info.Instances, cloneInstance(in))
		}
	}
	for _, id := range raftfsm.SortedKeys(st.Deploys) {
		d := st.Deploys[id]
		if svc, ok := st.Services[d.Service]; ok && svc.WorkspaceID == w.ID {
			info.Deploys = append(info.Deploys, *d)
		}
	}
	sortDeploys(info.Deploys)
	return info
}

func projectsOf(w *raftfsm.Workspace) []control.ProjectInfo {
	out := []control.ProjectInfo{}
	for _, name := range raftfsm.SortedKeys(w.Projects) {
		envs := raftfsm.SortedKeys(w.Projects[name].Envs)
		if envs == nil {
			envs = []string{}
		}
		out = append(out, control.ProjectInfo{Name: name, Envs: envs})
	}
	return out
}

// sortDeploys orders deploys newest first.
func sortDeploys(ds []raftfsm.Deploy) {
	slices.SortStableFunc(ds, func(a, b raftfsm.Deploy) int {
		if c := b.StartedAt.Compare(a.StartedAt); c != 0 {
			return c
		}
		if a.ID > b.ID {
			return -1
		}
		if a.ID < b.ID {
			return 1
		}
		return 0
	})
}
