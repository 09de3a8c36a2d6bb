package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ErrContextQuota is the refusal of a build context that does not fit in
// what a node keeps for build contexts (it wraps ErrInvalid too).
var ErrContextQuota = errors.New("build context quota")

// ContextStore keeps validated build contexts in one directory of a node
// as <hex digest>.tar. It is what stands between an upload and the node's
// memory and disk: a context streams to a temporary file there (never into
// memory), under a per-upload limit and a limit on the directory's total,
// and one context is decompressed and validated at a time per store (one
// store per node), others wait their turn.
type ContextStore struct {
	dir       string
	perUpload int64
	perNode   int64
	turn      chan struct{} // one decompression at a time
}

// NewContextStore keeps contexts in dir: each at most perUpload bytes
// uncompressed, all together at most perNode bytes.
func NewContextStore(dir string, perUpload, perNode int64) *ContextStore {
	return &ContextStore{dir: dir, perUpload: perUpload, perNode: perNode, turn: make(chan struct{}, 1)}
}

// Path is where the context with digest ("sha256:<hex>") is stored.
func (s *ContextStore) Path(digest string) string {
	return filepath.Join(s.dir, strings.TrimPrefix(digest, "sha256:")+".tar")
}

// wait takes the store's one decompression turn, or gives up with ctx.
func (s *ContextStore) wait(ctx context.Context) (func(), error) {
	select {
	case s.turn <- struct{}{}:
		return func() { <-s.turn }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("build context: waiting for this node's other upload: %w", ctx.Err())
	}
}

// Store validates r (ValidateBuildContextTo, dockerfile "") into the store
// and returns what it holds. A refusal leaves nothing behind.
func (s *ContextStore) Store(ctx context.Context, r io.Reader) (ContextInfo, error) {
	done, err := s.wait(ctx)
	if err != nil {
		return ContextInfo{}, err
	}
	defer done()
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return ContextInfo{}, fmt.Errorf("store build context: %w", err)
	}
	used, err := s.used()
	if err != nil {
		return ContextInfo{}, err
	}
	limit, byNode := s.perUpload, false
	if left := s.perNode - used; left < limit {
		limit, byNode = left, true
	}
	if limit <= 0 {
		return ContextInfo{}, &quotaErr{msg: fmt.Sprintf("build context: this node's %d bytes for build contexts are used up", s.perNode)}
	}
	f, err := os.CreateTemp(s.dir, "upload-*.tmp")
	if err != nil {
		return ContextInfo{}, fmt.Errorf("store build context: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name()) // a no-op once renamed
	}()
	info, err := ValidateBuildContextTo(r, f, limit, "")
	if err != nil {
		if byNode && strings.Contains(err.Error(), "-byte limit") {
			return ContextInfo{}, &quotaErr{msg: fmt.Sprintf("%v (what is left of this node's %d bytes for build contexts)", err, s.perNode)}
		}
		return ContextInfo{}, err
	}
	if err := f.Sync(); err != nil {
		return ContextInfo{}, fmt.Errorf("store build context: %w", err)
	}
	if err := os.Rename(f.Name(), s.Path(info.Digest)); err != nil {
		return ContextInfo{}, fmt.Errorf("store build context: %w", err)
	}
	return info, nil
}

// Checked validates the stored context digest for dockerfile into a
// temporary file and returns it (positioned at its start) for a build; the
// caller closes it, which removes it.
func (s *ContextStore) Checked(ctx context.Context, src io.Reader, dockerfile string) (io.ReadSeekCloser, error) {
	done, err := s.wait(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	f, err := os.CreateTemp(s.dir, "build-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	os.Remove(f.Name()) // unlinked now: gone when closed, whatever happens
	if _, err := ValidateBuildContextTo(src, f, s.perUpload, dockerfile); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("build context: %w", err)
	}
	return f, nil
}

// used sums the sizes of the stored contexts (temporary files of an
// interrupted upload are removed: only the turn holder writes them).
func (s *ContextStore) used() (int64, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, fmt.Errorf("build contexts: %w", err)
	}
	var n int64
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			os.Remove(filepath.Join(s.dir, e.Name()))
			continue
		}
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n, nil
}

// quotaErr is a refusal by the node's quota: errors.Is holds for both
// ErrContextQuota and ErrInvalid.
type quotaErr struct{ msg string }

func (e *quotaErr) Error() string { return e.msg }
func (e *quotaErr) Is(target error) bool {
	return target == ErrInvalid || target == ErrContextQuota
}
