package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/mesh"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// The sample dashboard (docs/grafana-dashboard.json) may only use metric
// names and labels this package exports: renaming one here fails this test.
func TestDashboardUsesExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatalf("read the dashboard: %v", err)
	}
	var dash struct {
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
		Annotations struct {
			List []struct {
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not valid JSON: %v", err)
	}

	f := scrapeHandler(t, fullyFed(t).Handler())
	exprs := map[string]string{}
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs[p.Title] += tg.Expr + "\n"
		}
	}
	for _, v := range dash.Templating.List {
		exprs["variable"] += v.Definition + "\n"
	}
	for _, a := range dash.Annotations.List {
		exprs["annotation"] += a.Expr + "\n"
	}

	nameRE := regexp.MustCompile(`\bdropmesh_[a-z_]+`)
	byRE := regexp.MustCompile(`\b(?:by|on)\s*\(([^)]*)\)`)
	matcherRE := regexp.MustCompile(`[{,]\s*([a-z_]+)\s*(?:=~|!~|!=|=)`)
	used := 0
	for title, expr := range exprs {
		var labels []string // the labels of the families this query reads
		for _, name := range nameRE.FindAllString(expr, -1) {
			fam, ok := f[name]
			if !ok {
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if base, cut := strings.CutSuffix(name, suf); cut {
						if fam, ok = f[base]; ok {
							labels = append(labels, "le")
						}
					}
				}
			}
			if !ok {
				t.Errorf("panel %q uses %s, which the agent does not export", title, name)
				continue
			}
			used++
			for _, m := range fam.GetMetric() {
				for _, lp := range m.GetLabel() {
					labels = append(labels, lp.GetName())
				}
			}
		}
		var want []string
		for _, m := range byRE.FindAllStringSubmatch(expr, -1) {
			for _, l := range strings.Split(m[1], ",") {
				if l = strings.TrimSpace(l); l != "" {
					want = append(want, l)
				}
			}
		}
		for _, m := range matcherRE.FindAllStringSubmatch(expr, -1) {
			want = append(want, m[1])
		}
		for _, l := range want {
			if !slices.Contains(labels, l) {
				t.Errorf("panel %q groups or filters by label %q, which its metrics do not have", title, l)
			}
		}
	}
	if used < 20 {
		t.Errorf("only %d metric references found in the dashboard: the parser is broken", used)
	}
}

// fullyFed is a Metrics with every family present.
func fullyFed(t *testing.T) *Metrics {
	src := newFakeSource()
	src.set(func(f *fakeSource) {
		f.stats = map[string]string{"state": "Leader", "term": "3", "last_log_index": "9", "commit_index": "9", "applied_index": "9",
			"fsm_pending": "0", "last_snapshot_index": "0", "num_peers": "2", "last_contact": "0"}
		f.members = []mesh.Member{{ID: "n1", Status: mesh.StatusAlive, Meta: mesh.NodeMeta{Version: "1.0.0", Proto: 40}}}
		f.state.Instances["i"] = &raftfsm.Instance{ID: "i", Node: "n1", Phase: raftfsm.PhaseReady, Health: raftfsm.HealthHealthy}
	})
	m := newTestMetrics(t, src, "n1")
	m.ObserveCommit(time.Millisecond)
	m.ObserveApply(time.Microsecond)
	m.ObserveProbeRTT(time.Millisecond)
	m.ObserveReconcile(time.Second)
	m.observeAPI("GET", "/v1/nodes", 200, time.Millisecond)
	return m
}
