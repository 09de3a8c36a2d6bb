package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
)

// uriScheme is the scheme of the URI SAN that names a node.
const uriScheme = "dropmesh"

var (
	nodeIDPattern    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	clusterIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// ErrNoIdentity means a certificate carries no dropmesh node identity (no
// URI SAN of the dropmesh scheme, or more than one).
var ErrNoIdentity = errors.New("certificate names no dropmesh node")

// Identity is what a node certificate asserts: the node id (also its raft
// server id) and the addresses it serves and dials from.
type Identity struct {
	NodeID   string
	IPs      []net.IP
	DNSNames []string
}

// Validate checks that the identity can be put into a certificate.
func (id Identity) Validate() error {
	if !nodeIDPattern.MatchString(id.NodeID) {
		return fmt.Errorf("node id %q: use 1-63 lowercase letters, digits and '-'", id.NodeID)
	}
	for _, ip := range id.IPs {
		if ip == nil || ip.IsUnspecified() {
			return fmt.Errorf("node %s: address %v cannot be named in a certificate", id.NodeID, ip)
		}
	}
	for _, d := range id.DNSNames {
		if d == "" || strings.ContainsAny(d, " /\\@:") {
			return fmt.Errorf("node %s: DNS name %q", id.NodeID, d)
		}
	}
	return nil
}

// validateClusterID checks a cluster id for use in a URI SAN.
func validateClusterID(clusterID string) error {
	if !clusterIDPattern.MatchString(clusterID) {
		return fmt.Errorf("cluster id %q: use 1-64 letters, digits, '.', '_' and '-'", clusterID)
	}
	return nil
}

// nodeURI is the URI SAN naming node nodeID of cluster clusterID.
func nodeURI(clusterID, nodeID string) *url.URL {
	return &url.URL{Scheme: uriScheme, Host: clusterID, Path: "/node/" + nodeID}
}

// parseNodeURIs finds the one dropmesh URI SAN among uris.
func parseNodeURIs(uris []*url.URL) (clusterID, nodeID string, err error) {
	found := 0
	for _, u := range uris {
		if u.Scheme != uriScheme {
			continue
		}
		found++
		id, ok := strings.CutPrefix(u.Path, "/node/")
		if !ok || !nodeIDPattern.MatchString(id) || validateClusterID(u.Host) != nil || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return "", "", fmt.Errorf("%w: malformed %s", ErrNoIdentity, u)
		}
		clusterID, nodeID = u.Host, id
	}
	if found != 1 {
		return "", "", fmt.Errorf("%w: %d dropmesh names", ErrNoIdentity, found)
	}
	return clusterID, nodeID, nil
}

// IdentityOf returns the node id a certificate names. It checks only the
// shape of the name, not the certificate: use a Verifier for that.
func IdentityOf(cert *x509.Certificate) (nodeID string, err error) {
	_, nodeID, err = parseNodeURIs(cert.URIs)
	return nodeID, err
}

// ClusterOf returns the cluster id a node certificate names.
func ClusterOf(cert *x509.Certificate) (string, error) {
	clusterID, _, err := parseNodeURIs(cert.URIs)
	return clusterID, err
}
