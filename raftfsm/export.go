package raftfsm

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// ExportFormat is the version of the state export document.
const ExportFormat = 1

// ExportKind marks a JSON document as a dropmesh state export.
const ExportKind = "dropmesh-state"

// ExportDocument is the whole deployment state as a portable, versioned JSON
// document: what `dropmesh state export` writes and `state import` reads, so
// deployments made in one cluster can be brought into another. Nodes, cloud
// resources and cluster settings belong to a cluster and are not carried,
// nor is its PKI (the CA, node certificates, revocations, join tokens): a
// cluster never trusts another cluster's CA.
type ExportDocument struct {
	Kind       string               `json:"kind"`
	Format     int                  `json:"format"`
	ExportedAt time.Time            `json:"exported_at"`
	ClusterID  string               `json:"cluster_id"`
	Workspaces []ExportWorkspace    `json:"workspaces"`
	Services   []ServiceSpec        `json:"services"`
	Users      []User               `json:"users,omitempty"`
	Registries []RegistryCredential `json:"registries,omitempty"`
	Webhooks   []Webhook            `json:"webhooks,omitempty"`
}

// ExportWorkspace is a workspace with its projects and environments.
type ExportWorkspace struct {
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	Projects []ExportProject `json:"projects"`
}

// ExportProject is a project and its environment names.
type ExportProject struct {
	Name string   `json:"name"`
	Envs []string `json:"envs"`
}

// Export builds the export document of a state. Specs keep their sealed
// secrets: the node opens them when the caller asks for plain secrets.
func Export(s *State, at time.Time) ExportDocument {
	doc := ExportDocument{Kind: ExportKind, Format: ExportFormat, ExportedAt: at, ClusterID: s.Settings.ClusterID,
		Workspaces: []ExportWorkspace{}, Services: []ServiceSpec{}}
	for _, id := range SortedKeys(s.Workspaces) {
		w := s.Workspaces[id]
		ew := ExportWorkspace{ID: w.ID, Name: w.Name, Projects: []ExportProject{}}
		for _, pn := range SortedKeys(w.Projects) {
			ew.Projects = append(ew.Projects, ExportProject{Name: pn, Envs: SortedKeys(w.Projects[pn].Envs)})
		}
		doc.Workspaces = append(doc.Workspaces, ew)
	}
	for _, key := range SortedKeys(s.Services) {
		svc := s.Services[key]
		spec := svc.Spec
		if live, ok := svc.Revision(svc.LiveGeneration); ok {
			spec = live
		}
		doc.Services = append(doc.Services, spec.Clone())
	}
	for _, name := range SortedKeys(s.Users) {
		doc.Users = append(doc.Users, *s.Users[name])
	}
	for _, r := range SortedKeys(s.Registries) {
		doc.Registries = append(doc.Registries, *s.Registries[r])
	}
	for _, id := range SortedKeys(s.Webhooks) {
		w := *s.Webhooks[id]
		w.Kinds = slices.Clone(w.Kinds)
		doc.Webhooks = append(doc.Webhooks, w)
	}
	return doc
}

// DropSecrets leaves every secret out of the document: the services'
// secrets (plain or sealed), the users (their password hashes), the
// registry credentials and the webhooks (a webhook URL is a bearer
// secret). What stays is safe to hand to anyone who may read the
// deployments. Importing such a document keeps the cluster's users and
// leaves it without registries and webhooks.
func (d *ExportDocument) DropSecrets() {
	for i := range d.Services {
		d.Services[i].Secrets, d.Services[i].SealedSecrets = nil, nil
	}
	d.Users, d.Registries, d.Webhooks = nil, nil, nil
}

// ReadExport decodes an export document strictly (unknown fields are errors)
// and validates it completely.
func ReadExport(r io.Reader, maxBytes int64) (ExportDocument, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return ExportDocument{}, fmt.Errorf("read state document: %w", err)
	}
	if int64(len(data)) > maxBytes {
		return ExportDocument{}, invalidf("state document is larger than %d bytes", maxBytes)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var doc ExportDocument
	if err := dec.Decode(&doc); err != nil {
		return ExportDocument{}, invalidf("state document: %s", describeJSONError(err))
	}
	return doc, doc.Validate()
}

// Validate checks the whole document before anything is applied: format,
// names, every spec, and references between them.
func (d ExportDocument) Validate() error { return d.validate(ServiceSpec.Validate) }

// validate is Validate checking each service with check: Validate in full
// at the endpoint, validateShape in Apply (see ServiceSpec.Validate).
func (d ExportDocument) validate(check func(ServiceSpec) error) error {
	if d.Kind != ExportKind {
		return invalidf("state document: kind %q, want %q", d.Kind, ExportKind)
	}
	if d.Format != ExportFormat {
		return invalidf("state document: format %d is not supported (this version reads format %d)", d.Format, ExportFormat)
	}
	wsIDs := map[string]*ExportWorkspace{}
	wsNames := map[string]bool{}
	for i := range d.Workspaces {
		w := &d.Workspaces[i]
		if err := ValidateWorkspaceID(w.ID); err != nil {
			return err
		}
		if err := ValidateSlug("workspace", w.Name); err != nil {
			return err
		}
		if wsIDs[w.ID] != nil || wsNames[w.Name] {
			return invalidf("state document: workspace %s (%s) listed twice", w.Name, w.ID)
		}
		wsIDs[w.ID], wsNames[w.Name] = w, true
		for _, p := range w.Projects {
			if err := ValidateSlug("project", p.Name); err != nil {
				return err
			}
			for _, e := range p.Envs {
				if err := ValidateSlug("environment", e); err != nil {
					return err
				}
			}
		}
	}
	keys := map[string]ServiceSpec{}
	for _, spec := range d.Services {
		if wsIDs[spec.Workspace] == nil {
			return invalidf("state document: service %s/%s/%s names workspace %q, which the document does not list", spec.Project, spec.Env, spec.Service, spec.Workspace)
		}
		n := spec.Clone()
		n.Normalize()
		if err := check(n); err != nil {
			return fmt.Errorf("state document: service %s: %w", n.Name(), err)
		}
		key := ServiceKey(n.Workspace, n.Project, n.Env, n.Service)
		if _, dup := keys[key]; dup {
			return invalidf("state document: service %s listed twice", key)
		}
		keys[key] = n
	}
	for key, spec := range keys {
		for _, u := range spec.Uses {
			dep, ok := keys[ServiceKey(spec.Workspace, spec.Project, spec.Env, u)]
			if !ok || dep.Kind != KindStateful {
				return invalidf("state document: %s uses %s, which is not a stateful service in the document", key, u)
			}
		}
	}
	admins := 0
	users := map[string]bool{}
	for _, u := range d.Users {
		if err := ValidateUserName(u.Name); err != nil {
			return err
		}
		if !u.Role.Valid() || !strings.HasPrefix(u.PasswordHash, "$2") || users[u.Name] {
			return invalidf("state document: user %s: bad role, password hash, or listed twice", u.Name)
		}
		users[u.Name] = true
		if u.Role == RoleAdmin {
			admins++
		}
	}
	if len(d.Users) > 0 && admins == 0 {
		return invalidf("state document: users are listed but none is an admin")
	}
	for _, r := range d.Registries {
		if err := validateRegistryHost(r.Registry); err != nil {
			return err
		}
	}
	for _, w := range d.Webhooks {
		if w.SealedURL != "" {
			if err := w.validateSealed(); err != nil {
				return err
			}
			continue
		}
		if err := validateURL("webhook url", w.URL); err != nil {
			return err
		}
	}
	return nil
}

// ImportResult tells the caller what an import created.
type ImportResult struct {
	Services []string `json:"services"`
}

func applyImportState(s *State, c *ImportState) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	doc := c.Document
	if err := doc.validate(ServiceSpec.validateShape); err != nil { // the controller ran Validate before it committed
		return nil, err
	}
	// Check every placement, secret and deploy id before changing anything.
	specs := make(map[string]ServiceSpec, len(doc.Services))
	deployIDs := make(map[string]string, len(doc.Services))
	for _, spec := range doc.Services {
		n := spec.Clone()
		n.Normalize()
		if len(n.Secrets) > 0 {
			return nil, invalidf("state import: secrets of %s must be sealed before they enter the log", n.Name())
		}
		key := ServiceKey(n.Workspace, n.Project, n.Env, n.Service)
		if err := s.checkPlacement(key, n, c.Placements[key]); err != nil {
			return nil, err
		}
		id := c.DeployIDs[key]
		if err := validateID("deploy id", id); err != nil {
			return nil, fmt.Errorf("state import: %s: %w", key, err)
		}
		if other, dup := deployIDs[id]; dup {
			return nil, invalidf("state import: deploy id %s is given to both %s and %s", id, other, key)
		}
		if _, taken := s.Deploys[id]; taken {
			return nil, invalidf("state import: deploy id %s of %s is already in use", id, key)
		}
		deployIDs[id] = key
		specs[key] = n
	}
	// The default workspace of this cluster stays unless the document brings one.
	keepDefault := s.WorkspaceByName(DefaultWorkspaceName)
	if keepDefault != nil && slices.ContainsFunc(doc.Workspaces, func(w ExportWorkspace) bool {
		return w.Name == DefaultWorkspaceName || w.ID == keepDefault.ID
	}) {
		keepDefault = nil
	}

	s.Workspaces = map[string]*Workspace{}
	if keepDefault != nil {
		s.Workspaces[keepDefault.ID] = &Workspace{ID: keepDefault.ID, Name: keepDefault.Name, CreatedAt: keepDefault.CreatedAt, Projects: map[string]*Project{}}
	}
	for _, w := range doc.Workspaces {
		ws := &Workspace{ID: w.ID, Name: w.Name, CreatedAt: c.At, Projects: map[string]*Project{}}
		for _, p := range w.Projects {
			for _, e := range p.Envs {
				ws.ensureScope(p.Name, e, c.At)
			}
		}
		s.Workspaces[w.ID] = ws
	}
	s.Services = map[string]*Service{}
	s.Instances = map[string]*Instance{}
	for _, d := range s.Deploys {
		if d.Status == DeployRolling {
			d.Status, d.Reason, d.FinishedAt = DeployFailed, "replaced by a state import", c.At
		}
	}
	var created []string
	for _, key := range SortedKeys(specs) {
		spec := specs[key]
		ws := s.Workspaces[spec.Workspace]
		ws.ensureScope(spec.Project, spec.Env, c.At)
		deployID := c.DeployIDs[key]
		svc := &Service{Key: key, WorkspaceID: spec.Workspace, Project: spec.Project, Env: spec.Env, Name: spec.Service,
			Spec: spec, Generation: 1, CreatedAt: c.At, UpdatedAt: c.At, LastDeploy: deployID,
			Revisions: []Revision{{Generation: 1, Spec: spec, DeployID: deployID, At: c.At}}}
		s.Services[key] = svc
		s.placeInstances(svc, c.Placements[key], c.At)
		maxParallel := max(spec.MaxParallel, 1)
		s.Deploys[deployID] = &Deploy{ID: deployID, Service: key, Generation: 1, MaxParallel: maxParallel, Status: DeployRolling, Actor: "import", StartedAt: c.At}
		created = append(created, key)
	}
	s.trimDeploys()
	if len(doc.Users) > 0 {
		s.Users = map[string]*User{}
		for _, u := range doc.Users {
			u := u
			s.Users[u.Name] = &u
		}
	}
	s.Registries = map[string]*RegistryCredential{}
	for _, r := range doc.Registries {
		r := r
		s.Registries[r.Registry] = &r
	}
	s.Webhooks = map[string]*Webhook{}
	for _, w := range doc.Webhooks {
		w := w
		w.Kinds = slices.Clone(w.Kinds)
		s.Webhooks[w.ID] = &w
	}
	s.event(c.At, EventCluster, SeverityWarn, fmt.Sprintf("state imported: %d workspaces, %d services", len(doc.Workspaces), len(created)), nil)
	return ImportResult{Services: created}, nil
}
