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
//     robin: a local one directly, a remote one through that node's mesh
//     listener over the private network (an authenticated header names the
//     service and port; see Gateway). A connection from outside the
//     network's subnet is refused: workspaces cannot reach each other.
//
// The virtual address of a service stays the same while its instances
// move, scale or are replaced, so callers never need a restart; only the
// Catalog changes. The agent builds the Catalog from the state and its
// Docker engine and hands it to Manager.Update.
package discovery
