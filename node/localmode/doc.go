// Package localmode is `dropmesh local up|status|down`: a whole mesh on one
// machine with no cloud account, on the production code paths. A background
// supervisor runs the embedded fake DigitalOcean + Cloudflare API
// (cloudops/fakeapi) and backs its droplets with `dropmesh agent` processes,
// each on its own loopback address (127.0.0.2, 127.0.0.3, ... on Linux). It
// creates the seed droplet through godo, stores the fake cloud's tokens in the
// cluster settings, and the leader grows the cluster to --nodes droplets
// exactly as it would on DigitalOcean.
//
// DIR holds env (shell lines for the CLI), admin-password, local.json (the
// nodes, for `local status`), the fake cloud's state, every node's data dir
// and log, and the supervisor's log and pid.
package localmode
