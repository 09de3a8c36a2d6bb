package imagepeer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/dropmesh/dropmesh/node/atomicfile"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Ledger is the on-disk record of the images dropmesh put into this node's
// engine by pulling them from a registry, fetching them from a peer or
// receiving them from `dropmesh push`: the only images (besides its own
// builds, labelled dropmesh-build/...) that housekeeping may remove. An
// image the operator put there is never in it. One JSON file, written
// whole; safe for concurrent use.
type Ledger struct {
	path string
	mu   sync.Mutex
}

// LedgerEntry is one image dropmesh put into the engine: the image id the
// reference named then, and when.
type LedgerEntry struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
}

// NewLedger keeps the ledger in the file path (made on the first record).
func NewLedger(path string) *Ledger { return &Ledger{path: path} }

func (l *Ledger) read() (map[string]LedgerEntry, error) {
	m := map[string]LedgerEntry{}
	b, err := os.ReadFile(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("image ledger %s: %w", l.path, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("image ledger %s: %w", l.path, err)
	}
	return m, nil
}

func (l *Ledger) write(m map[string]LedgerEntry) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("image ledger %s: %w", l.path, err)
	}
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return fmt.Errorf("image ledger %s: %w", l.path, err)
	}
	if err := atomicfile.Write(l.path, b, 0o600); err != nil {
		return fmt.Errorf("image ledger %s: %w", l.path, err)
	}
	return nil
}

// Record notes that dropmesh put image id into the engine under reference
// ref at time at. A reference recorded again with the same id keeps its
// first time; with another id (a newer :latest) it starts again.
func (l *Ledger) Record(ref, id string, at time.Time) error {
	if ref == "" || ValidDigest(id) != nil {
		return fmt.Errorf("image ledger: %w: %q (%q)", ErrInvalid, ref, id)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	m, err := l.read()
	if err != nil {
		return err
	}
	if e, ok := m[ref]; ok && e.ID == id {
		return nil
	}
	m[ref] = LedgerEntry{ID: id, At: at.UTC()}
	return l.write(m)
}

// Entries are the recorded images by reference.
func (l *Ledger) Entries() (map[string]LedgerEntry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.read()
}

// Forget drops a reference from the ledger (removed, or no longer dropmesh's).
func (l *Ledger) Forget(ref string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	m, err := l.read()
	if err != nil {
		return err
	}
	if _, ok := m[ref]; !ok {
		return nil
	}
	delete(m, ref)
	return l.write(m)
}

// UnusedImages are the references of recorded images that no kept
// generation references (the current spec, the live one and the revisions
// kept for a rollback, of every service: raftfsm keeps MaxRevisions and
// always the live one), that no instance of any node reports running, and
// that were recorded longer than grace ago. canon puts references in one
// form (Docker's full name with tag). Pure: the caller passes the time.
func UnusedImages(s *raftfsm.State, entries map[string]LedgerEntry, canon func(string) string, now time.Time, grace time.Duration) []string {
	used := map[string]bool{}
	addSpec := func(spec raftfsm.ServiceSpec) {
		if spec.Image != "" {
			if c := canon(spec.Image); c != "" {
				used[c] = true
			}
			used[spec.Image] = true
		}
	}
	for _, svc := range s.Services {
		addSpec(svc.Spec)
		for _, rev := range svc.Revisions {
			addSpec(rev.Spec)
		}
	}
	running := map[string]bool{}
	for _, in := range s.Instances {
		if in.ImageDigest != "" {
			running[in.ImageDigest] = true
		}
	}
	var out []string
	for ref, e := range entries {
		if used[ref] || used[canon(ref)] || running[e.ID] || now.Sub(e.At) <= grace {
			continue
		}
		out = append(out, ref)
	}
	slices.Sort(out)
	return out
}

// Remover is what removing unused images needs of a Docker engine
// (node/runtime.Runtime has these methods).
type Remover interface {
	// ImageLayers is an image's id, tags and uncompressed layer digests.
	ImageLayers(ctx context.Context, ref string) (id string, tags, diffIDs []string, err error)
	// RemoveImage removes a reference (the image once no other names it).
	RemoveImage(ctx context.Context, ref string) error
	// ImagesInUse are the image ids of every container, running or not.
	ImagesInUse(ctx context.Context) (map[string]bool, error)
}

// Remove removes the given recorded references (UnusedImages) from the
// engine, except those a container uses, and forgets them. A reference
// that names another image than the one recorded (the operator re-tagged
// it, or it is gone) is forgotten and left alone. Removing a reference
// only untags an image that other references still name. It returns the
// references removed.
func (l *Ledger) Remove(ctx context.Context, eng Remover, refs []string, logger *slog.Logger) ([]string, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if len(refs) == 0 {
		return nil, nil
	}
	entries, err := l.Entries()
	if err != nil {
		return nil, err
	}
	inUse, err := eng.ImagesInUse(ctx)
	if err != nil {
		return nil, fmt.Errorf("unused images: %w", err)
	}
	var removed []string
	for _, ref := range refs {
		e, ok := entries[ref]
		if !ok {
			continue
		}
		id, _, _, err := eng.ImageLayers(ctx, ref)
		if err != nil || id != e.ID {
			// Gone, or now another image: not the one dropmesh put there.
			if ferr := l.Forget(ref); ferr != nil {
				return removed, ferr
			}
			continue
		}
		if inUse[id] {
			logger.Debug("unreferenced image kept: a container uses it", "image", ref, "id", id)
			continue
		}
		if err := eng.RemoveImage(ctx, ref); err != nil {
			logger.Warn("remove unreferenced image", "image", ref, "err", err)
			continue
		}
		logger.Info("unreferenced image removed", "image", ref, "id", id, "recorded", e.At)
		removed = append(removed, ref)
		if err := l.Forget(ref); err != nil {
			return removed, err
		}
	}
	return removed, nil
}
