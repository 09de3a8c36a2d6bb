// Package ui is dropmesh's web UI: a Gin handler that every agent serves on
// its UI port. The leader renders the pages; a follower redirects the browser
// to the leader's UI, or proxies to it when the browser came in on the
// cluster's UI host name, cannot reach the leader's address, or came over TLS
// (leader.go).
//
// The UI reads the replicated state through Node.View and acts through the
// same Node (control.Controller) methods as the JSON API: there is no second
// implementation of anything. Pages are html/template files in templates/
// (one layout, one template per page) with CSS and a small dependency-free
// script in static/, all embedded.
//
// Live updates: /events is a server-sent event stream that says "changed"
// whenever the state changes (coalesced to a few per second); the script then
// fetches the page again with ?fragment=main and swaps the main block in, so
// a page never needs a reload to show a change. Container logs stream the
// same way.
//
// Security: sessions are stateless cookies signed with Options.SessionKey
// (session.go), every form carries a CSRF token tied to the session, sign-in
// failures are rate-limited per client IP (ratelimit.go), and roles (admin,
// deployer, viewer) are enforced on the server and hidden in the pages.
// Cookies are HttpOnly and SameSite=Strict, and Secure when the browser came
// over TLS: directly, through the node's edge, or through a follower that
// vouches for it (secure.go says whom the UI believes, and why).
//
// Tests: the handlers against an in-memory Node over a real raftfsm.FSM
// (testing_test.go); the pages in Chromium against that fake
// (browser_test.go, which also holds the browser kit); and end to end in
// Chromium against a real three-node local mesh with Docker (e2e_test.go, in
// package ui_test so that it may use the node side). Screenshots land in
// testdata/screenshots or $DROPMESH_ARTIFACTS.
package ui
