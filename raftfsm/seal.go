package raftfsm

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Sealed is a secret encrypted before it enters the Raft log: "v1:" followed by
// base64 of nonce||ciphertext. The AEAD comes from the caller (node derives it
// from the cluster secret); raftfsm never sees the key.
type Sealed string

const sealedPrefix = "v1:"

// ErrUnseal means a sealed value could not be opened: another cluster's key,
// or a damaged value.
var ErrUnseal = errors.New("cannot open sealed value")

// Seal encrypts plaintext with aead. label is bound as associated data (the
// field's name), so a value cannot be moved to another field.
func Seal(aead cipher.AEAD, label string, plaintext []byte) (Sealed, error) {
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal %s: %w", label, err)
	}
	out := aead.Seal(nonce, nonce, plaintext, []byte(label))
	return Sealed(sealedPrefix + base64.RawStdEncoding.EncodeToString(out)), nil
}

// Open decrypts a value sealed under the same label.
func Open(aead cipher.AEAD, label string, s Sealed) ([]byte, error) {
	raw, ok := strings.CutPrefix(string(s), sealedPrefix)
	if !ok {
		return nil, fmt.Errorf("open %s: %w: unknown format", label, ErrUnseal)
	}
	data, err := base64.RawStdEncoding.DecodeString(raw)
	if err != nil || len(data) < aead.NonceSize() {
		return nil, fmt.Errorf("open %s: %w: damaged", label, ErrUnseal)
	}
	plain, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], []byte(label))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", label, ErrUnseal)
	}
	return plain, nil
}

// Valid reports whether s has the shape of a sealed value (not whether it opens).
func (s Sealed) Valid() bool {
	raw, ok := strings.CutPrefix(string(s), sealedPrefix)
	if !ok {
		return false
	}
	_, err := base64.RawStdEncoding.DecodeString(raw)
	return err == nil
}

// SecretLabel is the associated data a service secret is sealed with: the
// service key and the variable name, so a sealed value cannot be moved to
// another service or variable. Open a sealed secret with this label.
func SecretLabel(serviceKey, name string) string { return "secret:" + serviceKey + ":" + name }

// SealSecrets moves spec.Secrets into spec.SealedSecrets, sealed for the
// service key. Sealed values already in the spec for names not resubmitted are
// kept, so a redeploy may carry over unchanged secrets.
func SealSecrets(aead cipher.AEAD, serviceKey string, spec *ServiceSpec) error {
	if len(spec.Secrets) == 0 {
		spec.Secrets = nil
		return nil
	}
	sealed := maps.Clone(spec.SealedSecrets)
	if sealed == nil {
		sealed = map[string]Sealed{}
	}
	for _, name := range slices.Sorted(maps.Keys(spec.Secrets)) {
		v, err := Seal(aead, SecretLabel(serviceKey, name), []byte(spec.Secrets[name]))
		if err != nil {
			return err
		}
		sealed[name] = v
	}
	spec.SealedSecrets = sealed
	spec.Secrets = nil
	return nil
}

// OpenSecrets returns the plain secrets of a spec from the state.
func OpenSecrets(aead cipher.AEAD, serviceKey string, spec ServiceSpec) (map[string]string, error) {
	out := make(map[string]string, len(spec.SealedSecrets))
	for name, v := range spec.SealedSecrets {
		plain, err := Open(aead, SecretLabel(serviceKey, name), v)
		if err != nil {
			return nil, fmt.Errorf("secret %s of %s: %w", name, serviceKey, err)
		}
		out[name] = string(plain)
	}
	return out, nil
}

// Labels for the sealed settings, so a token cannot be swapped for another.
const (
	LabelDOToken        = "settings:do_token"
	LabelCFToken        = "settings:cf_token"
	LabelSpacesSecret   = "settings:spaces_secret"
	labelRegistryPrefix = "registry:"
)

// RegistryLabel is the associated data of a registry password.
func RegistryLabel(registry string) string { return labelRegistryPrefix + registry }
