// Package cloudops is the only place dropmesh talks to DigitalOcean and
// Cloudflare. The Raft leader makes every cloud change through it.
//
// It offers small interfaces named for what the leader needs (Droplets,
// Snapshots, Firewalls, VPCs, SSHKeys, DNS) and two implementations:
// DigitalOcean, over the godo client, and Cloudflare, over cloudflare-go v6.
// Every operation is idempotent where the provider allows it (a droplet is
// found by name and cluster tag before one is created, a firewall or a VPC by
// name, the A records of a host are made equal to a wanted set), so a new
// leader can repeat half-done work without duplicating anything.
//
// Both clients send their requests through one RetryTransport: 429 answers
// are retried for every method (the provider refused them before acting),
// 5xx answers and network errors only for idempotent methods, with
// exponential backoff, jitter and Retry-After honoured (on a DigitalOcean
// 429 without one, the ratelimit-reset of its rate limit headers), each wait
// cancellable by the context. Creates (POST) that fail with a 5xx are retried one level
// up, by operations that look the resource up again before creating it.
// Each attempt waits at most RequestTimeout for its answer to start
// (NewHTTPTransport: a transport timeout, not a whole-request one); the
// caller's context bounds the call as a whole.
//
// Errors name the resource (`create droplet "c1-node-3": ...`), wrap the
// provider's own error (*godo.ErrorResponse, *cloudflare.Error) inside an
// *APIError that carries the HTTP status, and match the sentinels ErrNotFound,
// ErrInvalid, ErrConflict and ErrActionFailed with errors.Is.
//
// ClusterFirewall and WithSSH describe the cluster's network shape as pure
// data: the control ports open only to droplets carrying the cluster tag. Tests and local mode run the real clients against cloudops/fakeapi,
// a stateful fake of both HTTP APIs.
package cloudops
