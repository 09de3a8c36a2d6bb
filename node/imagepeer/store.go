package imagepeer

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/dropmesh/dropmesh/node/atomicfile"
)

// Engine is what this package needs of a Docker engine
// (node/runtime.Runtime has these methods).
type Engine interface {
	// ImageLayers is an image's id, tags and uncompressed layer digests.
	ImageLayers(ctx context.Context, ref string) (id string, tags, diffIDs []string, err error)
	// SaveImage streams docker save of one image.
	SaveImage(ctx context.Context, ref string) (io.ReadCloser, error)
	// LoadImage is docker load of a docker-save stream.
	LoadImage(ctx context.Context, tarStream io.Reader) error
	// LayerChains are the chain ids of the layer stacks the engine holds.
	LayerChains(ctx context.Context) (map[string]bool, error)
}

// Sentinel errors callers branch on.
var (
	// ErrNotFound: the image is not in this engine, or not one this node serves.
	ErrNotFound = errors.New("image not found")
	// ErrInvalid: a digest or reference that cannot be one.
	ErrInvalid = errors.New("invalid image request")
	// ErrDigest: downloaded bytes do not hash to the digest they claim.
	ErrDigest = errors.New("digest mismatch")
)

// Descriptor names an image and its layers: what a peer answers for a
// reference. ID is the config blob's digest (the Docker image id);
// DiffIDs and Sizes are the uncompressed layers, bottom first.
type Descriptor struct {
	ID      string   `json:"id"`
	DiffIDs []string `json:"diff_ids"`
	Sizes   []int64  `json:"sizes"`
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// ValidDigest refuses anything but "sha256:" and 64 lower-case hex digits.
func ValidDigest(d string) error {
	if !digestRE.MatchString(d) {
		return fmt.Errorf("%w: digest %q: want sha256:<64 hex digits>", ErrInvalid, d)
	}
	return nil
}

// Store holds the exported images of one engine under Dir: blobs/<hex> (the
// config blobs and the uncompressed layers, by digest) and images/<hex>.json
// (a Descriptor per exported image). Exports are serialised; reads are not.
type Store struct {
	dir    string
	engine Engine
	mu     sync.Mutex
}

// NewStore keeps exports of engine's images under dir.
func NewStore(dir string, engine Engine) *Store {
	return &Store{dir: dir, engine: engine}
}

func (s *Store) blobPath(digest string) string {
	return filepath.Join(s.dir, "blobs", strings.TrimPrefix(digest, "sha256:"))
}

func (s *Store) descPath(id string) string {
	return filepath.Join(s.dir, "images", strings.TrimPrefix(id, "sha256:")+".json")
}

// Export makes ref's image servable: docker save once, unpacked into the
// store, every layer checked against its diff id. It returns the image's
// descriptor, or an error wrapping ErrNotFound when the engine lacks it.
func (s *Store) Export(ctx context.Context, ref string) (Descriptor, error) {
	id, _, _, err := s.engine.ImageLayers(ctx, ref)
	if err != nil {
		return Descriptor{}, fmt.Errorf("%w: %s: %w", ErrNotFound, ref, err)
	}
	if d, err := s.Descriptor(id); err == nil {
		return d, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, err := s.Descriptor(id); err == nil {
		return d, nil
	}
	return s.export(ctx, id)
}

// Descriptor is an exported image's descriptor (ErrNotFound if not exported).
func (s *Store) Descriptor(id string) (Descriptor, error) {
	var d Descriptor
	if err := ValidDigest(id); err != nil {
		return d, err
	}
	b, err := os.ReadFile(s.descPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return d, fmt.Errorf("image %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return d, fmt.Errorf("image %s: %w", id, err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("image %s descriptor: %w", id, err)
	}
	for _, l := range append([]string{d.ID}, d.DiffIDs...) {
		if _, err := os.Stat(s.blobPath(l)); err != nil {
			return d, fmt.Errorf("image %s blob %s: %w", id, l, ErrNotFound)
		}
	}
	return d, nil
}

// saveManifest is one entry of docker save's manifest.json.
type saveManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// imageConfig is the part of an image config this package reads.
type imageConfig struct {
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

func (s *Store) export(ctx context.Context, id string) (Descriptor, error) {
	tmp, err := os.MkdirTemp(s.ensureDir("tmp"), "save-")
	if err != nil {
		return Descriptor{}, fmt.Errorf("export %s: %w", id, err)
	}
	defer os.RemoveAll(tmp)
	rc, err := s.engine.SaveImage(ctx, id)
	if err != nil {
		return Descriptor{}, fmt.Errorf("export %s: %w", id, err)
	}
	err = untar(rc, tmp)
	rc.Close()
	if err != nil {
		return Descriptor{}, fmt.Errorf("export %s: %w", id, err)
	}
	mb, err := os.ReadFile(filepath.Join(tmp, "manifest.json"))
	if err != nil {
		return Descriptor{}, fmt.Errorf("export %s: manifest.json: %w", id, err)
	}
	var ms []saveManifest
	if err := json.Unmarshal(mb, &ms); err != nil || len(ms) != 1 {
		return Descriptor{}, fmt.Errorf("export %s: manifest.json: want one image (%v)", id, err)
	}
	m := ms[0]
	cfgBytes, err := os.ReadFile(filepath.Join(tmp, filepath.FromSlash(path.Clean(m.Config))))
	if err != nil {
		return Descriptor{}, fmt.Errorf("export %s: config: %w", id, err)
	}
	if got := digestOf(cfgBytes); got != id {
		return Descriptor{}, fmt.Errorf("export %s: config hashes to %s: %w", id, got, ErrDigest)
	}
	var cfg imageConfig
	if err := json.Unmarshal(cfgBytes, &cfg); err != nil {
		return Descriptor{}, fmt.Errorf("export %s: config: %w", id, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return Descriptor{}, fmt.Errorf("export %s: %d layers for %d diff ids", id, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	d := Descriptor{ID: id, DiffIDs: cfg.RootFS.DiffIDs}
	blobs := s.ensureDir("blobs")
	for i, diff := range cfg.RootFS.DiffIDs {
		if err := ValidDigest(diff); err != nil {
			return Descriptor{}, fmt.Errorf("export %s: %w", id, err)
		}
		src := filepath.Join(tmp, filepath.FromSlash(path.Clean(m.Layers[i])))
		got, size, err := hashFile(src)
		if err != nil {
			return Descriptor{}, fmt.Errorf("export %s layer %d: %w", id, i, err)
		}
		if got != diff {
			// A compressed layer (containerd image store): not servable as is.
			return Descriptor{}, fmt.Errorf("export %s layer %d hashes to %s, not its diff id %s: %w", id, i, got, diff, ErrDigest)
		}
		if err := os.Rename(src, s.blobPath(diff)); err != nil {
			return Descriptor{}, fmt.Errorf("export %s layer %d: %w", id, i, err)
		}
		d.Sizes = append(d.Sizes, size)
	}
	if err := atomicfile.Write(filepath.Join(blobs, strings.TrimPrefix(id, "sha256:")), cfgBytes, 0o600); err != nil {
		return Descriptor{}, fmt.Errorf("export %s: %w", id, err)
	}
	db, _ := json.Marshal(d)
	s.ensureDir("images")
	if err := atomicfile.Write(s.descPath(id), db, 0o600); err != nil {
		return Descriptor{}, fmt.Errorf("export %s: %w", id, err)
	}
	return d, nil
}

// OpenBlob opens a config or layer blob of an exported image.
func (s *Store) OpenBlob(digest string) (*os.File, error) {
	if err := ValidDigest(digest); err != nil {
		return nil, err
	}
	f, err := os.Open(s.blobPath(digest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", digest, err)
	}
	return f, nil
}

// Prune removes the exports of images keep refuses (by image id), and the
// blobs no kept export uses. It returns the bytes freed.
func (s *Store) Prune(keep func(id string) bool) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	used := map[string]bool{}
	ents, _ := os.ReadDir(filepath.Join(s.dir, "images"))
	for _, e := range ents {
		id := "sha256:" + strings.TrimSuffix(e.Name(), ".json")
		if !keep(id) {
			if err := os.Remove(filepath.Join(s.dir, "images", e.Name())); err != nil {
				return 0, fmt.Errorf("prune %s: %w", id, err)
			}
			continue
		}
		d, err := s.Descriptor(id)
		if err != nil {
			continue
		}
		for _, b := range append([]string{d.ID}, d.DiffIDs...) {
			used[strings.TrimPrefix(b, "sha256:")] = true
		}
	}
	var freed int64
	blobs, _ := os.ReadDir(filepath.Join(s.dir, "blobs"))
	for _, e := range blobs {
		if used[e.Name()] {
			continue
		}
		if info, err := e.Info(); err == nil {
			freed += info.Size()
		}
		if err := os.Remove(filepath.Join(s.dir, "blobs", e.Name())); err != nil {
			return freed, fmt.Errorf("prune blob %s: %w", e.Name(), err)
		}
	}
	return freed, nil
}

// Usage is the bytes the store's blobs take on disk.
func (s *Store) Usage() int64 {
	var n int64
	blobs, _ := os.ReadDir(filepath.Join(s.dir, "blobs"))
	for _, e := range blobs {
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}

func (s *Store) ensureDir(name string) string {
	p := filepath.Join(s.dir, name)
	_ = os.MkdirAll(p, 0o700)
	return p
}

// untar unpacks the regular files of a docker save stream into dir,
// refusing paths that leave it.
func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("docker save stream: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue // directories are made as needed; docker save has no other kinds worth keeping
		}
		name := path.Clean(h.Name)
		if !fs.ValidPath(name) {
			return fmt.Errorf("docker save stream: bad path %q", h.Name)
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("docker save stream %s: %w", name, err)
		}
	}
}

func digestOf(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

func hashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), n, nil
}
