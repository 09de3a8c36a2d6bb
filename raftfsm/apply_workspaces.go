package raftfsm

// The workspaces aggregate: workspaces, their projects and environments.

import (
	"fmt"
	"time"
)

func applyCreateWorkspace(s *State, c *CreateWorkspace) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	if err := ValidateWorkspaceID(c.ID); err != nil {
		return nil, err
	}
	if err := ValidateSlug("workspace", c.Name); err != nil {
		return nil, err
	}
	if _, ok := s.Workspaces[c.ID]; ok {
		return nil, fmt.Errorf("%w: workspace id %s exists", ErrConflict, c.ID)
	}
	if w := s.WorkspaceByName(c.Name); w != nil {
		return nil, fmt.Errorf("%w: workspace %s exists (id %s)", ErrConflict, c.Name, w.ID)
	}
	s.Workspaces[c.ID] = &Workspace{ID: c.ID, Name: c.Name, CreatedAt: c.At, Projects: map[string]*Project{}}
	return c.ID, nil
}

// WorkspaceByName returns the workspace with that name, or nil.
func (s *State) WorkspaceByName(name string) *Workspace {
	for _, w := range s.Workspaces {
		if w.Name == name {
			return w
		}
	}
	return nil
}

// ResolveWorkspace finds a workspace by id or name; "" means the default one.
func (s *State) ResolveWorkspace(ref string) *Workspace {
	if ref == "" {
		ref = DefaultWorkspaceName
	}
	if w, ok := s.Workspaces[ref]; ok {
		return w
	}
	return s.WorkspaceByName(ref)
}

func applyDeleteWorkspace(s *State, c *DeleteWorkspace) (any, error) {
	w, ok := s.Workspaces[c.ID]
	if !ok {
		return nil, fmt.Errorf("workspace %s: %w", c.ID, ErrNotFound)
	}
	for _, svc := range s.Services {
		if svc.WorkspaceID == c.ID {
			return nil, fmt.Errorf("%w: workspace %s still has service %s", ErrConflict, w.Name, svc.Key)
		}
	}
	if w.Name == DefaultWorkspaceName {
		return nil, fmt.Errorf("%w: the default workspace cannot be deleted", ErrConflict)
	}
	delete(s.Workspaces, c.ID)
	return nil, nil
}

func applyCreateProject(s *State, c *CreateProject) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	w, ok := s.Workspaces[c.WorkspaceID]
	if !ok {
		return nil, fmt.Errorf("workspace %s: %w", c.WorkspaceID, ErrNotFound)
	}
	if err := ValidateSlug("project", c.Name); err != nil {
		return nil, err
	}
	if _, ok := w.Projects[c.Name]; ok {
		return nil, fmt.Errorf("%w: project %s exists in workspace %s", ErrConflict, c.Name, w.Name)
	}
	w.Projects[c.Name] = &Project{Name: c.Name, CreatedAt: c.At, Envs: map[string]*Environment{}}
	return nil, nil
}

func applyCreateEnvironment(s *State, c *CreateEnvironment) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	w, ok := s.Workspaces[c.WorkspaceID]
	if !ok {
		return nil, fmt.Errorf("workspace %s: %w", c.WorkspaceID, ErrNotFound)
	}
	p, ok := w.Projects[c.Project]
	if !ok {
		return nil, fmt.Errorf("project %s: %w", c.Project, ErrNotFound)
	}
	if err := ValidateSlug("environment", c.Name); err != nil {
		return nil, err
	}
	if _, ok := p.Envs[c.Name]; ok {
		return nil, fmt.Errorf("%w: environment %s exists in %s", ErrConflict, c.Name, c.Project)
	}
	p.Envs[c.Name] = &Environment{Name: c.Name, CreatedAt: c.At}
	return nil, nil
}

// ensureScope creates the project and environment of a service if missing.
func (w *Workspace) ensureScope(project, env string, at time.Time) {
	p, ok := w.Projects[project]
	if !ok {
		p = &Project{Name: project, CreatedAt: at, Envs: map[string]*Environment{}}
		w.Projects[project] = p
	}
	if _, ok := p.Envs[env]; !ok {
		p.Envs[env] = &Environment{Name: env, CreatedAt: at}
	}
}
