package ui

import (
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Onboarding steps, in order.
const (
	stepDigitalOcean = "digitalocean"
	stepSnapshot     = "snapshot"
	stepCloudflare   = "cloudflare"
	stepDone         = "done"
)

// commonRegions are offered when the cluster has no region yet.
var commonRegions = []string{"nyc1", "nyc3", "sfo3", "ams3", "fra1", "lon1", "sgp1", "tor1", "blr1", "syd1"}

// setupView is the onboarding page.
type setupView struct {
	Step    string
	Steps   []setupStep
	Base    []snapshotRow
	Regions []string
	Region  string
	Domain  string
	UIHost  string
}

// setupStep is one line of the onboarding checklist.
type setupStep struct {
	ID, Label string
	Done      bool
	Current   bool
}

// setupStepOf decides where the onboarding stands: the DigitalOcean token
// first, then the base snapshot's progress (which the user may skip past),
// then the Cloudflare token and domain.
func setupStepOf(st *raftfsm.State, wantCloudflare bool) string {
	set := st.Settings
	switch {
	case set.LocalMode:
		return stepDone
	case set.DOToken == "":
		return stepDigitalOcean
	case set.CFToken != "" && set.Domain != "":
		return stepDone
	case wantCloudflare || baseReady(st):
		return stepCloudflare
	}
	return stepSnapshot
}

func baseReady(st *raftfsm.State) bool {
	for _, sn := range st.Cloud.Snapshots {
		if sn.Kind == raftfsm.SnapshotBase && sn.Status == raftfsm.SnapshotReady {
			return true
		}
	}
	return false
}

func (s *server) setupPage(c *gin.Context) {
	p := s.newPage(c, "setup")
	p.URL = canonicalURL(c.Request)
	s.buildSetup(c, p)
	if v := p.Data.(setupView); v.Step == stepDone {
		if isFragment(c.Request) {
			c.Header(reloadHeader, "1") // the script reloads, and the reload lands on the overview
			c.Status(http.StatusNoContent)
			return
		}
		c.Redirect(http.StatusSeeOther, "/")
		return
	}
	s.render(c, http.StatusOK, p)
}

func (s *server) buildSetup(c *gin.Context, p *pageData) error {
	p.Title = "Set up the cluster"
	v, _ := p.Data.(setupView)
	s.node.View(func(st *raftfsm.State) {
		v.Step = setupStepOf(st, c.Query("step") == stepCloudflare || v.Step == stepCloudflare)
		set := st.Settings
		v.Regions = slices.Clone(set.Regions)
		if len(v.Regions) == 0 {
			v.Regions = commonRegions
		}
		if v.Region == "" {
			v.Region = v.Regions[0]
		}
		if v.Domain == "" {
			v.Domain = set.Domain
		}
		if v.UIHost == "" {
			v.UIHost = set.UIHost
		}
		for _, name := range raftfsm.SortedKeys(st.Cloud.Snapshots) {
			if sn := st.Cloud.Snapshots[name]; sn.Kind == raftfsm.SnapshotBase {
				v.Base = append(v.Base, snapshotRowOf(sn))
			}
		}
		v.Steps = []setupStep{
			{ID: stepDigitalOcean, Label: "DigitalOcean token", Done: set.DOToken != ""},
			{ID: stepSnapshot, Label: "Base snapshot", Done: baseReady(st)},
			{ID: stepCloudflare, Label: "Cloudflare token and domain", Done: set.CFToken != "" && set.Domain != ""},
		}
		for i := range v.Steps {
			v.Steps[i].Current = v.Steps[i].ID == v.Step
		}
	})
	p.Data = v
	return nil
}

// setupDigitalOcean stores the DigitalOcean token (and the first region
// when the cluster has none).
func (s *server) setupDigitalOcean(c *gin.Context) {
	ctx, cancel := s.actionContext(c)
	defer cancel()
	token := strings.TrimSpace(c.PostForm("do_token"))
	region := strings.TrimSpace(c.PostForm("region"))
	req := control.SettingsRequest{DOToken: &token}
	var regions []string
	s.node.View(func(st *raftfsm.State) { regions = slices.Clone(st.Settings.Regions) })
	err := func() error {
		if token == "" {
			return invalidf("DigitalOcean token: paste a personal access token with read and write scope")
		}
		if len(regions) == 0 && region != "" {
			if err := raftfsm.ValidateRegion(region); err != nil {
				return err
			}
			req.Regions = []string{region}
		}
		return s.node.UpdateSettings(ctx, req)
	}()
	if err != nil {
		s.formFailed(c, "setup", "/setup", stepDigitalOcean, err, setupView{Region: region}, s.buildSetup)
		return
	}
	s.redirectOK(c, "/setup", "DigitalOcean token saved. The leader now builds the base snapshot.")
}

// setupCloudflare stores the Cloudflare token, the domain and the UI's host
// name (mesh.<domain> unless given).
func (s *server) setupCloudflare(c *gin.Context) {
	ctx, cancel := s.actionContext(c)
	defer cancel()
	token := strings.TrimSpace(c.PostForm("cf_token"))
	domain := strings.ToLower(strings.TrimSpace(c.PostForm("domain")))
	uiHost := strings.ToLower(strings.TrimSpace(c.PostForm("ui_host")))
	err := func() error {
		if token == "" {
			return invalidf("Cloudflare token: paste an API token that can edit DNS in the zone")
		}
		if domain == "" {
			return invalidf("domain: give the Cloudflare zone, such as example.com")
		}
		if err := raftfsm.ValidateHostname(domain, false); err != nil {
			return err
		}
		if uiHost == "" {
			uiHost = "mesh." + domain
		}
		return s.node.UpdateSettings(ctx, control.SettingsRequest{CFToken: &token, Domain: &domain, UIHost: &uiHost})
	}()
	if err != nil {
		s.formFailed(c, "setup", "/setup?step=cloudflare", stepCloudflare, err,
			setupView{Step: stepCloudflare, Domain: domain, UIHost: c.PostForm("ui_host")}, s.buildSetup)
		return
	}
	s.redirectOK(c, "/", "Setup complete. The UI will also answer at http://"+uiHost+" once its DNS record is in place.")
}
