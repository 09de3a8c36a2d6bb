package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/deployplan"
	"github.com/dropmesh/dropmesh/node/egress"
	"github.com/dropmesh/dropmesh/raftfsm"
)

var _ control.Controller = (*Agent)(nil)

// randomHex returns n random bytes in hex: ids the leader puts in commands.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the platform is broken; nothing can continue safely
	}
	return hex.EncodeToString(b)
}

// newID returns a fresh id with a readable prefix ("dep-1a2b3c4d5e6f").
func newID(prefix string) string { return prefix + "-" + randomHex(6) }

// NodeID is this node's id.
func (a *Agent) NodeID() string { return a.cfg.NodeID }

// Version is this binary's version.
func (a *Agent) Version() string { return a.cfg.Version }

// View reads the local replica.
func (a *Agent) View(fn func(s *raftfsm.State)) { a.fsm.View(fn) }

// Changed returns a channel closed at the next state change.
func (a *Agent) Changed() <-chan struct{} { return a.fsm.Changed() }

// IsLeader reports whether this node leads.
func (a *Agent) IsLeader() bool { return a.store.IsLeader() }

// Consistent makes local reads reflect every committed write.
func (a *Agent) Consistent(ctx context.Context) error {
	if !a.store.IsLeader() {
		return control.ErrNotLeader
	}
	return a.store.Barrier(ctx)
}

// CatchUp returns nil once this node may serve reads.
func (a *Agent) CatchUp() error { return a.store.CatchUp() }

// ReadIndex confirms the leadership and returns a linearizable read's index.
func (a *Agent) ReadIndex(ctx context.Context) (uint64, error) { return a.store.ReadIndex(ctx) }

// WaitApplied waits until the local state reflects index idx.
func (a *Agent) WaitApplied(ctx context.Context, idx uint64) error {
	return a.store.WaitApplied(ctx, idx)
}

// StaleContact says how stale a local read may be.
func (a *Agent) StaleContact(ctx context.Context) raftfsm.Contact { return a.store.StaleContact(ctx) }

// Deploy validates a spec, places it and commits the deploy; the roll-out
// controller takes it from there. A spec that changes nothing (see
// unchangedDeploy) commits nothing and answers Unchanged with the current
// generation.
func (a *Agent) Deploy(ctx context.Context, req control.DeployRequest) (raftfsm.DeployResult, error) {
	if !a.store.IsLeader() {
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
	a.fsm.View(func(s *raftfsm.State) {
		cmd, prepErr = a.prepareDeploy(s, spec, req)
		if prepErr == nil {
			same, unchanged = unchangedDeploy(s, a.keys.Sealer, cmd)
		}
	})
	if prepErr != nil {
		return raftfsm.DeployResult{}, prepErr
	}
	if unchanged {
		return same, nil
	}
	if err := a.checkHosts(ctx, cmd, req.Role); err != nil {
		return raftfsm.DeployResult{}, err
	}
	v, err := a.apply(ctx, cmd)
	if err != nil {
		return raftfsm.DeployResult{}, err
	}
	res, _ := v.(raftfsm.DeployResult)
	a.kickLeader()
	return res, nil
}

// prepareDeploy is deployplan.Prepare with this leader's clock, ids and
// sealing key.
func (a *Agent) prepareDeploy(s *raftfsm.State, spec raftfsm.ServiceSpec, req control.DeployRequest) (*raftfsm.DeployService, error) {
	return deployplan.Prepare(s, deployplan.Request{Spec: spec, Actor: req.Actor, ExpectGeneration: req.ExpectGeneration,
		At: a.now(), DeployID: newID("dep"), NewWorkspaceID: func() string { return randomHex(3) }, Sealer: a.keys.Sealer})
}

// Undeploy removes a service.
func (a *Agent) Undeploy(ctx context.Context, service, actor string) error {
	key, err := a.serviceKey(service)
	if err != nil {
		return err
	}
	_, err = a.apply(ctx, &raftfsm.UndeployService{At: a.now(), Service: key, DeployID: newID("undep"), Actor: actor})
	return err
}

func (a *Agent) serviceKey(name string) (key string, err error) {
	a.fsm.View(func(s *raftfsm.State) { key, err = deployplan.ResolveService(s, name) })
	return key, err
}

// RestartService restarts every instance of a service (a manual restart).
func (a *Agent) RestartService(ctx context.Context, service, actor string) error {
	key, err := a.serviceKey(service)
	if err != nil {
		return err
	}
	var ids []string
	a.fsm.View(func(s *raftfsm.State) {
		for _, in := range s.ServiceInstances(key) {
			ids = append(ids, in.ID)
		}
	})
	for _, id := range ids {
		if _, err := a.apply(ctx, &raftfsm.RestartInstance{At: a.now(), Instance: id, Reason: "restart requested by " + orDefault(actor, "api")}); err != nil {
			return err
		}
	}
	return nil
}

// CreateWorkspace creates a workspace with a fresh id.
func (a *Agent) CreateWorkspace(ctx context.Context, name string) (control.WorkspaceInfo, error) {
	if err := raftfsm.ValidateSlug("workspace", name); err != nil {
		return control.WorkspaceInfo{}, err
	}
	var id string
	a.fsm.View(func(s *raftfsm.State) { id = deployplan.FreeWorkspaceID(s, func() string { return randomHex(3) }) })
	if _, err := a.apply(ctx, &raftfsm.CreateWorkspace{At: a.now(), ID: id, Name: name}); err != nil {
		return control.WorkspaceInfo{}, err
	}
	return control.WorkspaceInfo{ID: id, Name: name, Projects: []control.ProjectInfo{}, Services: []raftfsm.Service{}, Instances: []raftfsm.Instance{}}, nil
}

func (a *Agent) workspaceID(ref string) (id string, err error) {
	a.fsm.View(func(s *raftfsm.State) {
		if w := s.ResolveWorkspace(ref); w != nil {
			id = w.ID
		} else {
			err = fmt.Errorf("workspace %q: %w", ref, raftfsm.ErrNotFound)
		}
	})
	return id, err
}

// DeleteWorkspace removes an empty workspace.
func (a *Agent) DeleteWorkspace(ctx context.Context, ref string) error {
	id, err := a.workspaceID(ref)
	if err != nil {
		return err
	}
	_, err = a.apply(ctx, &raftfsm.DeleteWorkspace{At: a.now(), ID: id})
	return err
}

// CreateProject creates a project.
func (a *Agent) CreateProject(ctx context.Context, workspace, name string) error {
	id, err := a.workspaceID(workspace)
	if err != nil {
		return err
	}
	_, err = a.apply(ctx, &raftfsm.CreateProject{At: a.now(), WorkspaceID: id, Name: name})
	return err
}

// CreateEnvironment creates an environment.
func (a *Agent) CreateEnvironment(ctx context.Context, workspace, project, name string) error {
	id, err := a.workspaceID(workspace)
	if err != nil {
		return err
	}
	_, err = a.apply(ctx, &raftfsm.CreateEnvironment{At: a.now(), WorkspaceID: id, Project: project, Name: name})
	return err
}

// PutUser adds or changes a UI user; the leader hashes the password.
func (a *Agent) PutUser(ctx context.Context, req control.UserRequest) error {
	if err := raftfsm.ValidateUserName(req.Name); err != nil {
		return err
	}
	if !req.Role.Valid() {
		return fmt.Errorf("%w: role %q: want admin, deployer or viewer", raftfsm.ErrInvalid, req.Role)
	}
	cmd := &raftfsm.PutUser{At: a.now(), Name: req.Name, Role: req.Role}
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
	_, err := a.apply(ctx, cmd)
	return err
}

// DeleteUser removes a UI user.
func (a *Agent) DeleteUser(ctx context.Context, name string) error {
	_, err := a.apply(ctx, &raftfsm.DeleteUser{At: a.now(), Name: name})
	return err
}

// UpdateSettings seals the tokens it is given and commits the settings.
func (a *Agent) UpdateSettings(ctx context.Context, req control.SettingsRequest) error {
	cmd := &raftfsm.UpdateSettings{At: a.now(), Domain: req.Domain, UIHost: req.UIHost, Regions: req.Regions,
		DropletSize: req.DropletSize, BaseSnapshot: req.BaseSnapshot, DesiredNodes: req.DesiredNodes, HealthInterval: req.HealthInterval,
		DeadNodeGrace: req.DeadNodeGrace, Backup: req.Backup}
	var egressCmd *raftfsm.SetEgressAllow
	if req.EgressAllow != nil {
		if _, err := egress.ParseAllowed(*req.EgressAllow); err != nil {
			return fmt.Errorf("%w: %w", raftfsm.ErrInvalid, err)
		}
		egressCmd = &raftfsm.SetEgressAllow{At: a.now(), Ranges: slices.Clone(*req.EgressAllow)}
		if onlyEgress(req) {
			_, err := a.apply(ctx, egressCmd)
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
		sealed, err := raftfsm.Seal(a.keys.Sealer, label, []byte(v))
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
	if _, err := a.apply(ctx, cmd); err != nil {
		return err
	}
	if egressCmd != nil {
		// After the other settings, which are the ones that can be refused.
		if _, err := a.apply(ctx, egressCmd); err != nil {
			return fmt.Errorf("egress ranges (the other settings were applied): %w", err)
		}
	}
	a.kickLeader()
	return nil
}

// onlyEgress reports whether req changes nothing but the egress ranges.
func onlyEgress(req control.SettingsRequest) bool {
	req.EgressAllow = nil
	return reflect.ValueOf(req).IsZero()
}

// PutWebhook adds or replaces a notification target.
func (a *Agent) PutWebhook(ctx context.Context, w raftfsm.Webhook) error {
	if w.ID == "" {
		w.ID = newID("hook")
	}
	if w.Format == "" {
		w.Format = raftfsm.WebhookGeneric
	}
	// The URL is a bearer secret: it enters the log sealed, once every raft
	// server understands sealed webhooks (a rolling upgrade may still run
	// one that does not: then it is refused, never stored plain).
	if err := raftfsm.SealWebhookURL(a.keys.Sealer, &w); err != nil {
		return err
	}
	_, err := a.apply(ctx, &raftfsm.PutSealedWebhook{At: a.now(), Webhook: w})
	return err
}

// DeleteWebhook removes a notification target.
func (a *Agent) DeleteWebhook(ctx context.Context, id string) error {
	_, err := a.apply(ctx, &raftfsm.DeleteWebhook{At: a.now(), ID: id})
	return err
}

// PutRegistry seals and stores registry credentials.
func (a *Agent) PutRegistry(ctx context.Context, req control.RegistryRequest) error {
	if req.Password == "" {
		return fmt.Errorf("%w: registry %s: no password", raftfsm.ErrInvalid, req.Registry)
	}
	pw, err := raftfsm.Seal(a.keys.Sealer, raftfsm.RegistryLabel(req.Registry), []byte(req.Password))
	if err != nil {
		return err
	}
	_, err = a.apply(ctx, &raftfsm.PutRegistry{At: a.now(), Credential: raftfsm.RegistryCredential{Registry: req.Registry, Username: req.Username, Password: pw}})
	return err
}

// DeleteRegistry removes registry credentials.
func (a *Agent) DeleteRegistry(ctx context.Context, registry string) error {
	_, err := a.apply(ctx, &raftfsm.DeleteRegistry{At: a.now(), Registry: registry})
	return err
}

// ExportState exports the deployments without any secret (see
// raftfsm.ExportDocument.DropSecrets); with plainSecrets the sealed secrets
// are opened instead, so the document can be imported into another cluster
// (the CLI seals such a document with a passphrase before writing it).
func (a *Agent) ExportState(ctx context.Context, plainSecrets bool) (raftfsm.ExportDocument, error) {
	var doc raftfsm.ExportDocument
	a.fsm.View(func(s *raftfsm.State) { doc = raftfsm.Export(s, a.now()) })
	if !plainSecrets {
		doc.DropSecrets()
		return doc, nil
	}
	for i, spec := range doc.Services {
		key := raftfsm.ServiceKey(spec.Workspace, spec.Project, spec.Env, spec.Service)
		plain, err := raftfsm.OpenSecrets(a.keys.Sealer, key, spec)
		if err != nil {
			return doc, err
		}
		if len(plain) > 0 {
			doc.Services[i].Secrets, doc.Services[i].SealedSecrets = plain, nil
		}
	}
	for i, w := range doc.Webhooks {
		u, err := raftfsm.WebhookURL(a.keys.Sealer, w)
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
func (a *Agent) ImportState(ctx context.Context, doc raftfsm.ExportDocument) (raftfsm.ImportResult, error) {
	if !a.store.IsLeader() {
		return raftfsm.ImportResult{}, control.ErrNotLeader
	}
	if err := doc.Validate(); err != nil {
		return raftfsm.ImportResult{}, err
	}
	cmd := &raftfsm.ImportState{At: a.now(), Placements: map[string][]raftfsm.Assignment{}, DeployIDs: map[string]string{}}
	var prepErr error
	for _, r := range doc.Registries {
		if _, err := raftfsm.Open(a.keys.Sealer, raftfsm.RegistryLabel(r.Registry), r.Password); err != nil {
			return raftfsm.ImportResult{}, fmt.Errorf("%w: registry %s: its password was sealed by another cluster; remove it from the document and add it again here", raftfsm.ErrInvalid, r.Registry)
		}
	}
	a.fsm.View(func(s *raftfsm.State) {
		placeState := raftfsm.NewState()
		placeState.Nodes = s.Nodes
		for i := range doc.Services {
			spec := doc.Services[i].Clone()
			spec.Normalize()
			key := raftfsm.ServiceKey(spec.Workspace, spec.Project, spec.Env, spec.Service)
			for name, v := range spec.SealedSecrets {
				if _, err := raftfsm.Open(a.keys.Sealer, raftfsm.SecretLabel(key, name), v); err != nil {
					prepErr = fmt.Errorf("%w: %s: secret %s was sealed by another cluster; export it with plain secrets", raftfsm.ErrInvalid, key, name)
					return
				}
			}
			if err := raftfsm.SealSecrets(a.keys.Sealer, key, &spec); err != nil {
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
			cmd.DeployIDs[key] = newID("imp")
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
			if _, err := raftfsm.WebhookURL(a.keys.Sealer, *w); err != nil {
				return raftfsm.ImportResult{}, fmt.Errorf("%w: webhook %s: its URL was sealed by another cluster; export it with plain secrets", raftfsm.ErrInvalid, w.ID)
			}
			continue
		}
		if err := a.checkProto(ctx, raftfsm.CmdPutSealedWebhook); err != nil {
			return raftfsm.ImportResult{}, fmt.Errorf("import webhook %s sealed: %w", w.ID, err)
		}
		if err := raftfsm.SealWebhookURL(a.keys.Sealer, w); err != nil {
			return raftfsm.ImportResult{}, err
		}
	}
	cmd.Document = doc
	v, err := a.apply(ctx, cmd)
	if err != nil {
		return raftfsm.ImportResult{}, err
	}
	a.kickLeader()
	res, _ := v.(raftfsm.ImportResult)
	return res, nil
}

// reportCommands are the command types agents send to the leader.
var reportCommands = []raftfsm.CommandType{
	raftfsm.CmdReportInstances, raftfsm.CmdReportHealth, raftfsm.CmdRecordCronRun, raftfsm.CmdPutBuildContext, raftfsm.CmdAppendEvent,
	raftfsm.CmdPutSnapshot, raftfsm.CmdRecordTokenUse, raftfsm.CmdPutImage,
}

// Commit applies an agent's report on the leader.
func (a *Agent) Commit(ctx context.Context, cmd raftfsm.Command) (any, error) {
	if !slices.Contains(reportCommands, cmd.Type()) {
		return nil, fmt.Errorf("%w: %s is not an agent report", raftfsm.ErrInvalid, cmd.Type())
	}
	return a.apply(ctx, cmd)
}

// now is the leader's clock, the only one commands read.
func (a *Agent) now() time.Time { return time.Now().UTC() }

// errorIsRetryable tells whether a write can be retried on another leader.
func errorIsRetryable(err error) bool {
	return errors.Is(err, control.ErrNotLeader) || errors.Is(err, control.ErrNoLeader)
}
