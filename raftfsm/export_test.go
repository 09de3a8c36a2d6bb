package raftfsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func exportFixture(t *testing.T) (*fixture, ExportDocument) {
	f := newFixture(t)
	f.deploy("d0", ServiceSpec{Project: "shop", Env: "prod", Service: "redis", Kind: KindStateful, Image: "redis:7", Port: 6379}, "node-1")
	web := webSpec()
	web.Uses = []string{"redis"}
	f.deploy("d1", web, "node-1", "node-2")
	var doc ExportDocument
	f.view(func(s *State) { doc = Export(s, t0) })
	return f, doc
}

func TestExportImportRoundTrip(t *testing.T) {
	_, doc := exportFixture(t)
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	read, err := ReadExport(bytes.NewReader(data), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(read.Services) != 2 || read.Workspaces[0].ID != testWS || read.Kind != ExportKind {
		t.Fatalf("document %+v", read)
	}

	g := newFixture(t)
	placements := map[string][]Assignment{}
	ids := map[string]string{}
	for _, spec := range read.Services {
		key := ServiceKey(spec.Workspace, spec.Project, spec.Env, spec.Service)
		for slot := 0; slot < spec.Replicas; slot++ {
			placements[key] = append(placements[key], Assignment{Slot: slot, Node: "node-3"})
		}
		ids[key] = "imp-" + spec.Service
	}
	res := g.must(&ImportState{At: t0, Document: read, Placements: placements, DeployIDs: ids}).(ImportResult)
	if len(res.Services) != 2 {
		t.Fatalf("imported %v", res.Services)
	}
	g.view(func(s *State) {
		web := s.Services[ServiceKey(testWS, "shop", "prod", "web")]
		if web == nil || web.Generation != 1 || s.Deploys["imp-web"].Status != DeployRolling || len(s.ServiceInstances(web.Key)) != 2 {
			t.Fatalf("imported state %+v", s.Services)
		}
		if s.Users["admin"] == nil || len(s.Nodes) != 3 {
			t.Fatal("users or nodes lost")
		}
	})
}

func TestImportRefusesBadDocuments(t *testing.T) {
	_, doc := exportFixture(t)
	g := newFixture(t)
	place := func(d ExportDocument) map[string][]Assignment {
		out := map[string][]Assignment{}
		for _, s := range d.Services {
			out[ServiceKey(s.Workspace, s.Project, s.Env, s.Service)] = []Assignment{{Slot: 0, Node: "node-1"}, {Slot: 1, Node: "node-2"}}[:max(s.Replicas, 1)]
		}
		return out
	}
	ids := func(d ExportDocument) map[string]string {
		out := map[string]string{}
		for _, s := range d.Services {
			out[ServiceKey(s.Workspace, s.Project, s.Env, s.Service)] = "x-" + s.Service
		}
		return out
	}
	cases := map[string]func(d *ExportDocument){
		"format":            func(d *ExportDocument) { d.Format = 2 },
		"kind":              func(d *ExportDocument) { d.Kind = "something" },
		"unknown workspace": func(d *ExportDocument) { d.Services[0].Workspace = "ffffff" },
		"bad host":          func(d *ExportDocument) { d.Services[1].Hosts = []string{"bad;host"} },
		"duplicate service": func(d *ExportDocument) { d.Services = append(d.Services, d.Services[1]) },
		"uses missing":      func(d *ExportDocument) { d.Services = d.Services[1:] },
		"plain secrets":     func(d *ExportDocument) { d.Services[1].Secrets = map[string]string{"A": "b"} },
		"no admin":          func(d *ExportDocument) { d.Users[0].Role = RoleViewer },
	}
	for name, mut := range cases {
		t.Run(name, func(t *testing.T) {
			d := doc
			d.Services = append([]ServiceSpec(nil), doc.Services...)
			for i := range d.Services {
				d.Services[i] = d.Services[i].Clone()
			}
			d.Users = append([]User(nil), doc.Users...)
			mut(&d)
			err := g.refuse(&ImportState{At: t0, Document: d, Placements: place(d), DeployIDs: ids(d)})
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err %v, want ErrInvalid", err)
			}
		})
	}
	// A placement on a node that does not exist refuses the whole import.
	bad := place(doc)
	bad[ServiceKey(testWS, "shop", "prod", "redis")] = []Assignment{{Slot: 0, Node: "ghost"}}
	g.refuse(&ImportState{At: t0, Document: doc, Placements: bad, DeployIDs: ids(doc)})

	// Deploy ids: one per service, none already in use.
	same := ids(doc)
	for k := range same {
		same[k] = "x-same"
	}
	if err := g.refuse(&ImportState{At: t0, Document: doc, Placements: place(doc), DeployIDs: same}); !strings.Contains(err.Error(), "given to both") {
		t.Fatalf("one deploy id for two services: %v", err)
	}
	g.deploy("taken", webSpec(), "node-1", "node-2")
	reused := ids(doc)
	for k := range reused {
		reused[k] = "taken"
		break
	}
	if err := g.refuse(&ImportState{At: t0, Document: doc, Placements: place(doc), DeployIDs: reused}); !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("a deploy id already in use: %v", err)
	}
}

func TestReadExportStrict(t *testing.T) {
	if _, err := ReadExport(strings.NewReader(`{"kind":"dropmesh-state","format":1,"extra":true}`), 1<<20); err == nil || !strings.Contains(err.Error(), `unknown field "extra"`) {
		t.Fatalf("err %v", err)
	}
	if _, err := ReadExport(strings.NewReader(strings.Repeat(" ", 100)), 10); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err %v", err)
	}
}
