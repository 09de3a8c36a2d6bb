package cloudops

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/digitalocean/godo"
	"golang.org/x/crypto/ssh"
)

// SSHKey is a public key registered with DigitalOcean, which can be put on
// new droplets.
type SSHKey struct {
	ID          int
	Name        string
	Fingerprint string
	PublicKey   string
}

// SSHKeys is what the snapshot builder does with SSH keys.
type SSHKeys interface {
	// CreateSSHKey registers a key, idempotent by name: a key of that name
	// with the same public key is returned as it is; with another public key,
	// or the same public key under another name, it is an error matching
	// ErrConflict (never someone else's key to delete later).
	CreateSSHKey(ctx context.Context, name, publicKey string) (SSHKey, error)
	// FindSSHKey returns the key registered with publicKey (by its
	// fingerprint), registering nothing; ErrNotFound when there is none.
	FindSSHKey(ctx context.Context, publicKey string) (SSHKey, error)
	// DeleteSSHKey deletes a key; one already gone is not an error.
	DeleteSSHKey(ctx context.Context, id int) error
}

// CreateSSHKey implements SSHKeys.
func (do *DigitalOcean) CreateSSHKey(ctx context.Context, name, publicKey string) (SSHKey, error) {
	op := fmt.Sprintf("create ssh key %q", name)
	if do.err != nil {
		return SSHKey{}, fmt.Errorf("%s: %w", op, do.err)
	}
	if strings.TrimSpace(name) == "" || len(name) > 255 || strings.ContainsAny(name, "\r\n\t") {
		return SSHKey{}, fmt.Errorf("%s: %w", op, invalid("key name must be 1-255 printable characters"))
	}
	want, _, _, _, err := ssh.ParseAuthorizedKey([]byte(publicKey))
	if err != nil {
		return SSHKey{}, fmt.Errorf("%s: %w", op, invalid("public key: %v", err))
	}
	var out SSHKey
	err = again(ctx, do.retry, do.log, op, func() error {
		keys, err := listAll(ctx, do.cfg.PageSize, do.c.Keys.List)
		if err != nil {
			return err
		}
		for _, k := range keys {
			have, _, _, _, perr := ssh.ParseAuthorizedKey([]byte(k.PublicKey))
			same := perr == nil && bytes.Equal(have.Marshal(), want.Marshal())
			switch {
			case k.Name == name && same:
				out = SSHKey{ID: k.ID, Name: k.Name, Fingerprint: k.Fingerprint, PublicKey: k.PublicKey}
				return nil
			case k.Name == name:
				return fmt.Errorf("%w: a key of that name (id %d) holds another public key", ErrConflict, k.ID)
			case same:
				return fmt.Errorf("%w: that public key is registered as %q (id %d)", ErrConflict, k.Name, k.ID)
			}
		}
		k, _, err := do.c.Keys.Create(ctx, &godo.KeyCreateRequest{Name: name, PublicKey: strings.TrimSpace(publicKey)})
		if err != nil {
			return err
		}
		out = SSHKey{ID: k.ID, Name: k.Name, Fingerprint: k.Fingerprint, PublicKey: k.PublicKey}
		do.log.Info("ssh key created", "key", name, "id", k.ID)
		return nil
	})
	if err != nil {
		return SSHKey{}, opError(op, err)
	}
	return out, nil
}

// FindSSHKey implements SSHKeys.
func (do *DigitalOcean) FindSSHKey(ctx context.Context, publicKey string) (SSHKey, error) {
	op := "find ssh key"
	if do.err != nil {
		return SSHKey{}, fmt.Errorf("%s: %w", op, do.err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(publicKey))
	if err != nil {
		return SSHKey{}, fmt.Errorf("%s: %w", op, invalid("public key: %v", err))
	}
	// DigitalOcean names a key by the MD5 fingerprint of its public key.
	fp := ssh.FingerprintLegacyMD5(pub)
	op = fmt.Sprintf("find ssh key %s", fp)
	k, _, err := do.c.Keys.GetByFingerprint(ctx, fp)
	if err != nil {
		return SSHKey{}, opError(op, err)
	}
	return SSHKey{ID: k.ID, Name: k.Name, Fingerprint: k.Fingerprint, PublicKey: k.PublicKey}, nil
}

// DeleteSSHKey implements SSHKeys.
func (do *DigitalOcean) DeleteSSHKey(ctx context.Context, id int) error {
	op := fmt.Sprintf("delete ssh key %d", id)
	if err := do.check(id, "ssh key"); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err := do.c.Keys.DeleteByID(ctx, id)
	if err = ignoreNotFound(err); err != nil {
		return opError(op, err)
	}
	do.log.Info("ssh key deleted", "id", id)
	return nil
}
