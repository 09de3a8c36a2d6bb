package backup

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrUnauthenticated: a backup (its manifest or a file) does not open with
// the backup key: it was changed, planted, or written by another cluster.
// Nothing is restored from it.
var ErrUnauthenticated = errors.New("backup fails authentication (changed, planted, or another cluster's)")

// KeyLabel is the HKDF label of the backup key; clusterconf.DeriveKeys derives
// the cluster's backup key with DeriveKey, beside its other keys.
const KeyLabel = "dropmesh/v1/backup-key"

// DeriveKey derives the backup key (AES-256-GCM) from the cluster secret's
// 32 bytes with HKDF-SHA256 and KeyLabel. The leader seals backups with it;
// `state restore` derives it again from the cluster secret file.
func DeriveKey(clusterSecret []byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, clusterSecret, nil, KeyLabel, 32)
	if err != nil {
		return nil, fmt.Errorf("derive backup key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("backup key: %w", err)
	}
	return cipher.NewGCM(block)
}

// KeyFromSecretFile reads a cluster secret file (64 hex digits, the
// agent's data dir holds it) and derives the backup key.
func KeyFromSecretFile(path string) (cipher.AEAD, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read cluster secret %s: %w", path, err)
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(secret) != 32 {
		return nil, fmt.Errorf("%w: cluster secret %s: want 64 hex digits", ErrInvalid, path)
	}
	return DeriveKey(secret)
}

// sealedMagic starts every sealed backup file: then the nonce and the
// AES-GCM ciphertext of the file.
var sealedMagic = []byte("dropmesh-backup-v2\n")

// fileAD binds a sealed file to its kind (state or snapshot), so one cannot
// stand in for the other.
func fileAD(suffix string) []byte { return []byte("dropmesh backup file" + suffix) }

func sealFile(key cipher.AEAD, suffix string, plain []byte) ([]byte, error) {
	out := make([]byte, 0, len(sealedMagic)+key.NonceSize()+len(plain)+key.Overhead())
	out = append(out, sealedMagic...)
	nonce := make([]byte, key.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal backup file: %w", err)
	}
	out = append(out, nonce...)
	return key.Seal(out, nonce, plain, fileAD(suffix)), nil
}

// isSealed reports whether data is a sealed backup file.
func isSealed(data []byte) bool { return bytes.HasPrefix(data, sealedMagic) }

func openFile(key cipher.AEAD, suffix string, data []byte, what string) ([]byte, error) {
	if key == nil {
		return nil, fmt.Errorf("%w: %s is an encrypted backup: give the cluster secret file (--cluster-secret-file)", ErrInvalid, what)
	}
	rest, ok := bytes.CutPrefix(data, sealedMagic)
	if !ok || len(rest) < key.NonceSize()+key.Overhead() {
		return nil, fmt.Errorf("%w: %s", ErrUnauthenticated, what)
	}
	plain, err := key.Open(nil, rest[:key.NonceSize()], rest[key.NonceSize():], fileAD(suffix))
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrUnauthenticated, what)
	}
	return plain, nil
}

// manifestAD is what the manifest's MAC covers: the manifest without its MAC.
func manifestAD(info Info) ([]byte, error) {
	info.MAC = ""
	b, err := json.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return append([]byte("dropmesh backup manifest\n"), b...), nil
}

// signManifest sets info.MAC: an AES-GCM tag (GMAC) over the rest of the
// manifest, which lists every file's size and sha256.
func signManifest(key cipher.AEAD, info *Info) error {
	ad, err := manifestAD(*info)
	if err != nil {
		return err
	}
	nonce := make([]byte, key.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("sign manifest: %w", err)
	}
	info.MAC = base64.RawStdEncoding.EncodeToString(key.Seal(nonce, nonce, nil, ad))
	return nil
}

// verifyManifest checks info.MAC with key.
func verifyManifest(key cipher.AEAD, info Info) error {
	if info.Format < manifestFormat || info.MAC == "" {
		return fmt.Errorf("%w: backup %s has an unauthenticated manifest (format %d, written before backups were sealed); restore it only from its file with --from FILE if you trust where it came from", ErrUnauthenticated, info.Name, info.Format)
	}
	raw, err := base64.RawStdEncoding.DecodeString(info.MAC)
	if err != nil || len(raw) < key.NonceSize()+key.Overhead() {
		return fmt.Errorf("%w: manifest of %s", ErrUnauthenticated, info.Name)
	}
	ad, err := manifestAD(info)
	if err != nil {
		return err
	}
	if _, err := key.Open(nil, raw[:key.NonceSize()], raw[key.NonceSize():], ad); err != nil {
		return fmt.Errorf("%w: manifest of %s", ErrUnauthenticated, info.Name)
	}
	return nil
}
