// Package api is the agent's HTTP API (Gin, JSON, under /v1, served on :9999
// by every agent).
//
// One route table (Routes) drives both the registration and the OpenAPI
// document (GET /v1/openapi.json). Every route has a Kind that decides where
// it runs:
//
//   - Public: no key needed (only GET /ping), rate-limited per client IP.
//   - Read: served from this node's replica of the state; ?consistent=true is
//     forwarded to the leader, which makes its replica current first. Every
//     read accepts ?index=N&wait=30s and answers once the state's raft index
//     is above N (Consul-style blocking reads) and sets X-Dropmesh-Index.
//   - Write: runs on the leader; a follower forwards it (forward.go), with
//     the caller's key, deadline and body, and passes the leader's answer
//     back unchanged.
//   - Local: runs on the node that owns the container; a node that does not
//     proxies the request to the one that does.
//
// Every route also has an Access: the API key (the default), nothing
// (GET /ping; POST /v1/join, whose one-time join token is the credential),
// or a node certificate (the internal routes under /v1/internal/, which
// only agents call: the caller must present a valid, unrevoked node
// certificate of the cluster CA in the TLS handshake, checked again on
// every request, besides the key). The agent serves the API over TLS with
// its node certificate; Options.VerifyNode checks client certificates and
// Options.HTTPClient forwards with the agent's own.
//
// Handlers are thin: decode, validate, call one control.Controller method,
// encode. Errors are {"error": CODE, "message": TEXT} with the matching
// status (errors.go). Fake, in testing.go, is an in-memory Controller over a
// real raftfsm.FSM for the tests of this package, the CLI and the UI.
package api
