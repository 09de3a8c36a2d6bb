package controller

import (
	"bytes"
	"crypto/cipher"
	"encoding/json"
	"maps"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// unchangedDeploy reports whether committing a prepared deploy (workspace
// resolved, secrets sealed, slots placed) would change nothing: the service
// exists with the same effective spec, every slot stays on the node it is
// on, and its last deploy did not fail (a failed one is tried again). The
// leader then commits nothing and no container is replaced, as `docker
// compose up` leaves an unchanged service alone. Secrets are compared
// opened, since each sealing draws a fresh nonce. It runs outside Apply,
// on the leader, before anything is proposed.
func unchangedDeploy(s *raftfsm.State, sealer cipher.AEAD, cmd *raftfsm.DeployService) (raftfsm.DeployResult, bool) {
	key := raftfsm.ServiceKey(cmd.WorkspaceID, cmd.Spec.Project, cmd.Spec.Env, cmd.Spec.Service)
	svc, ok := s.Services[key]
	if !ok || svc.Generation == 0 {
		return raftfsm.DeployResult{}, false
	}
	if cmd.ExpectGeneration != 0 && cmd.ExpectGeneration != svc.Generation {
		return raftfsm.DeployResult{}, false // Apply answers the conflict
	}
	if d, ok := s.Deploys[svc.LastDeploy]; ok {
		if d.Status == raftfsm.DeployFailed {
			return raftfsm.DeployResult{}, false
		}
	} else if svc.LiveGeneration != svc.Generation {
		return raftfsm.DeployResult{}, false
	}
	if !sameSpec(sealer, key, svc.Spec, cmd.Spec, cmd.WorkspaceID) {
		return raftfsm.DeployResult{}, false
	}
	ins := s.ServiceInstances(key)
	if len(ins) != len(cmd.Placement) {
		return raftfsm.DeployResult{}, false
	}
	for _, a := range cmd.Placement {
		in, ok := s.Instances[raftfsm.InstanceID(key, a.Slot)]
		if !ok || in.Node != a.Node {
			return raftfsm.DeployResult{}, false
		}
	}
	return raftfsm.DeployResult{Service: key, WorkspaceID: cmd.WorkspaceID, Generation: svc.Generation, DeployID: svc.LastDeploy, Unchanged: true}, true
}

// sameSpec compares the deployed spec with a new one as Apply would store
// it (workspace id, normalized), secrets by their plain values.
func sameSpec(sealer cipher.AEAD, key string, deployed, next raftfsm.ServiceSpec, workspaceID string) bool {
	a, b := deployed.Clone(), next.Clone()
	b.Workspace = workspaceID
	a.Normalize()
	b.Normalize()
	sa, errA := raftfsm.OpenSecrets(sealer, key, a)
	sb, errB := raftfsm.OpenSecrets(sealer, key, b)
	if errA != nil || errB != nil {
		return false
	}
	maps.Copy(sb, b.Secrets)
	if !maps.Equal(sa, sb) || len(a.Secrets) > 0 {
		return false
	}
	a.Secrets, a.SealedSecrets, b.Secrets, b.SealedSecrets = nil, nil, nil, nil
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}
