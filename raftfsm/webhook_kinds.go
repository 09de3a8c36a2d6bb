package raftfsm

// webhookDefaultKinds are the kind prefixes a webhook without Kinds
// receives: what an operator must know about without watching the UI.
var webhookDefaultKinds = [...]string{
	EventDeployFailed,
	EventRollback,
	"heal.",
	EventNodeLost,
	EventNodeFound,
}

// WebhookDefaultKinds returns the kind prefixes a webhook with no Kinds
// receives: deploy.failed, deploy.rollback, heal.*, node.lost and
// node.found. The notifier filters with it, the UI and the CLI show it.
func WebhookDefaultKinds() []string { return append([]string(nil), webhookDefaultKinds[:]...) }

// WebhookAllKinds in a webhook's Kinds matches every event kind.
const WebhookAllKinds = "*"
