// Package chaos is dropmesh's chaos suite: agents in Docker containers on a
// private Docker network, a bounded stream of deploys, updates and undeploys
// through the agent API beside a stream of at least 50 light writes a
// second (registry credentials put and deleted) and linearizable reads of
// them, faults injected one at a time (the leader killed, a
// node paused, a minority and then the leader partitioned, every node
// restarted in turn, a node's data disk filled), and checkers over the
// recorded history and the state after the heal.
//
// Main types:
//   - Cluster: the Docker network, the fake cloud (cloudops/fakeapi) served
//     by the test process on the network's gateway, and one agent container
//     per fake droplet (Backend starts them from the droplet's cloud-init
//     user data, as local mode starts processes). Each agent's data dir is a
//     small tmpfs volume held open by a helper container, which also fills
//     and frees it.
//   - History: every client operation (start, end, node, outcome), every
//     sample of each node's view of the leader and term, every fault.
//   - Workload: the deploy writers, the key writers and the readers;
//     Sampler: the leader and term watcher.
//   - the checks (CheckLeaders, CheckAcknowledged, CheckReads,
//     CheckContainers, CheckCloud, CheckFailover): each returns a
//     *Violation that prints the part of the history that broke it.
//
// The suite itself is TestChaosBounded and TestChaosFull, behind the build
// tag "chaos" (go test -tags chaos ./bench/chaos/...); the checkers have
// their own tests, which run without the tag.
package chaos
