// Package passseal seals a document with a passphrase, for files that leave
// the cluster (a `state export --with-secrets`): the key is derived with
// Argon2id (RFC 9106's recommended parameters, 64 MiB) from the passphrase
// and a random salt, and the document is encrypted and authenticated with
// AES-256-GCM. The result is a small JSON envelope that names its KDF and
// parameters, so it opens with nothing but the passphrase.
package passseal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Kind marks a JSON document as a passphrase-sealed envelope.
const Kind = "dropmesh-sealed"

// MinPassphrase is the shortest passphrase Seal accepts, in characters.
const MinPassphrase = 12

// Errors callers branch on.
var (
	// ErrPassphrase: the passphrase is wrong, or the envelope was changed.
	ErrPassphrase = errors.New("wrong passphrase, or the sealed file was changed")
	// ErrWeak: the passphrase is too short to seal with.
	ErrWeak = fmt.Errorf("passphrase too short: use at least %d characters", MinPassphrase)
	// ErrFormat: not an envelope this version can open.
	ErrFormat = errors.New("not a passphrase-sealed dropmesh file")
)

// Envelope is the sealed file.
type Envelope struct {
	Kind string `json:"kind"`
	// Format is 1: argon2id, then AES-256-GCM.
	Format int `json:"format"`
	// Content names what is inside (for example "dropmesh-state").
	Content string `json:"content"`
	KDF     string `json:"kdf"`
	Time    uint32 `json:"time"`
	// MemoryKiB is Argon2's memory in KiB.
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
	Salt      []byte `json:"salt"`
	Nonce     []byte `json:"nonce"`
	// Data is the ciphertext with the GCM tag.
	Data []byte `json:"data"`
}

// The parameters Seal uses, and the bounds Open accepts (a planted file must
// not make the reader spend gigabytes or minutes).
const (
	kdfName     = "argon2id"
	kdfTime     = 3
	kdfMemory   = 64 << 10
	kdfThreads  = 4
	maxTime     = 10
	maxMemory   = 1 << 20
	saltLen     = 16
	formatFirst = 1
)

// IsSealed reports whether data is an envelope (by its kind).
func IsSealed(data []byte) bool {
	var probe struct {
		Kind string `json:"kind"`
	}
	return json.Unmarshal(data, &probe) == nil && probe.Kind == Kind
}

// Seal encrypts plain under passphrase; content names what plain is and is
// authenticated with it.
func Seal(content string, passphrase, plain []byte) ([]byte, error) {
	if utf8.RuneCount(passphrase) < MinPassphrase {
		return nil, ErrWeak
	}
	e := Envelope{Kind: Kind, Format: formatFirst, Content: content, KDF: kdfName, Time: kdfTime, MemoryKiB: kdfMemory, Threads: kdfThreads,
		Salt: make([]byte, saltLen)}
	if _, err := rand.Read(e.Salt); err != nil {
		return nil, fmt.Errorf("seal: salt: %w", err)
	}
	aead, err := e.aead(passphrase)
	if err != nil {
		return nil, err
	}
	e.Nonce = make([]byte, aead.NonceSize())
	if _, err := rand.Read(e.Nonce); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	e.Data = aead.Seal(nil, e.Nonce, plain, e.ad())
	out, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return append(out, '\n'), nil
}

// Open decrypts an envelope with passphrase and returns what it holds and
// its content name.
func Open(data, passphrase []byte) (plain []byte, content string, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var e Envelope
	if err := dec.Decode(&e); err != nil || e.Kind != Kind {
		return nil, "", ErrFormat
	}
	if e.Format != formatFirst || e.KDF != kdfName || e.Time < 1 || e.Time > maxTime || e.MemoryKiB < 8<<10 || e.MemoryKiB > maxMemory ||
		e.Threads < 1 || len(e.Salt) < saltLen {
		return nil, "", fmt.Errorf("%w: format %d, kdf %s (time %d, memory %d KiB, threads %d)", ErrFormat, e.Format, e.KDF, e.Time, e.MemoryKiB, e.Threads)
	}
	aead, err := e.aead(passphrase)
	if err != nil {
		return nil, "", err
	}
	if len(e.Nonce) != aead.NonceSize() {
		return nil, "", ErrPassphrase
	}
	plain, err = aead.Open(nil, e.Nonce, e.Data, e.ad())
	if err != nil {
		return nil, "", ErrPassphrase
	}
	return plain, e.Content, nil
}

// ad binds everything but the ciphertext: content, KDF and parameters.
func (e Envelope) ad() []byte {
	return fmt.Appendf(nil, "%s/%d/%s/%s/%d/%d/%d/%s", e.Kind, e.Format, e.Content, e.KDF, e.Time, e.MemoryKiB, e.Threads,
		base64.RawStdEncoding.EncodeToString(e.Salt))
}

func (e Envelope) aead(passphrase []byte) (cipher.AEAD, error) {
	key := argon2.IDKey(passphrase, e.Salt, e.Time, e.MemoryKiB, e.Threads, 32)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("sealed file cipher: %w", err)
	}
	return cipher.NewGCM(block)
}
