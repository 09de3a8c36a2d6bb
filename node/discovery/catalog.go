package discovery

import (
	"net/netip"
	"slices"
	"strings"
)

// Scope is a project/environment of a workspace.
type Scope struct {
	Workspace, Project, Env string
}

// Endpoint is one healthy instance of a service.
type Endpoint struct {
	// Node runs the instance.
	Node string
	// Local instances are reached at IP (the container's address on this
	// node's workspace network); remote ones through Peer.
	Local bool
	IP    netip.Addr
	// Peer is the mesh listener (host:port on the private network) of the
	// node that runs a remote instance.
	Peer string
}

// Service is one service as discovery sees it.
type Service struct {
	Scope
	Name string
	// Ports are every port the service declares (its port and the further ones).
	Ports []int
	// Endpoints are its healthy instances.
	Endpoints []Endpoint
}

// Key names a service within a workspace ("project/env/service").
func (s Service) Key() string { return s.Project + "/" + s.Env + "/" + s.Name }

// Catalog is everything discovery needs to know, rebuilt by the agent on
// every change of the state or of its containers. It is plain data.
type Catalog struct {
	// Services of every workspace.
	Services []Service
	// Callers maps the address of each local container (on its workspace
	// network) to its scope, so the DNS server knows whose "<service>" is asked.
	Callers map[netip.Addr]Scope
}

// lookup finds a service of workspace ws by a DNS name, relative to the
// caller's scope (zero when the caller is not a known container):
// "<service>" in the caller's project/env, "<service>.<project>.<env>.internal"
// anywhere in ws. name is lower case without the trailing dot.
func (c *Catalog) lookup(ws string, caller Scope, name string) (Service, bool) {
	labels := strings.Split(name, ".")
	var want Scope
	var svc string
	switch {
	case len(labels) == 1 && caller.Workspace == ws:
		want, svc = caller, labels[0]
	case len(labels) == 4 && labels[3] == InternalZone:
		want, svc = Scope{Workspace: ws, Project: labels[1], Env: labels[2]}, labels[0]
	default:
		return Service{}, false
	}
	i := slices.IndexFunc(c.Services, func(s Service) bool { return s.Scope == want && s.Name == svc })
	if i < 0 {
		return Service{}, false
	}
	return c.Services[i], true
}

// InternalZone is the top-level label of the names discovery answers
// across a workspace: web.shop.prod.internal.
const InternalZone = "internal"

// SearchDomain is the search domain a container of scope gets, so that a
// bare "<service>" is asked as "<service>.<project>.<env>.internal" (the
// form that Docker's own resolver forwards).
func SearchDomain(s Scope) string { return s.Project + "." + s.Env + "." + InternalZone }
