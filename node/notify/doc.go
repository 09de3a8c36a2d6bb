// Package notify sends the cluster's important events to webhooks: failed
// deploys, rollbacks, healing actions (restart, reboot, reschedule,
// replacement) and nodes lost or found. The leader runs Run as one of its
// duties while it leads.
//
// Delivery is at most once. Run reads the events after the cursor
// (Settings.NotifiedSeq), commits AdvanceNotified past them, and only then
// hands them to the targets, so a leader that takes over never sends an
// event again, at the price of losing the few that were in flight when the
// old leader died.
//
// An event goes to a webhook when its kind matches one of the webhook's
// Kinds prefixes (raftfsm.WebhookDefaultKinds when it has none) and the webhook already
// existed when the event happened (event time not before the webhook's
// CreatedAt, both stamped by the leader). So events already in the log when
// a cluster, or a webhook, gets its first target are never replayed.
//
// Each webhook has its own worker and bounded queue: a target that keeps
// failing retries with backoff (5xx, 429 and network errors, bounded by
// Config.MaxAttempts) without holding up the others. Payloads are generic
// JSON (the event plus the cluster name), Slack-compatible ({"text"}) or
// Discord-compatible ({"content"}); see Payload.
package notify
