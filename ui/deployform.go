package ui

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// deployForm is the deploy form's fields as the user typed them, so a
// refused form comes back filled in.
type deployForm struct {
	set        bool
	Workspace  string
	Project    string
	Env        string
	Service    string
	Kind       string
	Image      string
	Port       string
	Hosts      string
	Vars       string
	Secrets    string
	Replicas   string
	Nodes      []string
	Schedule   string
	HealthPath string
	// SecretNames are the secrets the service has; an empty secrets field keeps them.
	SecretNames []string
	// Editing names the service the form was filled from.
	Editing string
}

func defaultDeployForm() deployForm {
	return deployForm{set: true, Workspace: raftfsm.DefaultWorkspaceName, Env: raftfsm.DefaultEnvironment,
		Kind: string(raftfsm.KindService), Replicas: "1"}
}

// deployFormOf fills the form from a deployed service (edit and redeploy).
// Secrets stay sealed: the form lists their names only.
func deployFormOf(st *raftfsm.State, svc *raftfsm.Service) deployForm {
	spec := svc.Spec
	f := deployForm{set: true, Project: svc.Project, Env: svc.Env, Service: svc.Name, Kind: string(spec.Kind), Image: spec.Image,
		Hosts: strings.Join(spec.Hosts, ", "), Nodes: slices.Clone(spec.Nodes), Schedule: spec.Schedule, HealthPath: spec.Health.Path,
		Replicas: strconv.Itoa(spec.Replicas), SecretNames: raftfsm.SortedKeys(spec.SealedSecrets), Editing: displayName(st, svc.Key)}
	if ws, ok := st.Workspaces[svc.WorkspaceID]; ok {
		f.Workspace = ws.Name
	}
	if spec.Port > 0 {
		f.Port = strconv.Itoa(spec.Port)
	}
	var vars []string
	for _, k := range raftfsm.SortedKeys(spec.Vars) {
		vars = append(vars, k+"="+spec.Vars[k])
	}
	f.Vars = strings.Join(vars, "\n")
	return f
}

// deployFormFrom reads the submitted fields.
func deployFormFrom(v url.Values) deployForm {
	get := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	f := deployForm{set: true, Workspace: get("workspace"), Project: get("project"), Env: get("env"), Service: get("service"),
		Kind: get("kind"), Image: get("image"), Port: get("port"), Hosts: get("hosts"), Vars: v.Get("vars"), Secrets: v.Get("secrets"),
		Replicas: get("replicas"), Schedule: get("schedule"), HealthPath: get("health_path"), Editing: get("editing")}
	for _, n := range v["nodes"] {
		if n = strings.TrimSpace(n); n != "" && !slices.Contains(f.Nodes, n) {
			f.Nodes = append(f.Nodes, n)
		}
	}
	if names := get("secret_names"); names != "" {
		f.SecretNames = strings.Split(names, ",")
	}
	return f
}

// spec builds the service spec the form describes. It checks the form's
// own syntax (numbers, KEY=value lines); the values are validated by the
// node, the same way for the UI, the API and the CLI.
func (f deployForm) spec() (raftfsm.ServiceSpec, error) {
	spec := raftfsm.ServiceSpec{Workspace: f.Workspace, Project: f.Project, Env: f.Env, Service: f.Service,
		Kind: raftfsm.Kind(f.Kind), Image: f.Image, Schedule: f.Schedule, Nodes: slices.Clone(f.Nodes)}
	spec.Health.Path = f.HealthPath
	var err error
	if spec.Port, err = formInt("port", f.Port, 0, 65535); err != nil {
		return spec, err
	}
	if len(spec.Nodes) > 0 {
		spec.Replicas = len(spec.Nodes) // picking nodes sets the count
	} else if spec.Replicas, err = formInt("replicas", f.Replicas, 1, raftfsm.MaxReplicas); err != nil {
		return spec, err
	}
	if hosts := strings.FieldsFunc(f.Hosts, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' }); len(hosts) > 0 {
		spec.Hosts = hosts
	}
	if spec.Vars, err = parseKeyValues("environment", f.Vars); err != nil {
		return spec, err
	}
	if spec.Secrets, err = parseKeyValues("secrets", f.Secrets); err != nil {
		return spec, err
	}
	return spec, nil
}

// formInt reads an optional number field ("" is 0).
func formInt(field, s string, lo, hi int) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w: %s %q: want a number from %d to %d", raftfsm.ErrInvalid, field, s, lo, hi)
	}
	return n, nil
}

// parseKeyValues reads KEY=value lines; blank lines and lines starting with
// '#' are skipped. The value is everything after the first '='.
func parseKeyValues(field, text string) (map[string]string, error) {
	var out map[string]string
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: %s line %d: want KEY=value", raftfsm.ErrInvalid, field, i+1)
		}
		if err := raftfsm.ValidateEnvVarName(k); err != nil {
			return nil, fmt.Errorf("%w: %s line %d: %s", raftfsm.ErrInvalid, field, i+1, plainMessage(err))
		}
		if out == nil {
			out = map[string]string{}
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%w: %s line %d: %s is set twice", raftfsm.ErrInvalid, field, i+1, k)
		}
		out[k] = v
	}
	return out, nil
}
