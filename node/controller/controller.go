// Package controller implements the writes of the API's control interface
// (node/control): deploys, workspaces, users, tokens, settings, webhooks,
// registries, export and import, and the leader's side of agents' reports.
// It runs on the leader: it validates a request, draws the ids and the time
// stamps, seals what enters the log sealed, and commits one command through
// the Node it is built from. It holds no state of its own.
package controller

import (
	"cmp"
	"context"
	"crypto/cipher"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/deployplan"
	"github.com/dropmesh/dropmesh/node/egress"
	"github.com/dropmesh/dropmesh/node/ids"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Node is what the controller needs of the node it runs on.
type Node interface {
	// View calls fn with the local replica under a read lock.
	View(fn func(s *raftfsm.State))
	// IsLeader reports whether this node is the raft leader.
	IsLeader() bool
	// Apply commits a command on the leader (control.ErrNotLeader
	// elsewhere), after the protocol check of its type.
	Apply(ctx context.Context, cmd raftfsm.Command) (any, error)
	// Report sends an agent report to the leader: committed here when
	// leading, forwarded otherwise.
	Report(ctx context.Context, cmd raftfsm.Command) error
	// CheckProto refuses a command type some raft server may not understand.
	CheckProto(ctx context.Context, t raftfsm.CommandType) error
	// CheckHosts refuses a deploy whose hosts the caller may not publish.
	CheckHosts(ctx context.Context, cmd *raftfsm.DeployService, role raftfsm.Role) error
	// KickLeader wakes every leader duty (a deploy, a settings change).
	KickLeader()
	// NodeID is this node's id.
	NodeID() string
	// CloudReady reports whether the cluster has a DigitalOcean client.
	CloudReady() bool
}

// Controller implements the write side of control.Controller on a Node.
type Controller struct {
	node   Node
	sealer cipher.AEAD
	now    func() time.Time
}

// New returns a controller committing through node, sealing secrets with
// sealer (the cluster's, from clusterconf.Keys) and stamping commands with
// now (the leader's clock, the only one commands read).
func New(node Node, sealer cipher.AEAD, now func() time.Time) *Controller {
	return &Controller{node: node, sealer: sealer, now: now}
}

// Deploy validates a spec, places it and commits the deploy; the roll-out
// controller takes it from there. A spec that changes nothing (see
// unchangedDeploy) commits nothing and answers Unchanged with the current
// generation.
func (c *Controller) Deploy(ctx context.Context, req control.DeployRequest) (raftfsm.DeployResult, error) {
	if !c.node.IsLeader() {
		return raftfsm.DeployResult{}, control.ErrNotLeader
	}
	spec := req.Spec.Clone()
	spec.Normalize()
	if err := spec.Validate(); err != nil {
		return raftfsm.DeployResult{}, err
	}
	var (
		cmd       *raftfsm.DeployService
		prepErr   error
		same      raftfsm.DeployResult
		unchanged bool
	)
	c.node.View(func(s *raftfsm.State) {
		cmd, prepErr = c.prepareDeploy(s, spec, req)
		if prepErr == nil {
			same, unchanged = unchangedDeploy(s, c.sealer, cmd)
		}
	})
	if prepErr != nil {
		return raftfsm.DeployResult{}, prepErr
	}
	if unchanged {
		return same, nil
	}
	if err := c.node.CheckHosts(ctx, cmd, req.Role); err != nil {
		return raftfsm.DeployResult{}, err
	}
	v, err := c.node.Apply(ctx, cmd)
	if err != nil {
		return raftfsm.DeployResult{}, err
	}
	res, _ := v.(raftfsm.DeployResult)
	c.node.KickLeader()
	return res, nil
}

// prepareDeploy is deployplan.Prepare with this leader's clock, ids and
// sealing key.
func (c *Controller) prepareDeploy(s *raftfsm.State, spec raftfsm.ServiceSpec, req control.DeployRequest) (*raftfsm.DeployService, error) {
	return deployplan.Prepare(s, deployplan.Request{Spec: spec, Actor: req.Actor, ExpectGeneration: req.ExpectGeneration,
		At: c.now(), DeployID: ids.New("dep"), NewWorkspaceID: func() string { return ids.Hex(3) }, Sealer: c.sealer})
}

// Undeploy removes a service.
func (c *Controller) Undeploy(ctx context.Context, service, actor string) error {
	key, err := c.serviceKey(service)
	if err != nil {
		return err
	}
	_, err = c.node.Apply(ctx, &raftfsm.UndeployService{At: c.now(), Service: key, DeployID: ids.New("undep"), Actor: actor})
	return err
}

func (c *Controller) serviceKey(name string) (key string, err error) {
	c.node.View(func(s *raftfsm.State) { key, err = deployplan.ResolveService(s, name) })
	return key, err
}

// RestartService restarts every instance of a service (a manual restart).
func (c *Controller) RestartService(ctx context.Context, service, actor string) error {
	key, err := c.serviceKey(service)
	if err != nil {
		return err
	}
	var ids []string
	c.node.View(func(s *raftfsm.State) {
		for _, in := range s.ServiceInstances(key) {
			ids = append(ids, in.ID)
		}
	})
	for _, id := range ids {
		if _, err := c.node.Apply(ctx, &raftfsm.RestartInstance{At: c.now(), Instance: id, Reason: "restart requested by " + cmp.Or(actor, "api")}); err != nil {
			return err
		}
	}
	return nil
}

// CreateWorkspace creates a workspace with a fresh id.
func (c *Controller) CreateWorkspace(ctx context.Context, name string) (control.WorkspaceInfo, error) {
	if err := raftfsm.ValidateSlug("workspace", name); err != nil {
		return control.WorkspaceInfo{}, err
	}
	var id string
	c.node.View(func(s *raftfsm.State) { id = deployplan.FreeWorkspaceID(s, func() string { return ids.Hex(3) }) })
	if _, err := c.node.Apply(ctx, &raftfsm.CreateWorkspace{At: c.now(), ID: id, Name: name}); err != nil {
		return control.WorkspaceInfo{}, err
	}
	return control.WorkspaceInfo{ID: id, Name: name, Projects: []control.ProjectInfo{}, Services: []raftfsm.Service{}, Instances: []raftfsm.Instance{}}, nil
}

func (c *Controller) workspaceID(ref string) (id string, err error) {
	c.node.View(func(s *raftfsm.State) {
		if w := s.ResolveWorkspace(ref); w != nil {
			id = w.ID
		} else {
			err = fmt.Errorf("workspace %q: %w", ref, raftfsm.ErrNotFound)
		}
	})
	return id, err
}

// DeleteWorkspace removes an empty workspace.
func (c *Controller) DeleteWorkspace(ctx context.Context, ref string) error {
	id, err := c.workspaceID(ref)
	if err != nil {
		return err
	}
	_, err = c.node.Apply(ctx, &raftfsm.DeleteWorkspace{At: c.now(), ID: id})
	return err
}

// CreateProject creates a project.
func (c *Controller) CreateProject(ctx context.Context, workspace, name string) error {
	id, err := c.workspaceID(workspace)
	if err != nil {
		return err
	}
	_, err = c.node.Apply(ctx, &raftfsm.CreateProject{At: c.now(), WorkspaceID: id, Name: name})
	return err
}

// CreateEnvironment creates an environment.
func (c *Controller) CreateEnvironment(ctx context.Context, workspace, project, name string) error {
	id, err := c.workspaceID(workspace)
	if err != nil {
		return err
	}
	_, err = c.node.Apply(ctx, &raftfsm.CreateEnvironment{At: c.now(), WorkspaceID: id, Project: project, Name: name})
	return err
}

// PutUser adds or changes a UI user; the leader hashes the password.
func (c *Controller) PutUser(ctx context.Context, req control.UserRequest) error {
	if err := raftfsm.ValidateUserName(req.Name); err != nil {
		return err
	}
	if !req.Role.Valid() {
		return fmt.Errorf("%w: role %q: want admin, deployer or viewer", raftfsm.ErrInvalid, req.Role)
	}
	cmd := &raftfsm.PutUser{At: c.now(), Name: req.Name, Role: req.Role}
	if req.Password != "" {
		if len(req.Password) < 8 || len(req.Password) > 72 {
			return fmt.Errorf("%w: password: 8 to 72 characters", raftfsm.ErrInvalid)
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(req.Password), bcrypt.DefaultCost)
		if err != nil {
			return fmt.Errorf("hash password of %s: %w", req.Name, err)
		}
		cmd.PasswordHash = string(hash)
	}
	_, err := c.node.Apply(ctx, cmd)
	return err
}

// DeleteUser removes a UI user.
func (c *Controller) DeleteUser(ctx context.Context, name string) error {
	_, err := c.node.Apply(ctx, &raftfsm.DeleteUser{At: c.now(), Name: name})
	return err
}

// UpdateSettings seals the tokens it is given and commits the settings.
func (c *Controller) UpdateSettings(ctx context.Context, req control.SettingsRequest) error {
	cmd := &raftfsm.UpdateSettings{At: c.now(), Domain: req.Domain, UIHost: req.UIHost, Regions: req.Regions,
		DropletSize: req.DropletSize, BaseSnapshot: req.BaseSnapshot, DesiredNodes: req.DesiredNodes, HealthInterval: req.HealthInterval,
		DeadNodeGrace: req.DeadNodeGrace, Backup: req.Backup}
	var egressCmd *raftfsm.SetEgressAllow
	if req.EgressAllow != nil {
		if _, err := egress.ParseAllowed(*req.EgressAllow); err != nil {
			return fmt.Errorf("%w: %w", raftfsm.ErrInvalid, err)
		}
		egressCmd = &raftfsm.SetEgressAllow{At: c.now(), Ranges: slices.Clone(*req.EgressAllow)}
		if onlyEgress(req) {
			_, err := c.node.Apply(ctx, egressCmd)
			return err
		}
	}
	seal := func(label string, plain *string) (*raftfsm.Sealed, error) {
		if plain == nil {
			return nil, nil
		}
		v := strings.TrimSpace(*plain)
		if v == "" || len(v) > 4096 || strings.ContainsAny(v, " \n\t") {
			return nil, fmt.Errorf("%w: %s: want a token without spaces", raftfsm.ErrInvalid, label)
		}
		sealed, err := raftfsm.Seal(c.sealer, label, []byte(v))
		return &sealed, err
	}
	var err error
	if cmd.DOToken, err = seal(raftfsm.LabelDOToken, req.DOToken); err != nil {
		return err
	}
	if cmd.CFToken, err = seal(raftfsm.LabelCFToken, req.CFToken); err != nil {
		return err
	}
	if req.SpacesSecret != nil {
		if req.Backup == nil || req.Backup.Spaces == nil {
			return fmt.Errorf("%w: spaces_secret without backup.spaces", raftfsm.ErrInvalid)
		}
		sealed, err := seal(raftfsm.LabelSpacesSecret, req.SpacesSecret)
		if err != nil {
			return err
		}
		b := *req.Backup
		sp := *b.Spaces
		sp.SecretKey = *sealed
		b.Spaces = &sp
		cmd.Backup = &b
	}
	if _, err := c.node.Apply(ctx, cmd); err != nil {
		return err
	}
	if egressCmd != nil {
		// After the other settings, which are the ones that can be refused.
		if _, err := c.node.Apply(ctx, egressCmd); err != nil {
			return fmt.Errorf("egress ranges (the other settings were applied): %w", err)
		}
	}
	c.node.KickLeader()
	return nil
}

// onlyEgress reports whether req changes nothing but the egress ranges.
func onlyEgress(req control.SettingsRequest) bool {
	req.EgressAllow = nil
	return reflect.ValueOf(req).IsZero()
}

// PutWebhook adds or replaces a notification target.
func (c *Controller) PutWebhook(ctx context.Context, w raftfsm.Webhook) error {
	if w.ID == "" {
		w.ID = ids.New("hook")
	}
	if w.Format == "" {
		w.Format = raftfsm.WebhookGeneric
	}
	// The URL is a bearer secret: it enters the log sealed, once every raft
	// server understands sealed webhooks (a rolling upgrade may still run
	// one that does not: then it is refused, never stored plain).
	if err := raftfsm.SealWebhookURL(c.sealer, &w); err != nil {
		return err
	}
	_, err := c.node.Apply(ctx, &raftfsm.PutSealedWebhook{At: c.now(), Webhook: w})
	return err
}

// DeleteWebhook removes a notification target.
func (c *Controller) DeleteWebhook(ctx context.Context, id string) error {
	_, err := c.node.Apply(ctx, &raftfsm.DeleteWebhook{At: c.now(), ID: id})
	return err
}

// PutRegistry seals and stores registry credentials.
func (c *Controller) PutRegistry(ctx context.Context, req control.RegistryRequest) error {
	if req.Password == "" {
		return fmt.Errorf("%w: registry %s: no password", raftfsm.ErrInvalid, req.Registry)
	}
	pw, err := raftfsm.Seal(c.sealer, raftfsm.RegistryLabel(req.Registry), []byte(req.Password))
	if err != nil {
		return err
	}
	_, err = c.node.Apply(ctx, &raftfsm.PutRegistry{At: c.now(), Credential: raftfsm.RegistryCredential{Registry: req.Registry, Username: req.Username, Password: pw}})
	return err
}

// DeleteRegistry removes registry credentials.
func (c *Controller) DeleteRegistry(ctx context.Context, registry string) error {
	_, err := c.node.Apply(ctx, &raftfsm.DeleteRegistry{At: c.now(), Registry: registry})
	return err
}

// ExportState exports the deployments without any secret (see
// raftfsm.ExportDocument.DropSecrets); with plainSecrets the sealed secrets
// are opened instead, so the document can be imported into another cluster
// (the CLI seals such a document with a passphrase before writing it).
func (c *Controller) ExportState(ctx context.Context, plainSecrets bool) (raftfsm.ExportDocument, error) {
	var doc raftfsm.ExportDocument
	c.node.View(func(s *raftfsm.State) { doc = raftfsm.Export(s, c.now()) })
	if !plainSecrets {
		doc.DropSecrets()
		return doc, nil
	}
	for i, spec := range doc.Services {
		key := raftfsm.ServiceKey(spec.Workspace, spec.Project, spec.Env, spec.Service)
		plain, err := raftfsm.OpenSecrets(c.sealer, key, spec)
		if err != nil {
			return doc, err
		}
		if len(plain) > 0 {
			doc.Services[i].Secrets, doc.Services[i].SealedSecrets = plain, nil
		}
	}
	for i, w := range doc.Webhooks {
		u, err := raftfsm.WebhookURL(c.sealer, w)
		if err != nil {
			return doc, err
		}
		doc.Webhooks[i].URL, doc.Webhooks[i].SealedURL, doc.Webhooks[i].Short = u, "", ""
	}
	// Registry passwords are sealed with this cluster's key and cannot be
	// carried to another one: re-add them there.
	doc.Registries = nil
	return doc, nil
}

// ImportState replaces the deployments with those of a document: it seals
// plain secrets for this cluster, checks sealed ones open here, places every
// service, and commits it all as one command.
func (c *Controller) ImportState(ctx context.Context, doc raftfsm.ExportDocument) (raftfsm.ImportResult, error) {
	if !c.node.IsLeader() {
		return raftfsm.ImportResult{}, control.ErrNotLeader
	}
	if err := doc.Validate(); err != nil {
		return raftfsm.ImportResult{}, err
	}
	cmd := &raftfsm.ImportState{At: c.now(), Placements: map[string][]raftfsm.Assignment{}, DeployIDs: map[string]string{}}
	var prepErr error
	for _, r := range doc.Registries {
		if _, err := raftfsm.Open(c.sealer, raftfsm.RegistryLabel(r.Registry), r.Password); err != nil {
			return raftfsm.ImportResult{}, fmt.Errorf("%w: registry %s: its password was sealed by another cluster; remove it from the document and add it again here", raftfsm.ErrInvalid, r.Registry)
		}
	}
	c.node.View(func(s *raftfsm.State) {
		placeState := raftfsm.NewState()
		placeState.Nodes = s.Nodes
		for i := range doc.Services {
			spec := doc.Services[i].Clone()
			spec.Normalize()
			key := raftfsm.ServiceKey(spec.Workspace, spec.Project, spec.Env, spec.Service)
			for name, v := range spec.SealedSecrets {
				if _, err := raftfsm.Open(c.sealer, raftfsm.SecretLabel(key, name), v); err != nil {
					prepErr = fmt.Errorf("%w: %s: secret %s was sealed by another cluster; export it with plain secrets", raftfsm.ErrInvalid, key, name)
					return
				}
			}
			if err := raftfsm.SealSecrets(c.sealer, key, &spec); err != nil {
				prepErr = err
				return
			}
			placement, err := deployplan.Place(placeState, key, spec)
			if err != nil {
				prepErr = err
				return
			}
			doc.Services[i] = spec
			cmd.Placements[key] = placement
			cmd.DeployIDs[key] = ids.New("imp")
		}
	})
	if prepErr != nil {
		return raftfsm.ImportResult{}, prepErr
	}
	// Webhook URLs enter the log sealed. A sealed one must open here; a plain
	// one is sealed, once every raft server reads sealed webhooks.
	doc.Webhooks = slices.Clone(doc.Webhooks)
	for i := range doc.Webhooks {
		w := &doc.Webhooks[i]
		if w.SealedURL != "" {
			if _, err := raftfsm.WebhookURL(c.sealer, *w); err != nil {
				return raftfsm.ImportResult{}, fmt.Errorf("%w: webhook %s: its URL was sealed by another cluster; export it with plain secrets", raftfsm.ErrInvalid, w.ID)
			}
			continue
		}
		if err := c.node.CheckProto(ctx, raftfsm.CmdPutSealedWebhook); err != nil {
			return raftfsm.ImportResult{}, fmt.Errorf("import webhook %s sealed: %w", w.ID, err)
		}
		if err := raftfsm.SealWebhookURL(c.sealer, w); err != nil {
			return raftfsm.ImportResult{}, err
		}
	}
	cmd.Document = doc
	v, err := c.node.Apply(ctx, cmd)
	if err != nil {
		return raftfsm.ImportResult{}, err
	}
	c.node.KickLeader()
	res, _ := v.(raftfsm.ImportResult)
	return res, nil
}

// reportCommands are the command types agents send to the leader.
var reportCommands = []raftfsm.CommandType{
	raftfsm.CmdReportInstances, raftfsm.CmdReportHealth, raftfsm.CmdRecordCronRun, raftfsm.CmdPutBuildContext, raftfsm.CmdAppendEvent,
	raftfsm.CmdPutSnapshot, raftfsm.CmdRecordTokenUse, raftfsm.CmdPutImage,
}

// Commit applies an agent's report on the leader.
func (c *Controller) Commit(ctx context.Context, cmd raftfsm.Command) (any, error) {
	if !slices.Contains(reportCommands, cmd.Type()) {
		return nil, fmt.Errorf("%w: %s is not an agent report", raftfsm.ErrInvalid, cmd.Type())
	}
	return c.node.Apply(ctx, cmd)
}
