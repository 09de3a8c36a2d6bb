// Package pki is dropmesh's cluster certificate authority and node identity:
// the CA that signs node certificates (CA), a node's identity and how it is
// carried in a certificate (Identity, IdentityOf), key and request generation
// (NewKeyAndCSR), the checks every TLS connection between dropmesh processes
// runs (Verifier, ServerConfig, ClientConfig), this node's own hot-swappable
// credentials (Credentials) and their renewal (NeedsRenewal, Renewer).
//
// Trust model. The CA key signs node certificates; whoever holds it can mint
// any identity, so it lives only with the raft voters (sealed in the
// replicated state). A node certificate names one node id, in a URI SAN
// dropmesh://<cluster-id>/node/<node-id>, and the node's addresses as IP
// SANs; it is short-lived (DefaultNodeCertValidity) and renewed by its node
// after two thirds of its lifetime. The CA, not the requester, decides what a
// certificate says: Sign takes the identity from its caller and ignores the
// names in the request. Revocation is by serial number, looked up through the
// Verifier's Revoked callback on every handshake.
//
// Verification is done in tls.Config.VerifyConnection, which runs on every
// handshake (resumed ones too): chain to the cluster CA at the Verifier's
// clock, both server and client auth usages, a node identity of this cluster,
// not revoked, and on client connections the expected node id. The host name
// of the dialled address plays no part: a peer is who its certificate names.
// TLS 1.3 only.
package pki
