package api

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Cluster, nodes and workspaces.

func (s *server) ping(c *gin.Context) {
	ok(c, control.Ping{Node: s.ctrl.NodeID(), Version: s.ctrl.Version()})
}

func (s *server) cluster(c *gin.Context) {
	info, err := s.ctrl.Cluster(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	if info.Members == nil {
		info.Members = []control.MemberInfo{}
	}
	ok(c, info)
}

func (s *server) listNodes(c *gin.Context) {
	out := []raftfsm.Node{}
	s.ctrl.View(func(st *raftfsm.State) {
		for _, id := range raftfsm.SortedKeys(st.Nodes) {
			out = append(out, *st.Nodes[id])
		}
	})
	ok(c, out)
}

// MaxAddNodes bounds one POST /v1/nodes: a typo must not order a hundred droplets.
const MaxAddNodes = 20

func (s *server) addNodes(c *gin.Context) {
	var req control.AddNodesRequest
	if err := decodeJSON(c.Request.Body, &req); err != nil {
		s.fail(c, err)
		return
	}
	if req.Count < 1 || req.Count > MaxAddNodes {
		invalid(c, fmt.Sprintf("count %d: want 1 to %d", req.Count, MaxAddNodes))
		return
	}
	if req.Region != "" {
		if err := raftfsm.ValidateRegion(req.Region); err != nil {
			s.fail(c, err)
			return
		}
	}
	if req.Snapshot != "" {
		if err := raftfsm.ValidateSnapshotName(req.Snapshot); err != nil {
			s.fail(c, err)
			return
		}
	}
	ids, err := s.ctrl.AddNodes(c.Request.Context(), req)
	if err != nil {
		s.fail(c, err)
		return
	}
	if ids == nil {
		ids = []string{}
	}
	respond(c, http.StatusAccepted, control.AddedNodes{Nodes: ids})
}

func (s *server) nodeParam(c *gin.Context) (string, bool) {
	id := c.Param("id")
	if err := raftfsm.ValidateNodeID(id); err != nil {
		s.fail(c, err)
		return "", false
	}
	return id, true
}

func (s *server) removeNode(c *gin.Context) {
	id, good := s.nodeParam(c)
	if !good {
		return
	}
	if err := s.ctrl.RemoveNode(c.Request.Context(), id); err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusAccepted, nil)
}

func (s *server) rebootNode(c *gin.Context) {
	id, good := s.nodeParam(c)
	if !good {
		return
	}
	if err := s.ctrl.RebootNode(c.Request.Context(), id); err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusAccepted, nil)
}

func (s *server) listWorkspaces(c *gin.Context) {
	out := []control.WorkspaceSummary{}
	s.ctrl.View(func(st *raftfsm.State) {
		count := map[string]int{}
		for _, svc := range st.Services {
			count[svc.WorkspaceID]++
		}
		for _, id := range raftfsm.SortedKeys(st.Workspaces) {
			w := st.Workspaces[id]
			out = append(out, control.WorkspaceSummary{ID: w.ID, Name: w.Name, CreatedAt: w.CreatedAt, Projects: projectsOf(w), Services: count[w.ID]})
		}
	})
	ok(c, out)
}

func (s *server) createWorkspace(c *gin.Context) {
	var req control.NameRequest
	if err := decodeJSON(c.Request.Body, &req); err != nil {
		s.fail(c, err)
		return
	}
	if err := raftfsm.ValidateSlug("workspace", req.Name); err != nil {
		s.fail(c, err)
		return
	}
	info, err := s.ctrl.CreateWorkspace(c.Request.Context(), req.Name)
	if err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusCreated, info)
}

func (s *server) workspaceParam(c *gin.Context) (string, bool) {
	ref := c.Param("ws")
	if err := validateWorkspaceRef(ref); err != nil {
		s.fail(c, err)
		return "", false
	}
	return ref, true
}

func (s *server) getWorkspace(c *gin.Context) {
	ref, good := s.workspaceParam(c)
	if !good {
		return
	}
	var (
		info  control.WorkspaceInfo
		found bool
	)
	s.ctrl.View(func(st *raftfsm.State) {
		if w := st.ResolveWorkspace(ref); w != nil {
			info, found = workspaceInfo(st, w), true
		}
	})
	if !found {
		s.fail(c, fmt.Errorf("workspace %q: %w", ref, raftfsm.ErrNotFound))
		return
	}
	ok(c, info)
}

func (s *server) deleteWorkspace(c *gin.Context) {
	ref, good := s.workspaceParam(c)
	if !good {
		return
	}
	if err := s.ctrl.DeleteWorkspace(c.Request.Context(), ref); err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusNoContent, nil)
}

func (s *server) createProject(c *gin.Context) {
	ref, good := s.workspaceParam(c)
	if !good {
		return
	}
	var req control.NameRequest
	if err := decodeJSON(c.Request.Body, &req); err != nil {
		s.fail(c, err)
		return
	}
	if err := raftfsm.ValidateSlug("project", req.Name); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.ctrl.CreateProject(c.Request.Context(), ref, req.Name); err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusCreated, nil)
}

func (s *server) createEnv(c *gin.Context) {
	ref, good := s.workspaceParam(c)
	if !good {
		return
	}
	project := c.Param("project")
	if err := raftfsm.ValidateSlug("project", project); err != nil {
		s.fail(c, err)
		return
	}
	var req control.NameRequest
	if err := decodeJSON(c.Request.Body, &req); err != nil {
		s.fail(c, err)
		return
	}
	if err := raftfsm.ValidateSlug("environment", req.Name); err != nil {
		s.fail(c, err)
		return
	}
	if err := s.ctrl.CreateEnvironment(c.Request.Context(), ref, project, req.Name); err != nil {
		s.fail(c, err)
		return
	}
	respond(c, http.StatusCreated, nil)
}
