// Package edge is the front door of every droplet: it routes each public host
// name, on ports 80 and 443, to the live generation's containers of the
// service that owns it.
//
// The reconciler (package node) computes a Config from the state (one Route
// per host, the UI host, optional origin certificates per zone) and calls
// Edge.Apply. Apply validates the whole Config first (Validate: every host,
// service name, upstream address and certificate), so bad input changes
// nothing; a refused Apply leaves the previous routes serving and says why.
//
// Two implementations share the Edge interface and one behaviour suite:
//
//   - Nginx drives a private nginx master (its own prefix directory, pid file,
//     logs and temp paths), so it runs on any port and several agents share a
//     machine. Apply renders the config (Render, golden-tested), swaps it in
//     atomically, reloads gracefully (the reload is nginx's own check: a
//     refused file leaves the old workers serving; only a master that must
//     be started is checked with `nginx -t` first) and confirms that the new
//     generation serves; if nginx refuses it, the previous file is put back.
//     The routes are map entries ($host to an upstream block), not a server
//     block per host, so a reload parses little; the old workers are told to
//     quit as soon as the new ones are up rather than after the master's
//     100 ms pause. Upstream connections are kept alive (HTTP/1.1, no
//     Connection header for plain requests). The master outlives the agent:
//     NewNginx adopts a running master through its pid file.
//   - Proxy is the built-in net/http reverse proxy used when nginx is not
//     installed, with the same routing semantics. Its route table is swapped
//     atomically, so requests in flight finish on the table they started on;
//     one shared transport keeps idle connections to every upstream.
//
// A route with RedirectHTTPS, and the UI host, answer plain HTTP with a
// redirect to HTTPS when the edge listens on TLS and a certificate covers
// the host.
//
// Both offer Drain, which waits until no request that started under an
// earlier config is still in flight: the safe moment to stop an old container.
package edge
