// Package logring keeps a dropmesh agent's own recent log records.
//
// NewHandler returns the slog.Handler the agent logs through: it writes each
// record to the agent's output (stderr) as text or JSON, as --log-format
// says, and also records it into a Ring, a bounded in-memory buffer that
// serves the admin view (`GET /v1/agent/logs`) with Entries and a live tail
// with Subscribe. Attributes and groups are flattened into the entry's Attrs
// ("group.key"), so the node id the agent adds with Logger.With is on every
// line and every entry.
//
// Logging never waits for a reader: a subscriber that falls behind misses
// entries, and the ring counts them (Dropped).
package logring
