package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// builder fills a page's data; see views.go.
type builder func(c *gin.Context, p *pageData) error

// page serves a GET page.
func (s *server) page(name string, build builder) gin.HandlerFunc {
	return func(c *gin.Context) {
		p := s.newPage(c, name)
		p.URL = canonicalURL(c.Request)
		if err := build(c, p); err != nil {
			s.fail(c, err)
			return
		}
		s.render(c, http.StatusOK, p)
	}
}

// canonicalURL is the page's address without the fragment parameter: what
// the script fetches the main block from.
func canonicalURL(r *http.Request) string {
	q := r.URL.Query()
	q.Del("fragment")
	if len(q) == 0 {
		return r.URL.Path
	}
	return r.URL.Path + "?" + q.Encode()
}

// actionContext bounds a write. It does not end when the browser goes
// away: a write handed to raft should finish or fail on its own terms.
func (s *server) actionContext(c *gin.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(c.Request.Context()), s.cfg.ActionTimeout)
}

// formFailed shows page name again, at url, with the error next to form
// and the user's input (in data) kept.
func (s *server) formFailed(c *gin.Context, name, url, form string, err error, data any, build builder) {
	status := classify(err)
	if status >= 500 {
		s.logger.Warn("ui action failed", "path", c.Request.URL.Path, "err", err)
	}
	p := s.newPage(c, name)
	p.URL = url
	p.Data = data
	p.Errors[form] = userMessage(err)
	if berr := build(c, p); berr != nil {
		s.fail(c, err)
		return
	}
	s.render(c, status, p)
}

// actionFailed shows page name again with the error as an alert on top.
func (s *server) actionFailed(c *gin.Context, name, url string, err error, build builder) {
	status := classify(err)
	if status >= 500 {
		s.logger.Warn("ui action failed", "path", c.Request.URL.Path, "err", err)
	}
	p := s.newPage(c, name)
	p.URL = url
	p.Alert = userMessage(err)
	if berr := build(c, p); berr != nil {
		s.fail(c, err)
		return
	}
	s.render(c, status, p)
}

func actor(c *gin.Context) string {
	if s := sessionOf(c); s != nil {
		return s.User
	}
	return "ui"
}

// role is the signed-in user's role; none without a session.
func role(c *gin.Context) raftfsm.Role {
	if s := sessionOf(c); s != nil {
		return s.Role
	}
	return ""
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", raftfsm.ErrInvalid, fmt.Sprintf(format, args...))
}

// storeUpload stores the build context uploaded in field, if one was chosen.
func (s *server) storeUpload(ctx context.Context, c *gin.Context, field string) (string, bool, error) {
	file, hdr, err := c.Request.FormFile(field)
	if errors.Is(err, http.ErrMissingFile) || (err == nil && hdr.Size == 0) {
		if file != nil {
			file.Close()
		}
		return "", false, nil
	}
	if err != nil {
		return "", false, invalidf("build context: %v", err)
	}
	defer file.Close()
	info, err := s.node.StoreContext(ctx, file)
	if err != nil {
		return "", true, err
	}
	return info.Digest, true, nil
}

// deploy submits the deploy form (an image, or an uploaded build context).
func (s *server) deploy(c *gin.Context) {
	ctx, cancel := s.actionContext(c)
	defer cancel()
	form := deployFormFrom(c.Request.PostForm)
	res, err := func() (raftfsm.DeployResult, error) {
		spec, err := form.spec()
		if err != nil {
			return raftfsm.DeployResult{}, err
		}
		digest, uploaded, err := s.storeUpload(ctx, c, "context")
		switch {
		case err != nil:
			return raftfsm.DeployResult{}, err
		case uploaded && spec.Image != "":
			return raftfsm.DeployResult{}, invalidf("image and build context: give one, not both")
		case uploaded:
			spec.Build = digest
		}
		return s.node.Deploy(ctx, control.DeployRequest{Spec: spec, Actor: actor(c), Role: role(c)})
	}()
	if err != nil {
		s.formFailed(c, "services", "/services", "deploy", err, servicesView{Form: form}, s.buildServices)
		return
	}
	s.redirectOK(c, servicePath(res.Service), fmt.Sprintf("Deploying %s, generation %d.", s.display(res.Service), res.Generation))
}

// display is a service key as users write the name.
func (s *server) display(key string) string {
	var out string
	s.node.View(func(st *raftfsm.State) { out = displayName(st, key) })
	return out
}

// redeploy submits the service's current spec again as a new generation
// (its sealed secrets carry over).
func (s *server) redeploy(c *gin.Context) {
	key := serviceKeyOf(c)
	ctx, cancel := s.actionContext(c)
	defer cancel()
	var (
		spec  raftfsm.ServiceSpec
		gen   int64
		found bool
	)
	s.node.View(func(st *raftfsm.State) {
		if svc, ok := st.Services[key]; ok {
			spec, gen, found = svc.Spec.Clone(), svc.Generation, true
			spec.Workspace = svc.WorkspaceID
		}
	})
	if !found {
		s.fail(c, fmt.Errorf("service %s: %w", key, raftfsm.ErrNotFound))
		return
	}
	res, err := s.node.Deploy(ctx, control.DeployRequest{Spec: spec, Actor: actor(c), ExpectGeneration: gen, Role: role(c)})
	if err != nil {
		s.actionFailed(c, "service", servicePath(key), err, s.buildService)
		return
	}
	s.redirectOK(c, servicePath(key), fmt.Sprintf("Redeploying %s, generation %d.", s.display(key), res.Generation))
}

// restart restarts every instance of a service.
func (s *server) restart(c *gin.Context) {
	key := serviceKeyOf(c)
	ctx, cancel := s.actionContext(c)
	defer cancel()
	if err := s.node.RestartService(ctx, key, actor(c)); err != nil {
		s.actionFailed(c, "service", servicePath(key), err, s.buildService)
		return
	}
	s.redirectOK(c, servicePath(key), "Restarting every instance of "+s.display(key)+".")
}

// undeploy removes a service.
func (s *server) undeploy(c *gin.Context) {
	key := serviceKeyOf(c)
	name := s.display(key)
	ctx, cancel := s.actionContext(c)
	defer cancel()
	if err := s.node.Undeploy(ctx, key, actor(c)); err != nil {
		s.actionFailed(c, "service", servicePath(key), err, s.buildService)
		return
	}
	s.redirectOK(c, "/services", "Undeployed "+name+".")
}

// addNodes grows the cluster.
func (s *server) addNodes(c *gin.Context) {
	form := addNodesForm{Count: strings.TrimSpace(c.PostForm("count")), Region: strings.TrimSpace(c.PostForm("region"))}
	ctx, cancel := s.actionContext(c)
	defer cancel()
	ids, err := func() ([]string, error) {
		n, err := strconv.Atoi(form.Count)
		if err != nil || n < 1 {
			return nil, invalidf("new servers %q: want a number from 1", form.Count)
		}
		return s.node.AddNodes(ctx, control.AddNodesRequest{Count: n, Region: form.Region})
	}()
	if err != nil {
		s.formFailed(c, "infrastructure", "/infrastructure", "nodes", err, infraView{Form: form}, s.buildInfrastructure)
		return
	}
	s.redirectOK(c, "/infrastructure", fmt.Sprintf("Creating %d new server(s): %s.", len(ids), strings.Join(ids, ", ")))
}

func (s *server) removeNode(c *gin.Context) {
	id := c.Param("id")
	ctx, cancel := s.actionContext(c)
	defer cancel()
	if err := s.node.RemoveNode(ctx, id); err != nil {
		s.actionFailed(c, "infrastructure", "/infrastructure", err, s.buildInfrastructure)
		return
	}
	s.redirectOK(c, "/infrastructure", "Removing "+id+": its services move to other nodes first.")
}

func (s *server) rebootNode(c *gin.Context) {
	id := c.Param("id")
	ctx, cancel := s.actionContext(c)
	defer cancel()
	if err := s.node.RebootNode(ctx, id); err != nil {
		s.actionFailed(c, "infrastructure", "/infrastructure", err, s.buildInfrastructure)
		return
	}
	s.redirectOK(c, "/infrastructure", "Rebooting "+id+".")
}

// createSnapshot builds a custom snapshot from an uploaded context.
func (s *server) createSnapshot(c *gin.Context) {
	form := snapshotForm{Name: strings.TrimSpace(c.PostForm("name")), Regions: c.PostFormArray("regions")}
	ctx, cancel := s.actionContext(c)
	defer cancel()
	err := func() error {
		if err := raftfsm.ValidateSnapshotName(form.Name); err != nil {
			return err
		}
		digest, uploaded, err := s.storeUpload(ctx, c, "context")
		if err != nil {
			return err
		}
		if !uploaded {
			return invalidf("build context: choose a tar file with a Dockerfile")
		}
		return s.node.CreateSnapshot(ctx, control.SnapshotRequest{Name: form.Name, Context: digest, Regions: form.Regions})
	}()
	if err != nil {
		s.formFailed(c, "snapshots", "/snapshots", "snapshot", err, snapshotsView{Form: form}, s.buildSnapshots)
		return
	}
	s.redirectOK(c, "/snapshots", "Building snapshot "+form.Name+".")
}

// putUser adds a user or changes one's role (and password when given).
func (s *server) putUser(c *gin.Context) {
	form := userForm{Name: strings.TrimSpace(c.PostForm("name")), Role: c.PostForm("role")}
	ctx, cancel := s.actionContext(c)
	defer cancel()
	_, existed := s.lookupUser(form.Name)
	err := s.node.PutUser(ctx, control.UserRequest{Name: form.Name, Password: c.PostForm("password"), Role: raftfsm.Role(form.Role)})
	if err != nil {
		formID := "users"
		if c.PostForm("form") == "role" {
			formID = "user-" + form.Name
			form = userForm{}
		}
		s.formFailed(c, "admin", "/admin", formID, err, adminView{UserForm: form}, s.buildAdmin)
		return
	}
	msg := "Added " + form.Name + " as " + form.Role + "."
	if existed {
		msg = "Saved " + form.Name + " as " + form.Role + "."
	}
	s.redirectOK(c, "/admin", msg)
}

func (s *server) deleteUser(c *gin.Context) {
	name := c.Param("name")
	ctx, cancel := s.actionContext(c)
	defer cancel()
	err := func() error {
		if sess := sessionOf(c); sess != nil && sess.User == name {
			return fmt.Errorf("%w: you cannot remove yourself; sign in as another admin", raftfsm.ErrConflict)
		}
		return s.node.DeleteUser(ctx, name)
	}()
	if err != nil {
		s.formFailed(c, "admin", "/admin", "user-"+name, err, adminView{}, s.buildAdmin)
		return
	}
	s.redirectOK(c, "/admin", "Removed "+name+".")
}

// updateSettings changes the settings that differ from the current ones;
// a token field left empty keeps the token.
func (s *server) updateSettings(c *gin.Context) {
	ctx, cancel := s.actionContext(c)
	defer cancel()
	var cur raftfsm.Settings
	s.node.View(func(st *raftfsm.State) {
		cur = st.Settings
		cur.Regions = slices.Clone(st.Settings.Regions)
	})
	req, changed, err := settingsRequestFrom(c, cur)
	if err == nil && changed {
		err = s.node.UpdateSettings(ctx, req)
	}
	if err != nil {
		s.formFailed(c, "admin", "/admin", "settings", err, adminView{}, s.buildAdmin)
		return
	}
	if !changed {
		s.redirectOK(c, "/admin", "Nothing to change.")
		return
	}
	s.redirectOK(c, "/admin", "Settings saved.")
}

func settingsRequestFrom(c *gin.Context, cur raftfsm.Settings) (control.SettingsRequest, bool, error) {
	var req control.SettingsRequest
	changed := false
	str := func(field, current string, dst **string) {
		if v, ok := c.GetPostForm(field); ok && strings.TrimSpace(v) != current {
			v = strings.TrimSpace(v)
			*dst = &v
			changed = true
		}
	}
	str("domain", cur.Domain, &req.Domain)
	str("ui_host", cur.UIHost, &req.UIHost)
	str("droplet_size", cur.DropletSize, &req.DropletSize)
	if v, ok := c.GetPostForm("regions"); ok {
		regions := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
		if !slices.Equal(regions, cur.Regions) {
			if regions == nil {
				regions = []string{}
			}
			req.Regions, changed = regions, true
		}
	}
	if v, ok := c.GetPostForm("desired_nodes"); ok && strings.TrimSpace(v) != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return req, false, invalidf("desired nodes %q: want a number", v)
		}
		if n != cur.DesiredNodes {
			req.DesiredNodes, changed = &n, true
		}
	}
	if v, ok := c.GetPostForm("health_interval"); ok && strings.TrimSpace(v) != "" {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return req, false, invalidf("health interval %q: want a duration such as 60s", v)
		}
		if raftfsm.Duration(d) != cur.HealthInterval {
			hd := raftfsm.Duration(d)
			req.HealthInterval, changed = &hd, true
		}
	}
	for field, dst := range map[string]**string{"do_token": &req.DOToken, "cf_token": &req.CFToken} {
		if v := strings.TrimSpace(c.PostForm(field)); v != "" {
			*dst = &v
			changed = true
		}
	}
	return req, changed, nil
}
