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
//     status code (InstrumentAPI around any http.Handler).
//
// The package knows nothing of the API handler or its HTTP framework:
// node/api.NewMeasured serves Handler at GET /metrics behind the API key
// and wraps the API with InstrumentAPI.
// Every series carries a node label with the agent's id. Labels that come
// from callers or from gossip are normalised to small fixed sets ("other",
// "unknown"), so bad input can never grow the number of series.
package metrics
