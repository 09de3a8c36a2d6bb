package node

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strconv"

	"github.com/dropmesh/dropmesh/node/edge"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// edgeConfig computes this node's routes: every host of every routed
// service with an instance here, to the address of that instance's serving
// container; and the UI host to the local UI.
func (a *Agent) edgeConfig() edge.Config {
	addrs := a.instances.addrSnapshot()
	routes := map[string]*edge.Route{}
	var cfg edge.Config
	a.fsm.View(func(s *raftfsm.State) {
		for _, id := range raftfsm.SortedKeys(addrs) {
			in, ok := s.Instances[id]
			if !ok || in.Node != a.cfg.NodeID {
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
					r = &edge.Route{Host: h, Service: svc.Key}
					routes[h] = r
				}
				if r.Service == svc.Key && !slices.Contains(r.Upstreams, addrs[id]) {
					r.Upstreams = append(r.Upstreams, addrs[id])
				}
			}
		}
		if s.Settings.UIHost != "" && a.uiHandler != nil {
			cfg.UIHost = s.Settings.UIHost
			cfg.UIUpstream = net.JoinHostPort(a.cfg.AdvertiseIP, strconv.Itoa(a.cfg.UIPort))
		}
	})
	for _, h := range raftfsm.SortedKeys(routes) {
		cfg.Routes = append(cfg.Routes, *routes[h])
	}
	return cfg
}

// drainEdge waits, at most DrainDelay, until no request that started under
// an earlier edge config is still running.
func (a *Agent) drainEdge(ctx context.Context) {
	dctx, cancel := context.WithTimeout(ctx, a.cfg.DrainDelay)
	defer cancel()
	if d, ok := a.edge.(interface{ Drain(context.Context) error }); ok {
		if err := d.Drain(dctx); err == nil {
			return
		}
	}
	<-dctx.Done()
}

// applyEdge pushes the current routes to the edge when they changed. A
// failure keeps the previous routes serving and is recorded as an event.
func (a *Agent) applyEdge(ctx context.Context) error {
	if a.edge == nil {
		return nil
	}
	a.edgeMu.Lock()
	defer a.edgeMu.Unlock()
	cfg := a.edgeConfig()
	if a.edgeApplied && reflect.DeepEqual(cfg, a.edgeLast) {
		return nil
	}
	if err := a.edge.Apply(ctx, cfg); err != nil {
		a.logger.Error("edge config refused; the previous one keeps serving", "err", err)
		_ = a.report(ctx, &raftfsm.AppendEvent{At: a.now(), Event: raftfsm.Event{Kind: raftfsm.EventEdge, Severity: raftfsm.SeverityError,
			Node: a.cfg.NodeID, Message: fmt.Sprintf("edge on %s refused the new routes: %v", a.cfg.NodeID, err)}})
		return err
	}
	a.edgeLast, a.edgeApplied = cfg, true
	return nil
}
