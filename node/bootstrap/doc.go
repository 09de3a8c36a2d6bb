// Package bootstrap is `dropmesh bootstrap`: it makes a dropmesh cluster on
// DigitalOcean from nothing but two API tokens and a domain.
//
// Run walks the steps, each of which first looks up what already exists (by
// name and tag), so a bootstrap that failed half-way can simply be run again:
//
//  1. the Cloudflare zone is checked, the VPC and the cluster firewall
//     (80/443 from anywhere; the API, gossip and raft only from the VPC; no
//     SSH) are ensured;
//  2. the base snapshot is found or built (Builder): a temporary droplet,
//     reached over SSH with a fresh ed25519 key and its host key pinned in
//     the state dir, runs scripts/install-agent.sh with the uploaded binary,
//     is powered off, snapshotted, and deleted with its key and its
//     temporary SSH firewall; the snapshot is copied to every region;
//  3. the admin password and a one-time bootstrap token are made locally
//     and kept in the state dir (StateDir, mode 0600), and the seed droplet
//     is created from the snapshot with cloud-init user data that starts
//     its agent as the seed (DROPMESH_BOOTSTRAP=true, the bootstrap token,
//     settings) and holds no secret: anything on a droplet can read its user
//     data from the metadata service. The seed makes its own cluster secret;
//  4. the seed's agent is awaited (GET /ping) and claimed (claimSeed, POST
//     /v1/bootstrap/claim, package bootclaim): the seed proves the token,
//     then gets the cloud tokens and the admin password sealed with a key
//     from the token, seals them into its state and hands back the API key
//     (and its CA certificate, pinned in the state dir); then the cluster's
//     growth to the wanted number of nodes is awaited (GET /v1/cluster);
//  5. the UI address and the admin login are printed, and an env file like
//     local mode's points the CLI at the cluster.
//
// Command wires Run to cobra. Options carries what a bootstrap is about and
// the injectable parts the tests replace (where the builder's SSH server is,
// where the seed's agent answers); Config carries the timings.
package bootstrap
