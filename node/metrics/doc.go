// Package metrics exposes an agent's Prometheus metrics at GET /metrics.
//
// Every agent owns one Metrics (New), backed by its own prometheus.Registry:
// tests run several agents in one process, so nothing is registered with the
// global default registry. Two kinds of figures live here:
//
//   - read at scrape time from a Source (the agent): raft's statistics
//     (leader, term, indexes), the gossip members by status and memberlist's
//     health score, and this node's containers by phase and by health, counted
//     from the local replica of the state;
//   - fed by the agent as things happen, through the Observe methods: commit
//     and apply latency, health-check results, healing actions, reconcile
//     passes, gossip probe round trips; and API request latency by route and
//     status code (APIMiddleware for a Gin engine, InstrumentAPI around any
//     http.Handler).
//
// Route returns the api.Route that serves the registry behind the API key.
// Every series carries a node label with the agent's id. Labels that come
// from callers or from gossip are normalised to small fixed sets ("other",
// "unknown"), so bad input can never grow the number of series.
package metrics
