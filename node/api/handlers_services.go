package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/deployplan"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Services, deploys and instances.

// DisplayName is how the CLI writes a service: the workspace's name first,
// left out for the default workspace.
func DisplayName(st *raftfsm.State, key string) string {
	parts := strings.SplitN(key, "/", 2)
	if len(parts) != 2 {
		return key
	}
	w, ok := st.Workspaces[parts[0]]
	if !ok {
		return key
	}
	if w.Name == raftfsm.DefaultWorkspaceName {
		return parts[1]
	}
	return w.Name + "/" + parts[1]
}

// serviceParam reads {ws}/{project}/{env}/{service} from the path.
func (s *server) serviceParam(c *gin.Context) (raftfsm.ServiceName, bool) {
	raw := strings.Join([]string{c.Param("ws"), c.Param("project"), c.Param("env"), c.Param("service")}, "/")
	n, err := raftfsm.ParseServiceName(raw)
	if err != nil {
		s.fail(c, err)
		return n, false
	}
	return n, true
}

// serviceFilter reads an optional ?service= name.
func (s *server) serviceFilter(c *gin.Context) (raftfsm.ServiceName, bool, bool) {
	raw := c.Query("service")
	if raw == "" {
		return raftfsm.ServiceName{}, false, true
	}
	n, err := raftfsm.ParseServiceName(raw)
	if err != nil {
		s.fail(c, err)
		return n, false, false
	}
	return n, true, true
}

func (s *server) listServices(c *gin.Context) {
	ref := c.Query("workspace")
	if ref != "" {
		if err := validateWorkspaceRef(ref); err != nil {
			s.fail(c, err)
			return
		}
	}
	var v cachedView
	s.ctrl.View(func(st *raftfsm.State) {
		v = s.views.Get(st, "services?workspace="+ref, func() cachedView {
			wsID := ""
			if ref != "" {
				w := st.ResolveWorkspace(ref)
				if w == nil {
					return cachedView{err: fmt.Errorf("workspace %q: %w", ref, raftfsm.ErrNotFound)}
				}
				wsID = w.ID
			}
			out := []raftfsm.Service{}
			for _, key := range raftfsm.SortedKeys(st.Services) {
				svc := st.Services[key]
				if wsID == "" || svc.WorkspaceID == wsID {
					out = append(out, cloneService(svc))
				}
			}
			return encodeView(out)
		})
	})
	s.serveView(c, v)
}

func (s *server) deploy(c *gin.Context) {
	q := s.query(c)
	expect := q.int("expect_generation", 0, 0, 1<<62)
	if !q.check() {
		return
	}
	spec, err := raftfsm.DecodeSpec(c.Request.Body)
	if err != nil {
		s.fail(c, err)
		return
	}
	check := spec.Clone()
	check.Normalize()
	if err := check.Validate(); err != nil {
		s.fail(c, err)
		return
	}
	// The route needs a deployer; a spec that widens the containers'
	// confinement (cap_add) needs an admin.
	if w := check.Widens(); w != "" && !callerRole(c).Allows(raftfsm.RoleAdmin) {
		s.fail(c, fmt.Errorf("%w: %s widens the containers' confinement and needs the role %s; this credential has the role %s",
			control.ErrForbidden, w, raftfsm.RoleAdmin, callerRole(c)))
		return
	}
	res, err := s.ctrl.Deploy(c.Request.Context(), control.DeployRequest{Spec: spec, Actor: actor(c), ExpectGeneration: expect, Role: callerRole(c)})
	if err != nil {
		s.fail(c, err)
		return
	}
	// An unchanged spec answers with the same status (the route table has
	// one success status) and "unchanged": true.
	s.logger.InfoContext(c.Request.Context(), "deploy accepted", "deploy", res.DeployID, "service", res.Service, "generation", res.Generation,
		"unchanged", res.Unchanged)
	respond(c, http.StatusAccepted, res)
}

func (s *server) getService(c *gin.Context) {
	n, good := s.serviceParam(c)
	if !good {
		return
	}
	var (
		out control.ServiceDetail
		err error
	)
	s.ctrl.View(func(st *raftfsm.State) {
		var key string
		if key, err = deployplan.ResolveName(st, n); err != nil {
			return
		}
		svc := st.Services[key]
		out = control.ServiceDetail{Name: DisplayName(st, key), Service: cloneService(svc), Instances: []raftfsm.Instance{}, Placement: []raftfsm.Assignment{}}
		for _, in := range st.ServiceInstances(key) {
			out.Instances = append(out.Instances, cloneInstance(in))
			out.Placement = append(out.Placement, raftfsm.Assignment{Slot: in.Slot, Node: in.Node})
		}
		if d, ok := st.Deploys[svc.LastDeploy]; ok {
			dd := *d
			out.LastDeploy = &dd
		}
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	ok(c, out)
}

func (s *server) undeploy(c *gin.Context) {
	n, good := s.serviceParam(c)
	if !good {
		return
	}
	if err := s.ctrl.Undeploy(c.Request.Context(), n.String(), actor(c)); err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusAccepted, nil)
}

func (s *server) restart(c *gin.Context) {
	n, good := s.serviceParam(c)
	if !good {
		return
	}
	if err := s.ctrl.RestartService(c.Request.Context(), n.String(), actor(c)); err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusAccepted, nil)
}

func (s *server) serviceHealth(c *gin.Context) {
	n, good := s.serviceParam(c)
	if !good {
		return
	}
	var (
		out control.ServiceHealth
		err error
	)
	s.ctrl.View(func(st *raftfsm.State) {
		var key string
		if key, err = deployplan.ResolveName(st, n); err != nil {
			return
		}
		out, _ = control.ServiceHealthOf(st, key, DisplayName(st, key))
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	ok(c, out)
}

func (s *server) listDeploys(c *gin.Context) {
	n, filter, good := s.serviceFilter(c)
	if !good {
		return
	}
	out := []raftfsm.Deploy{}
	s.ctrl.View(func(st *raftfsm.State) {
		key := ""
		if filter {
			w := st.ResolveWorkspace(n.Workspace)
			if w == nil {
				return
			}
			key = raftfsm.ServiceKey(w.ID, n.Project, n.Env, n.Service)
		}
		for _, d := range st.Deploys {
			if key == "" || d.Service == key {
				out = append(out, *d)
			}
		}
	})
	sortDeploys(out)
	ok(c, out)
}

func (s *server) getDeploy(c *gin.Context) {
	id := c.Param("id")
	if err := validateID("deploy id", id); err != nil {
		s.fail(c, err)
		return
	}
	var (
		p     control.DeployProgress
		found bool
	)
	s.ctrl.View(func(st *raftfsm.State) { p, found = control.DeployProgressOf(st, id) })
	if !found {
		s.fail(c, fmt.Errorf("deploy %s: %w", id, raftfsm.ErrNotFound))
		return
	}
	ok(c, p)
}

func (s *server) listInstances(c *gin.Context) {
	n, filter, good := s.serviceFilter(c)
	if !good {
		return
	}
	node := c.Query("node")
	if node != "" {
		if err := raftfsm.ValidateNodeID(node); err != nil {
			s.fail(c, err)
			return
		}
	}
	out := []raftfsm.Instance{}
	s.ctrl.View(func(st *raftfsm.State) {
		key := ""
		if filter {
			w := st.ResolveWorkspace(n.Workspace)
			if w == nil {
				return
			}
			key = raftfsm.ServiceKey(w.ID, n.Project, n.Env, n.Service)
		}
		for _, id := range raftfsm.SortedKeys(st.Instances) {
			in := st.Instances[id]
			if (key == "" || in.Service == key) && (node == "" || in.Node == node) {
				out = append(out, cloneInstance(in))
			}
		}
	})
	ok(c, out)
}
