package node

import (
	"context"

	"github.com/dropmesh/dropmesh/node/converge"
	"github.com/dropmesh/dropmesh/raftfsm"
)

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// learnDependencyImages looks up, in this node's Docker engine, the images
// of the stateful services instance id uses, so that converge.InjectedEnv can
// recognise a datastore by its EXPOSE ports. An image this node does not
// have stays unknown (nothing is pulled for it); one it has is remembered
// for the agent's life, so the injected environment does not flap.
func (a *Agent) learnDependencyImages(ctx context.Context, id string) {
	if a.rt == nil || a.instances == nil {
		return
	}
	var images []string
	a.fsm.View(func(s *raftfsm.State) {
		in, ok := s.Instances[id]
		if !ok {
			return
		}
		svc, ok := s.Services[in.Service]
		if !ok {
			return
		}
		spec, ok := svc.Revision(in.DesiredGeneration)
		if !ok {
			return
		}
		for _, use := range spec.Uses {
			if _, dep, _, ok := converge.Dependency(s, svc, use); ok && dep.Image != "" {
				images = append(images, dep.Image)
			}
		}
	})
	for _, ref := range images {
		if _, known := a.instances.imagePorts(ref); known {
			continue
		}
		if info, err := a.rt.InspectImage(ctx, ref); err == nil {
			a.instances.learnImage(ref, info)
		}
	}
}
