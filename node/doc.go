// Package node is the dropmesh agent: the one program every droplet runs.
//
// An Agent (agent.go) joins the gossip mesh (package mesh) and the raft
// cluster (package raftfsm), serves the agent API (node/api) and the web UI
// (package ui), and runs two kinds of duties:
//
//   - on every node, the reconciler (reconciler.go, instance.go, cron.go,
//     images.go, inject.go, edgeconf.go) converges the local Docker engine
//     and edge to the replicated state, and the health loop (healthloop.go)
//     checks the local containers and reports the results; this side is
//     moving to node/converge (so far: the gossip keyring, the injected
//     environment, the edge's routes);
//   - on the leader only, duties started when it gains leadership and
//     stopped when it loses it (the loop: package node/leader; the list:
//     leader.go): roll-outs (node/leader/rollout), healing (node/leader/
//     healer), gossip key rotation (node/leader/keyring), the registrar
//     and voter management (node/leader/members), the cluster's cloud
//     shape and growth (cloud.go, cluster.go, snapshots.go), DNS (dns.go),
//     notifications and backups (node/notify, node/backup).
//
// Writes reach the state only through raft on the leader (controller.go);
// every cloud change is an intent committed before the provider call and
// resolved after it, so a new leader finishes half-done work. Keys are
// derived from the cluster secret (package node/clusterconf) and handed
// down as plain keys. AgentCommand (command.go) is `dropmesh agent` and
// `dropmesh join`. docs/architecture.md maps the packages.
package node
