// Package deployplan turns a deploy request into the DeployService command
// the leader commits: it resolves the workspace, checks hosts, the build
// context and sealed secrets against the state, seals the plain secrets and
// places every slot (Place). Its functions are pure over a *raftfsm.State
// read under the FSM's view lock: ids, the clock and the sealing key come
// in from the caller, so the agent's controller and the API's test fake
// (node/api/apitest) prepare a deploy the same way.
package deployplan

import (
	"crypto/cipher"
	"fmt"
	"slices"
	"time"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// Request is what a deploy carries besides the state it is prepared
// against. Spec must be normalised and validated (ServiceSpec.Normalize,
// Validate) already.
type Request struct {
	Spec raftfsm.ServiceSpec
	// Actor names who asked (a user, "api"); ExpectGeneration, when set,
	// makes the FSM refuse the deploy if the service has moved on.
	Actor            string
	ExpectGeneration int64
	// At and DeployID are the command's time stamp and id.
	At       time.Time
	DeployID string
	// NewWorkspaceID gives a candidate id for a workspace the deploy
	// creates; FreeWorkspaceID asks until one is not taken.
	NewWorkspaceID func() string
	// Sealer seals the spec's plain secrets and opens sealed ones to check
	// they belong to this cluster and service.
	Sealer cipher.AEAD
}

// Prepare resolves the workspace, seals the secrets, checks the hosts and
// the build context and places the slots: everything the command must
// carry. Bad input is raftfsm.ErrInvalid, a clash with the state
// ErrConflict, a missing workspace ErrNotFound.
func Prepare(s *raftfsm.State, req Request) (*raftfsm.DeployService, error) {
	spec := req.Spec
	cmd := &raftfsm.DeployService{At: req.At, DeployID: req.DeployID, Actor: req.Actor, ExpectGeneration: req.ExpectGeneration}
	if ws := s.ResolveWorkspace(spec.Workspace); ws != nil {
		cmd.WorkspaceID = ws.ID
	} else {
		if raftfsm.IsWorkspaceID(spec.Workspace) {
			return nil, fmt.Errorf("workspace %s: %w", spec.Workspace, raftfsm.ErrNotFound)
		}
		cmd.WorkspaceID, cmd.WorkspaceName = FreeWorkspaceID(s, req.NewWorkspaceID), spec.Workspace
	}
	key := raftfsm.ServiceKey(cmd.WorkspaceID, spec.Project, spec.Env, spec.Service)
	if s.Settings.UIHost != "" && slices.Contains(spec.Hosts, s.Settings.UIHost) {
		return nil, fmt.Errorf("%w: hosts: %s is the cluster's UI host", raftfsm.ErrInvalid, s.Settings.UIHost)
	}
	for _, other := range s.Services {
		if other.Key == key {
			continue
		}
		for _, h := range spec.Hosts {
			if slices.Contains(other.Spec.Hosts, h) {
				return nil, fmt.Errorf("%w: hosts: %s is already served by %s", raftfsm.ErrConflict, h, other.Key)
			}
		}
	}
	if spec.Build != "" {
		if _, ok := s.Contexts[spec.Build]; !ok {
			return nil, fmt.Errorf("%w: build context %s was not uploaded (POST /v1/contexts first)", raftfsm.ErrInvalid, spec.Build)
		}
	}
	for name, v := range spec.SealedSecrets {
		if _, err := raftfsm.Open(req.Sealer, raftfsm.SecretLabel(key, name), v); err != nil {
			return nil, fmt.Errorf("%w: secret %s is sealed for another cluster or service; send it in plain text under secrets", raftfsm.ErrInvalid, name)
		}
	}
	// A spec without secrets keeps the ones already deployed.
	if prev, ok := s.Services[key]; ok && spec.Secrets == nil && spec.SealedSecrets == nil {
		spec.SealedSecrets = prev.Spec.Clone().SealedSecrets
	}
	if err := raftfsm.SealSecrets(req.Sealer, key, &spec); err != nil {
		return nil, err
	}
	placement, err := Place(s, key, spec)
	if err != nil {
		return nil, err
	}
	cmd.Spec, cmd.Placement = spec, placement
	return cmd, nil
}

// FreeWorkspaceID asks next for candidate ids until one is not in use
// (the agent's candidates are 3 random bytes in hex).
func FreeWorkspaceID(s *raftfsm.State, next func() string) string {
	for {
		id := next()
		if _, taken := s.Workspaces[id]; !taken {
			return id
		}
	}
}

// ResolveService turns a user's service name ("[workspace/]project/env/
// service") into its state key; an unknown workspace or service is
// raftfsm.ErrNotFound.
func ResolveService(s *raftfsm.State, name string) (string, error) {
	n, err := raftfsm.ParseServiceName(name)
	if err != nil {
		return "", err
	}
	return ResolveName(s, n)
}

// ResolveName is ResolveService for a name already parsed (the API reads
// one from its path).
func ResolveName(s *raftfsm.State, n raftfsm.ServiceName) (string, error) {
	ws := s.ResolveWorkspace(n.Workspace)
	if ws == nil {
		return "", fmt.Errorf("workspace %q: %w", n.Workspace, raftfsm.ErrNotFound)
	}
	key := raftfsm.ServiceKey(ws.ID, n.Project, n.Env, n.Service)
	if _, ok := s.Services[key]; !ok {
		return "", fmt.Errorf("service %s: %w", n, raftfsm.ErrNotFound)
	}
	return key, nil
}
