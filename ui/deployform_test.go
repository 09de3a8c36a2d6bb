package ui

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/raftfsm"
)

func TestDeployFormSpec(t *testing.T) {
	f := deployFormFrom(url.Values{"workspace": {" default "}, "project": {"shop"}, "env": {"prod"}, "service": {"web"},
		"kind": {"service"}, "image": {"registry.example.com/shop/web:1.4"}, "port": {"8080"},
		"hosts": {"shop.example.com, www.example.com\napi.example.com"}, "replicas": {"3"}, "health_path": {"/health"},
		"vars": {"# comment\nLOG_LEVEL=info\r\n\nURL=http://x/?a=b=c\n"}, "secrets": {"DB_PASSWORD=s3cret"},
		"nodes": {"node-1", "node-2", "node-1"}})
	spec, err := f.spec()
	if err != nil {
		t.Fatal(err)
	}
	if spec.Replicas != 2 || strings.Join(spec.Nodes, ",") != "node-1,node-2" {
		t.Errorf("chosen nodes set the replicas: %d %v", spec.Replicas, spec.Nodes)
	}
	if strings.Join(spec.Hosts, " ") != "shop.example.com www.example.com api.example.com" {
		t.Errorf("hosts %v", spec.Hosts)
	}
	if spec.Vars["LOG_LEVEL"] != "info" || spec.Vars["URL"] != "http://x/?a=b=c" || len(spec.Vars) != 2 {
		t.Errorf("vars %v", spec.Vars)
	}
	if spec.Secrets["DB_PASSWORD"] != "s3cret" || spec.Port != 8080 || spec.Health.Path != "/health" || spec.Workspace != "default" {
		t.Errorf("spec %+v", spec)
	}
	spec.Normalize()
	if err := spec.Validate(); err != nil {
		t.Errorf("the form's spec does not validate: %v", err)
	}

	// Empty optional fields stay empty; the node's defaults apply.
	spec, err = deployFormFrom(url.Values{"project": {"p"}, "service": {"s"}, "image": {"redis:7"}}).spec()
	if err != nil || spec.Port != 0 || spec.Replicas != 0 || spec.Vars != nil || spec.Secrets != nil || spec.Hosts != nil {
		t.Errorf("empty fields: %+v %v", spec, err)
	}
}

func TestDeployFormRefusesBadSyntax(t *testing.T) {
	for _, c := range []struct {
		field, value, want string
	}{
		{"port", "eighty", `port "eighty"`},
		{"port", "70000", `port "70000"`},
		{"replicas", "0", `replicas "0"`},
		{"replicas", "-1", `replicas "-1"`},
		{"vars", "A=1\nB", "environment line 2: want KEY=value"},
		{"vars", "=x", "environment line 1: want KEY=value"},
		{"vars", "1A=x", "environment line 1: environment variable name"},
		{"secrets", "K=1\nK=2", "secrets line 2: K is set twice"},
	} {
		_, err := deployFormFrom(url.Values{c.field: {c.value}}).spec()
		if !errors.Is(err, raftfsm.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%q: %v, want %q", c.field, c.value, err, c.want)
		}
	}
}

func TestDeployFormOfService(t *testing.T) {
	st := raftfsm.NewState()
	st.Workspaces[testWS] = &raftfsm.Workspace{ID: testWS, Name: "team"}
	svc := &raftfsm.Service{Key: testWS + "/shop/prod/web", WorkspaceID: testWS, Project: "shop", Env: "prod", Name: "web",
		Spec: raftfsm.ServiceSpec{Kind: raftfsm.KindService, Image: "web:1", Port: 80, Hosts: []string{"a.example.com"}, Replicas: 2,
			Vars: map[string]string{"B": "2", "A": "1"}, SealedSecrets: map[string]raftfsm.Sealed{"TOKEN": "v1:xx"}}}
	f := deployFormOf(st, svc)
	if f.Workspace != "team" || f.Vars != "A=1\nB=2" || f.Port != "80" || f.Replicas != "2" || f.Secrets != "" ||
		strings.Join(f.SecretNames, ",") != "TOKEN" || f.Editing != "team/shop/prod/web" {
		t.Errorf("form %+v", f)
	}
	// Round trip: the form gives back the spec (without the secrets, which the node keeps).
	spec, err := f.spec()
	if err != nil || spec.Image != "web:1" || spec.Port != 80 || spec.Vars["B"] != "2" || spec.Secrets != nil {
		t.Errorf("round trip %+v %v", spec, err)
	}
}
