// Package cloud is the leader's cloud duty, moving out of node piece by
// piece (issue 17): so far the intents every cloud change goes through
// (Intents: recorded before the provider call, resolved after it, so a new
// leader finishes half-done work), the DNS records (DNS: Cloudflare's A
// records equal to what the state says, every change an event) and the
// cluster's shape (Shape: its VPC and firewall). Droplets (growth,
// replacement, retirement) and custom snapshots are still node/cloud.go's
// and node/snapshots.go's, built on these intents.
package cloud

import (
	"context"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// Source is what the cloud duty needs of the cluster: read the state and
// commit a command (on the leader).
type Source interface {
	View(fn func(*raftfsm.State))
	Apply(ctx context.Context, cmd raftfsm.Command) (any, error)
}
