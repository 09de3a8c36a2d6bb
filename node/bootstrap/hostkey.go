package bootstrap

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ErrHostKeyChanged is returned when an SSH server presents another host
// key than the one pinned for it: the connection is refused, as it may be
// someone in the middle.
var ErrHostKeyChanged = errors.New("ssh host key changed")

// HostKeys pins SSH host keys on first use in a known_hosts file. A pin is
// keyed by a name the caller picks (the builder uses "droplet-<id>"), not by
// address: DigitalOcean hands a deleted droplet's address to the next one,
// whose key differs, and a droplet is what the key belongs to.
type HostKeys struct {
	path string
	mu   sync.Mutex
}

// NewHostKeys uses the known_hosts file at path (created on the first pin,
// mode 0600).
func NewHostKeys(path string) *HostKeys { return &HostKeys{path: path} }

// Callback returns the host key check for the server pinned as name: the
// first key it sees is recorded; afterwards only that key is accepted, any
// other fails with an error matching ErrHostKeyChanged.
func (h *HostKeys) Callback(name string) ssh.HostKeyCallback {
	return func(_ string, remote net.Addr, key ssh.PublicKey) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		pinned, ok, err := h.pinnedLocked(name)
		if err != nil {
			return err
		}
		if ok {
			if bytes.Equal(pinned.Marshal(), key.Marshal()) {
				return nil
			}
			return fmt.Errorf("%w: %s at %s presented %s %s, but %s %s is pinned in %s; refusing to connect",
				ErrHostKeyChanged, name, remote, key.Type(), ssh.FingerprintSHA256(key),
				pinned.Type(), ssh.FingerprintSHA256(pinned), h.path)
		}
		return h.appendLocked(name, key)
	}
}

// Pinned returns the key pinned for name, if any.
func (h *HostKeys) Pinned(name string) (ssh.PublicKey, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pinnedLocked(name)
}

func (h *HostKeys) pinnedLocked(name string) (ssh.PublicKey, bool, error) {
	data, err := os.ReadFile(h.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read pinned host keys: %w", err)
	}
	want := knownhosts.Normalize(name)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		_, hosts, key, _, _, err := ssh.ParseKnownHosts(line)
		if err != nil {
			return nil, false, fmt.Errorf("pinned host keys %s line %d: %w", h.path, n, err)
		}
		for _, host := range hosts {
			if host == want {
				return key, true, nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, false, fmt.Errorf("read pinned host keys %s: %w", h.path, err)
	}
	return nil, false, nil
}

func (h *HostKeys) appendLocked(name string, key ssh.PublicKey) error {
	f, err := os.OpenFile(h.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("pin host key of %s: %w", name, err)
	}
	_, werr := fmt.Fprintln(f, knownhosts.Line([]string{name}, key))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("pin host key of %s: %w", name, werr)
	}
	return nil
}
