// Package bootclaim is the one-time handover of a new cluster's secrets
// from `dropmesh bootstrap` to its seed, so that no droplet's user data
// (which anything on the droplet can read from the metadata service) ever
// holds the DigitalOcean or Cloudflare token, the cluster secret or the
// admin password.
//
// The bootstrapper makes a one-time Token and puts only it in the seed's
// user data. The seed makes its own cluster secret and waits. Then, over
// POST /v1/bootstrap/claim, in two calls:
//
//  1. hello: the bootstrapper sends a fresh client nonce; the seed answers
//     with a seed nonce, its CA certificate (when it has one) and
//     SeedProof, an HMAC keyed by the token over both nonces and the CA.
//     Only a holder of the token can make it, so a man in the middle
//     cannot pose as the seed nor swap the CA the bootstrapper then pins.
//  2. claim: the bootstrapper sends ClientProof (the token proven the other
//     way, over the same nonces) and the Secrets sealed (AES-256-GCM) with
//     a key derived from the token and the nonces; the seed checks the
//     proof, opens them, seals the tokens into the replicated state and
//     answers with the API key, sealed the same way.
//
// Neither call carries the token itself, nor anything readable without it,
// so the channel (plain HTTP through the edge, or TLS through a proxy) does
// not need to be trusted. The seed accepts one claim: once the cluster is
// initialised the token is used up.
package bootclaim

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrProof: a proof or a sealed payload does not check out with the token.
var ErrProof = errors.New("the bootstrap token does not match")

// tokenBytes is the length of a token and of a nonce.
const tokenBytes = 32

// Request is the body of POST /v1/bootstrap/claim. A hello carries only
// ClientNonce; a claim carries all four fields.
type Request struct {
	ClientNonce string `json:"client_nonce"`
	SeedNonce   string `json:"seed_nonce,omitempty"`
	// Proof is ClientProof (claim only).
	Proof string `json:"proof,omitempty"`
	// Secrets are the Secrets sealed for the seed (claim only).
	Secrets string `json:"secrets,omitempty"`
}

// Answer is the seed's answer: to a hello SeedNonce, CACert and Proof (the
// SeedProof); to a claim Sealed, the Result sealed for the bootstrapper.
type Answer struct {
	SeedNonce string `json:"seed_nonce,omitempty"`
	CACert    string `json:"ca_cert,omitempty"`
	Proof     string `json:"proof,omitempty"`
	Sealed    string `json:"sealed,omitempty"`
}

// Secrets are what the bootstrapper hands the seed.
type Secrets struct {
	DOToken       string `json:"do_token"`
	CFToken       string `json:"cf_token"`
	AdminPassword string `json:"admin_password"`
}

// Result is what the seed hands back.
type Result struct {
	APIKey string `json:"api_key"`
}

// Labels keep the keys of the two directions apart.
const (
	LabelSecrets = "secrets"
	LabelResult  = "result"
)

// NewToken makes a one-time token (64 hex digits).
func NewToken() (string, error) { return random() }

// NewNonce makes a nonce (64 hex digits).
func NewNonce() (string, error) { return random() }

func random() (string, error) {
	var b [tokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("bootstrap token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// CheckHex checks that s is a token or a nonce: 64 hex digits.
func CheckHex(what, s string) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != tokenBytes {
		return fmt.Errorf("%s must be %d hex digits", what, 2*tokenBytes)
	}
	return nil
}

// SeedProof is the seed's proof that it holds the token, bound to this
// exchange's nonces and to the CA certificate it hands out.
func SeedProof(token, clientNonce, seedNonce, caCert string) string {
	ca := sha256.Sum256([]byte(caCert))
	return mac(token, "dropmesh bootstrap seed", clientNonce, seedNonce, hex.EncodeToString(ca[:]))
}

// ClientProof is the bootstrapper's proof that it holds the token.
func ClientProof(token, clientNonce, seedNonce string) string {
	return mac(token, "dropmesh bootstrap client", clientNonce, seedNonce)
}

// Verify compares a proof with the expected one in constant time.
func Verify(want, got string) bool { return hmac.Equal([]byte(want), []byte(got)) }

func mac(token string, parts ...string) string {
	h := hmac.New(sha256.New, []byte(token))
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Seal encrypts v (as JSON) with the key of this exchange and label.
func Seal(token, clientNonce, seedNonce, label string, v any) (string, error) {
	aead, err := newAEAD(token, clientNonce, seedNonce, label)
	if err != nil {
		return "", err
	}
	plain, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("bootstrap seal: %w", err)
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("bootstrap seal: %w", err)
	}
	return base64.StdEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, []byte(label))), nil
}

// Open decrypts what Seal made into v; a wrong token, nonce or label, or a
// changed byte, is ErrProof.
func Open(token, clientNonce, seedNonce, label, sealed string, v any) error {
	aead, err := newAEAD(token, clientNonce, seedNonce, label)
	if err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < aead.NonceSize() {
		return fmt.Errorf("bootstrap payload: %w", ErrProof)
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(label))
	if err != nil {
		return fmt.Errorf("bootstrap payload: %w", ErrProof)
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return fmt.Errorf("bootstrap payload: %w", err)
	}
	return nil
}

func newAEAD(token, clientNonce, seedNonce, label string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, []byte(token), []byte(clientNonce+"\x00"+seedNonce), "dropmesh bootstrap "+label, 32)
	if err != nil {
		return nil, fmt.Errorf("bootstrap key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("bootstrap key: %w", err)
	}
	return cipher.NewGCM(block)
}
