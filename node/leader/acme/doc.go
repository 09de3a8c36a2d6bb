// Package acme is the leader's automatic-HTTPS duty: it obtains and renews
// certificates from an ACME CA (Let's Encrypt, its staging CA, or any
// directory; Pebble in tests and local mode) with the DNS-01 challenge,
// writing the _acme-challenge TXT records through the cloudops Cloudflare
// client, and commits them to the replicated state, from which every
// node's edge serves them.
//
// The ACME protocol is github.com/mholt/acmez/v3's (the ACME layer of
// Caddy's certmagic): a protocol library with no global state and no DNS
// lookups of its own, so the duty owns the order's steps. That is what a
// replicated leader needs: an order is an intent in the state
// (raftfsm.RecordACMEOrder, committed before the CA is asked, with the
// certificate key the CSR is made of), its CA URL is committed as soon as
// the CA made it (PlaceACMEOrder), and a new leader resumes that order
// (GetOrder, the remaining authorizations, finalize, download) instead of
// placing a second one.
//
// Run is started and stopped by leadership, like node/notify and
// node/backup, and sees the node through Source. One order runs at a time;
// a failure is committed with the time of the next attempt (exponential
// backoff with jitter, in the state, so a new leader keeps it), which
// raises an event (hence a notification) and leaves the old certificate
// served. Renewal starts Config.RenewBefore (raftfsm.ACMEConfig) before
// expiry, spread by a per-certificate jitter.
package acme
