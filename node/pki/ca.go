package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"time"
)

const (
	// DefaultCAValidity is how long a new cluster CA is valid. The CA is not
	// rotated automatically; ten years outlives any cluster we expect.
	DefaultCAValidity = 10 * 365 * 24 * time.Hour
	// DefaultNodeCertValidity is how long a node certificate is valid: short,
	// so a stolen key expires on its own, long enough that a node which
	// cannot reach a voter for days keeps working (renewal starts after two
	// thirds, at 20 days).
	DefaultNodeCertValidity = 30 * 24 * time.Hour
	// ClockSkew is how far before its signing time a certificate becomes
	// valid, so that a node whose clock is a little behind accepts it (a
	// tenth of the validity instead when that is less, so that a short test
	// validity keeps its meaning).
	ClockSkew = 5 * time.Minute
)

// PEM block types.
const (
	pemCert = "CERTIFICATE"
	pemKey  = "PRIVATE KEY"
	pemCSR  = "CERTIFICATE REQUEST"
)

// ErrNotCA means a certificate and key do not form a usable cluster CA.
var ErrNotCA = errors.New("not a dropmesh cluster CA")

// CA is a cluster's certificate authority: its certificate and signing key.
// It is safe for concurrent use.
type CA struct {
	clusterID string
	cert      *x509.Certificate
	certPEM   []byte
	key       crypto.Signer
}

// NewCA makes a self-signed ECDSA P-256 CA for clusterID, valid from now
// (less ClockSkew) for validity (DefaultCAValidity when zero). It returns the
// CA and its key in PEM (PKCS #8), which the caller seals and stores.
func NewCA(clusterID string, now time.Time, validity time.Duration) (ca *CA, keyPEM []byte, err error) {
	if err := validateClusterID(clusterID); err != nil {
		return nil, nil, fmt.Errorf("new CA: %w", err)
	}
	if validity <= 0 {
		validity = DefaultCAValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("new CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	skid, err := keyID(key.Public())
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "dropmesh cluster CA " + clusterID, Organization: []string{"dropmesh"}},
		NotBefore:             now.Add(-backdate(validity)).UTC(),
		NotAfter:              now.Add(validity).UTC(),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		SubjectKeyId:          skid,
		URIs:                  []*url.URL{{Scheme: uriScheme, Host: clusterID}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("new CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("new CA key: %w", err)
	}
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: pemKey, Bytes: keyDER})
	ca, err = ParseCA(pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: der}), keyPEM)
	if err != nil {
		return nil, nil, err
	}
	return ca, keyPEM, nil
}

// ParseCA loads a CA from its certificate and key in PEM, checking that the
// key belongs to the certificate and that the certificate is a dropmesh CA.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	clusterID, err := caClusterID(cert)
	if err != nil {
		return nil, err
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	if !samePublicKey(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%w: the key does not match the certificate", ErrNotCA)
	}
	return &CA{clusterID: clusterID, cert: cert, certPEM: encodeCert(cert.Raw), key: key}, nil
}

// caClusterID checks that cert is a dropmesh CA and returns its cluster id.
func caClusterID(cert *x509.Certificate) (string, error) {
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return "", fmt.Errorf("%w: %s is not a CA certificate", ErrNotCA, cert.Subject)
	}
	for _, u := range cert.URIs {
		if u.Scheme == uriScheme && (u.Path == "" || u.Path == "/") && validateClusterID(u.Host) == nil {
			return u.Host, nil
		}
	}
	return "", fmt.Errorf("%w: %s names no cluster", ErrNotCA, cert.Subject)
}

// ClusterID is the cluster the CA signs for.
func (ca *CA) ClusterID() string { return ca.clusterID }

// Certificate is the CA's parsed certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM is the CA's certificate in PEM: what every node and client trusts.
func (ca *CA) CertPEM() []byte { return append([]byte(nil), ca.certPEM...) }

// Pool is a certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Sign issues a node certificate for id, valid from now (less ClockSkew) for
// validity (DefaultNodeCertValidity when zero), never past the CA's own
// expiry. Only the public key is taken from the request (after checking its
// signature): names, usages and lifetime are the CA's decision. It returns
// the certificate in PEM, its serial (see SerialOf) and its expiry.
func (ca *CA) Sign(csrPEM []byte, id Identity, now time.Time, validity time.Duration) (certPEM []byte, serial string, notAfter time.Time, err error) {
	if err := id.Validate(); err != nil {
		return nil, "", time.Time{}, fmt.Errorf("sign: %w", err)
	}
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		return nil, "", time.Time{}, fmt.Errorf("sign %s: %w", id.NodeID, err)
	}
	if err := checkPublicKey(csr.PublicKey); err != nil {
		return nil, "", time.Time{}, fmt.Errorf("sign %s: %w", id.NodeID, err)
	}
	if validity <= 0 {
		validity = DefaultNodeCertValidity
	}
	notAfter = now.Add(validity).UTC()
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	notBefore := now.Add(-backdate(validity)).UTC()
	if !notAfter.After(notBefore) || now.After(ca.cert.NotAfter) {
		return nil, "", time.Time{}, fmt.Errorf("sign %s: the CA expired at %s", id.NodeID, ca.cert.NotAfter.Format(time.RFC3339))
	}
	sn, err := randomSerial()
	if err != nil {
		return nil, "", time.Time{}, err
	}
	skid, err := keyID(csr.PublicKey)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: id.NodeID, Organization: []string{"dropmesh"}, OrganizationalUnit: []string{ca.clusterID}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          skid,
		URIs:                  []*url.URL{nodeURI(ca.clusterID, id.NodeID)},
		IPAddresses:           cloneIPs(id.IPs),
		DNSNames:              append([]string(nil), id.DNSNames...),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, "", time.Time{}, fmt.Errorf("sign %s: %w", id.NodeID, err)
	}
	issued, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, "", time.Time{}, fmt.Errorf("sign %s: %w", id.NodeID, err)
	}
	// The certificate keeps whole seconds: answer with what it says.
	return encodeCert(der), serialString(sn), issued.NotAfter, nil
}

// backdate is how long before its signing a certificate of validity starts.
func backdate(validity time.Duration) time.Duration { return min(ClockSkew, validity/10) }

// SerialOf is a certificate's serial number as dropmesh records it:
// lowercase hex, no separators.
func SerialOf(cert *x509.Certificate) string { return serialString(cert.SerialNumber) }

func serialString(n *big.Int) string { return n.Text(16) }

// Fingerprint is "sha256:" and the lowercase hex SHA-256 of the first
// certificate's DER in certPEM: what user data carries to pin the CA.
func Fingerprint(certPEM []byte) (string, error) {
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		return "", fmt.Errorf("fingerprint: %w", err)
	}
	return FingerprintOf(cert), nil
}

// FingerprintOf is Fingerprint for a parsed certificate.
func FingerprintOf(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseCertificate parses the first certificate in PEM.
func ParseCertificate(certPEM []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != pemCert {
		return nil, errors.New("no PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}

// ParseKey parses a PKCS #8 private key in PEM.
func ParseKey(keyPEM []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != pemKey {
		return nil, errors.New("no PEM private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign", k)
	}
	return signer, nil
}

// ParseCSR parses a certificate request in PEM and checks its signature
// (the requester holds the key it asks a certificate for).
func ParseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != pemCSR {
		return nil, errors.New("no PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request signature: %w", err)
	}
	return csr, nil
}

// checkPublicKey accepts the key types and sizes a node may use.
func checkPublicKey(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("ECDSA curve %s is not accepted", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits is too short", k.N.BitLen())
		}
	default:
		return fmt.Errorf("public key of type %T is not accepted", pub)
	}
	return nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b)
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certificate serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil // never zero
}

func keyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("key id: %w", err)
	}
	sum := sha256.Sum256(der)
	return sum[:20], nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: der})
}
