package api

import (
	"slices"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Answer and request types of the API that control does not define.

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
		out.SealedSecrets[k] = control.SecretSet
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
		return control.SecretSet
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
