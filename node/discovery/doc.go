// Package discovery lets the containers of a project/environment find each
// other by their Compose names, on every node, wherever the instances run.
//
// Every workspace has its own Docker bridge network on every node (see
// Plan: a /23 per network, the lower half for containers, the upper half
// for service addresses). On each such network this package runs, inside
// the agent:
//
//   - a DNS server on the network's gateway, the containers' resolver. It
//     answers "<service>" for the caller's own project/environment and
//     "<service>.<project>.<env>.internal" across the caller's workspace,
//     with the service's virtual address on this network; other names are
//     forwarded to the host's resolvers. A query from outside the network's
//     subnet is refused, so another workspace learns nothing.
//   - a TCP forwarder on each service's virtual address, on every port the
//     service declares. A connection goes to one healthy instance, round
//     robin: a local one directly, a remote one as a stream of this node's
//     mutual-TLS connection to that node's Gateway on the private network
//     (node certificates both ways, see MeshTLS). A connection from outside
//     the network's subnet is refused: workspaces cannot reach each other.
//     UDP is not forwarded (Compose's UDP ports are named in a warning).
//
// The virtual address of a service stays the same while its instances
// move, scale or are replaced, so callers never need a restart; only the
// Catalog changes. The agent builds the Catalog from the state and its
// Docker engine and hands it to Manager.Update.
//
// What must stay reachable (for host firewall rules). From a container,
// on its own workspace network only:
//
//   - DNS, UDP and TCP port 53, on the network's gateway address (the .1 of
//     its /23 in Config.Pool, default 10.213.0.0/16: 10.213.N.1 with N even);
//   - the virtual service addresses, TCP on the services' declared ports,
//     in the upper /24 of the network's /23 (10.213.N+1.1-254), which the
//     agent routes as local on the bridge.
//
// Between nodes: TCP port 7948 (the agent's --mesh-port) on each node's
// private address, from the other nodes' private addresses only. Containers
// never need the gateway port, and nothing else of a node's is opened
// towards them.
package discovery
