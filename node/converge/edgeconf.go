package converge

import (
	"slices"

	"github.com/dropmesh/dropmesh/node/edge"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// EdgeRoutes computes node self's routes from the state: every host of
// every routed service with an instance here, to the addresses (addrs, by
// instance id) of that instance's serving containers; and the UI host to
// uiUpstream ("" when this node serves no UI). The origin certificates of
// the state are returned too, for the caller to open (their keys are
// sealed).
func EdgeRoutes(s *raftfsm.State, self string, addrs map[string]string, uiUpstream string) (edge.Config, []raftfsm.OriginCert) {
	var cfg edge.Config
	var origin []raftfsm.OriginCert
	for _, z := range raftfsm.SortedKeys(s.OriginCerts) {
		origin = append(origin, *s.OriginCerts[z])
	}
	routes := map[string]*edge.Route{}
	for _, id := range raftfsm.SortedKeys(addrs) {
		in, ok := s.Instances[id]
		if !ok || in.Node != self {
			continue
		}
		svc, ok := s.Services[in.Service]
		if !ok {
			continue
		}
		spec := svc.Spec
		if r, ok := svc.Revision(in.DesiredGeneration); ok {
			spec = r
		}
		if !spec.Routed() {
			continue
		}
		for _, h := range spec.Hosts {
			if h == s.Settings.UIHost {
				continue // the UI's host is never a service's (refused at deploy)
			}
			r, ok := routes[h]
			if !ok {
				r = &edge.Route{Host: h, Service: svc.Key, RedirectHTTPS: spec.RedirectHTTPS()}
				routes[h] = r
			}
			if r.Service == svc.Key && !slices.Contains(r.Upstreams, addrs[id]) {
				r.Upstreams = append(r.Upstreams, addrs[id])
			}
		}
	}
	if s.Settings.UIHost != "" && uiUpstream != "" {
		cfg.UIHost, cfg.UIUpstream = s.Settings.UIHost, uiUpstream
	}
	for _, h := range raftfsm.SortedKeys(routes) {
		cfg.Routes = append(cfg.Routes, *routes[h])
	}
	return cfg, origin
}
