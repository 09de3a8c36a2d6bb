package runtime

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// ContextInfo describes a validated build context.
type ContextInfo struct {
	// Digest is "sha256:<hex>" of the normalized tar: the same files give
	// the same digest however they were packed (./ prefixes, owners, gzip).
	Digest string
	// Size is the length of the normalized tar in bytes.
	Size int64
	// Files counts regular files (hard links included), Entries every entry kept.
	Files, Entries int
	// Dockerfile is the Dockerfile's path in the context ("" when the
	// validation required none).
	Dockerfile string
}

// maxUstarTime is the first modification time (in Unix seconds) a plain
// ustar header cannot hold; the normalized tar keeps times below it.
const maxUstarTime = 1 << 33

// maxSymlinkHops bounds symlink resolution; more is treated as a loop.
const maxSymlinkHops = 40

// ValidateBuildContext checks an uploaded build context whose Dockerfile is
// "Dockerfile" at its root. See ValidateBuildContextFor.
func ValidateBuildContext(r io.Reader, maxBytes int64) (ContextInfo, []byte, error) {
	return ValidateBuildContextFor(r, maxBytes, "Dockerfile")
}

// ValidateBuildContextFor is ValidateBuildContextTo into memory: it
// returns the normalized tar as bytes. Only for contexts known to be small
// (tests, tools); uploads go through ValidateBuildContextTo to a file.
func ValidateBuildContextFor(r io.Reader, maxBytes int64, dockerfile string) (ContextInfo, []byte, error) {
	var out memOut
	info, err := ValidateBuildContextTo(r, &out, maxBytes, dockerfile)
	if err != nil {
		return ContextInfo{}, nil, err
	}
	return info, out.b, nil
}

// ContextOut is where ValidateBuildContextTo writes the normalized tar: it
// reads the Dockerfile back from it (an *os.File is one).
type ContextOut interface {
	io.Writer
	io.ReaderAt
}

// memOut is a ContextOut in memory.
type memOut struct{ b []byte }

func (m *memOut) Write(p []byte) (int, error) { m.b = append(m.b, p...); return len(p), nil }
func (m *memOut) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(m.b).ReadAt(p, off)
}

// MaxContextEntries bounds the entries of a build context, and
// MaxContextNameBytes the sum of their names: the validator remembers each
// name, so these bound its memory however the archive is shaped.
const (
	MaxContextEntries   = 200_000
	MaxContextNameBytes = 16 << 20
)

// ValidateBuildContextTo reads a tar build context (plain or
// gzip-compressed, detected by its magic) as a stream, reading at most
// maxBytes of uncompressed tar, and writes the normalized tar to out as it
// goes (memory stays bounded whatever the archive expands to: a refusal
// comes as soon as the limit is passed, and out then holds a partial tar
// the caller discards). It refuses the context, naming the entry, when an
// entry is too large, has an absolute path or a ".." element, is a symlink
// or hard link whose target leaves the context (absolute targets, ".."
// escaping the root, chains through other links), lies under a symlink, is a
// device file or FIFO, or appears twice; when it has more than
// MaxContextEntries entries; or when dockerfile is not a regular
// file in it (dockerfile "" requires none: an upload is stored before the
// spec that names its Dockerfile arrives), or when that Dockerfile (with
// dockerfile "", a root "Dockerfile" if there is one) fails
// CheckDockerfile: an ADD of a URL. The normalized tar has entries cleaned,
// owners and extended attributes dropped, and is uncompressed; the returned
// digest is its sha256, so the caller can store it by digest. Every refusal
// wraps ErrInvalid.
func ValidateBuildContextTo(r io.Reader, out ContextOut, maxBytes int64, dockerfile string) (ContextInfo, error) {
	if maxBytes <= 0 {
		return ContextInfo{}, invalidf("build context: the size limit %d must be positive", maxBytes)
	}
	if dockerfile != "" {
		if err := checkContextPath(dockerfile); err != nil {
			return ContextInfo{}, invalidf("build context: Dockerfile name %q: %v", dockerfile, err)
		}
		dockerfile = path.Clean(dockerfile)
	}

	in, err := decompress(r)
	if err != nil {
		return ContextInfo{}, err
	}
	capped := &capReader{r: in, left: maxBytes}
	tr := tar.NewReader(capped)

	hash := sha256.New()
	bw := bufio.NewWriterSize(out, 64<<10)
	cw := &countWriter{w: io.MultiWriter(bw, hash)}
	tw := tar.NewWriter(cw)
	v := contextValidator{
		kinds:    map[string]byte{},
		links:    map[string]string{},
		parents:  map[string]bool{},
		maxBytes: maxBytes,
	}
	// Where the Dockerfile's candidates lie in out, to read it back.
	want := dockerfile
	if want == "" {
		want = "Dockerfile"
	}
	type span struct{ off, size int64 }
	files := map[string]span{} // regular files small enough to be a Dockerfile
	var wantLink string        // the Dockerfile is a hard link to this
	nameBytes := 0
	info := ContextInfo{Dockerfile: dockerfile}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if capped.exceeded {
				return ContextInfo{}, invalidf("build context is larger than the %d-byte limit", maxBytes)
			}
			return ContextInfo{}, invalidf("build context is not a valid tar archive: %v", err)
		}
		if nameBytes += len(hdr.Name) + len(hdr.Linkname); info.Entries >= MaxContextEntries || nameBytes > MaxContextNameBytes {
			return ContextInfo{}, invalidf("build context has more than %d entries or %d bytes of names", MaxContextEntries, MaxContextNameBytes)
		}
		nh, err := v.check(hdr, maxBytes-capped.left)
		if err != nil {
			return ContextInfo{}, err
		}
		if nh == nil {
			continue // the root entry or a global header: nothing to keep
		}
		if err := tw.WriteHeader(nh); err != nil {
			return ContextInfo{}, invalidf("build context entry %q: %v", hdr.Name, err)
		}
		if nh.Typeflag == tar.TypeReg {
			if nh.Size <= maxDockerfileBytes {
				files[nh.Name] = span{off: cw.n, size: nh.Size}
			}
			if _, err := io.Copy(tw, tr); err != nil {
				if capped.exceeded {
					return ContextInfo{}, invalidf("build context entry %q: the context is larger than the %d-byte limit", hdr.Name, maxBytes)
				}
				return ContextInfo{}, invalidf("build context entry %q: %v", hdr.Name, err)
			}
			info.Files++
		}
		if nh.Typeflag == tar.TypeLink {
			if nh.Name == want {
				wantLink = nh.Linkname
			}
			info.Files++
		}
		info.Entries++
	}
	if err := v.checkLinks(); err != nil {
		return ContextInfo{}, err
	}
	if k := v.kinds[dockerfile]; dockerfile != "" && k != tar.TypeReg && k != tar.TypeLink {
		if k == 0 {
			return ContextInfo{}, invalidf("build context has no %s", dockerfile)
		}
		return ContextInfo{}, invalidf("build context entry %q: the Dockerfile must be a regular file", dockerfile)
	}
	if err := tw.Close(); err != nil {
		return ContextInfo{}, fmt.Errorf("build context: write normalized tar: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return ContextInfo{}, fmt.Errorf("build context: write normalized tar: %w", err)
	}
	// The Dockerfile may not make the daemon fetch anything (CheckDockerfile):
	// the one named, or, for an upload that names none yet, the root one.
	switch k := v.kinds[want]; {
	case k == tar.TypeReg || k == tar.TypeLink:
		name := want
		if k == tar.TypeLink {
			name = wantLink
			if v.kinds[name] != tar.TypeReg {
				return ContextInfo{}, invalidf("build context entry %q: a hard link to another link", want)
			}
		}
		sp, ok := files[name]
		if !ok {
			return ContextInfo{}, invalidf("build context entry %q: a Dockerfile larger than the %d-byte limit", want, maxDockerfileBytes)
		}
		content := make([]byte, sp.size)
		if _, err := out.ReadAt(content, sp.off); err != nil && !(errors.Is(err, io.EOF) && sp.size == 0) {
			return ContextInfo{}, fmt.Errorf("build context: read back %s: %w", want, err)
		}
		if err := CheckDockerfile(want, content); err != nil {
			return ContextInfo{}, err
		}
	case k != 0 && dockerfile == "":
		return ContextInfo{}, invalidf("build context entry %q: the Dockerfile must be a regular file", want)
	}
	info.Digest = "sha256:" + hex.EncodeToString(hash.Sum(nil))
	info.Size = cw.n
	return info, nil
}

// countWriter counts what passes through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// decompress detects gzip by its magic and refuses other compressions
// with a clear message.
func decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, invalidf("build context: bad gzip data: %v", err)
		}
		return zr, nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return nil, invalidf("build context is bzip2-compressed: send a plain or gzip-compressed tar")
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return nil, invalidf("build context is xz-compressed: send a plain or gzip-compressed tar")
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return nil, invalidf("build context is zstd-compressed: send a plain or gzip-compressed tar")
	}
	return br, nil
}

// capReader reads at most left bytes and remembers that it was cut short.
type capReader struct {
	r        io.Reader
	left     int64
	exceeded bool
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One more byte tells "exactly at the limit" from "over it".
		var one [1]byte
		if n, _ := c.r.Read(one[:]); n > 0 {
			c.exceeded = true
			return 0, errors.New("size limit exceeded")
		}
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// contextValidator holds what the entries seen so far declared.
type contextValidator struct {
	kinds    map[string]byte   // clean name -> tar type flag
	links    map[string]string // symlink name -> target
	parents  map[string]bool   // every directory some entry lies in
	maxBytes int64
}

// check validates one header and returns the normalized header to write,
// or nil for an entry that is dropped.
func (v *contextValidator) check(hdr *tar.Header, readSoFar int64) (*tar.Header, error) {
	bad := func(format string, args ...any) error {
		return invalidf("build context entry %q: %s", hdr.Name, fmt.Sprintf(format, args...))
	}
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil, nil
	case tar.TypeChar, tar.TypeBlock:
		return nil, bad("device files are not allowed")
	case tar.TypeFifo:
		return nil, bad("FIFOs are not allowed")
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
	default:
		return nil, bad("entry type %q is not allowed (only files, directories and links)", hdr.Typeflag)
	}
	name, err := cleanEntryName(hdr.Name)
	if err != nil {
		return nil, bad("%v", err)
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return nil, bad("the context root must be a directory")
		}
		return nil, nil
	}
	for p := path.Dir(name); p != "."; p = path.Dir(p) {
		if _, ok := v.links[p]; ok {
			return nil, bad("lies under the symlink %q", p)
		}
		if k, ok := v.kinds[p]; ok && k != tar.TypeDir {
			return nil, bad("lies under %q, which is not a directory", p)
		}
	}
	if k, ok := v.kinds[name]; ok {
		if !(k == tar.TypeDir && hdr.Typeflag == tar.TypeDir) {
			return nil, bad("appears twice in the archive")
		}
		return nil, nil // a repeated directory changes nothing
	}
	if v.parents[name] && hdr.Typeflag != tar.TypeDir {
		return nil, bad("replaces a directory that earlier entries lie in")
	}

	nh := &tar.Header{Name: name, Mode: hdr.Mode & 0o777, ModTime: time.Unix(0, 0)}
	if sec := hdr.ModTime.Unix(); sec > 0 && sec < maxUstarTime {
		nh.ModTime = time.Unix(sec, 0) // whole seconds, in the plain ustar range
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		if hdr.Size < 0 {
			return nil, bad("negative size")
		}
		if hdr.Size > v.maxBytes-readSoFar {
			return nil, bad("%d bytes do not fit in the %d-byte limit of the build context", hdr.Size, v.maxBytes)
		}
		nh.Typeflag, nh.Size = tar.TypeReg, hdr.Size
	case tar.TypeDir:
		nh.Typeflag, nh.Name = tar.TypeDir, name+"/"
	case tar.TypeSymlink:
		t := hdr.Linkname
		switch {
		case t == "":
			return nil, bad("symlink with an empty target")
		case strings.ContainsRune(t, 0):
			return nil, bad("symlink target contains a NUL byte")
		case path.IsAbs(t):
			return nil, bad("symlink to the absolute path %q leaves the context", t)
		}
		if p := path.Join(path.Dir(name), t); p == ".." || strings.HasPrefix(p, "../") {
			return nil, bad("symlink to %q leaves the context", t)
		}
		v.links[name] = t
		nh.Typeflag, nh.Linkname = tar.TypeSymlink, t
	case tar.TypeLink:
		t, err := cleanEntryName(hdr.Linkname)
		if err != nil {
			return nil, bad("hard link target: %v", err)
		}
		if k := v.kinds[t]; k != tar.TypeReg && k != tar.TypeLink {
			return nil, bad("hard link to %q, which is not a file earlier in the context", hdr.Linkname)
		}
		nh.Typeflag, nh.Linkname = tar.TypeLink, t
	}
	v.kinds[name] = nh.Typeflag
	for p := path.Dir(name); p != "."; p = path.Dir(p) {
		v.parents[p] = true
	}
	return nh, nil
}

// checkLinks resolves every symlink through the others (the archive order
// does not matter to a build) and refuses those that end outside the root.
func (v *contextValidator) checkLinks() error {
	for name, target := range v.links {
		if reason := resolveEscapes(v.links, name); reason != "" {
			return invalidf("build context entry %q: symlink to %q %s", name, target, reason)
		}
	}
	return nil
}

// resolveEscapes follows the symlink name through the context's symlinks
// and says why it is unsafe ("leaves the context", "is a loop"), or "".
func resolveEscapes(links map[string]string, name string) string {
	var stack []string
	if d := path.Dir(name); d != "." {
		stack = strings.Split(d, "/")
	}
	queue := strings.Split(links[name], "/")
	hops := 0
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return "leaves the context"
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, c)
		t, ok := links[strings.Join(stack, "/")]
		if !ok {
			continue
		}
		if hops++; hops > maxSymlinkHops {
			return "is a loop"
		}
		if path.IsAbs(t) {
			return "leaves the context"
		}
		stack = stack[:len(stack)-1]
		queue = append(strings.Split(t, "/"), queue...)
	}
	return ""
}

// cleanEntryName turns an archive name into a clean relative path, or says
// why it is not one.
func cleanEntryName(raw string) (string, error) {
	if err := checkContextPath(raw); err != nil {
		return "", err
	}
	return path.Clean(raw), nil
}

// checkContextPath accepts relative paths without ".." elements.
func checkContextPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case len(p) > 4096:
		return errors.New("path longer than 4096 bytes")
	case strings.ContainsRune(p, 0):
		return errors.New("path contains a NUL byte")
	case path.IsAbs(p):
		return errors.New("absolute path")
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return errors.New(`path has a ".." element`)
		}
	}
	return nil
}

// invalidErr is a refusal of bad input; errors.Is(err, ErrInvalid) holds.
type invalidErr struct{ msg string }

func (e *invalidErr) Error() string        { return e.msg }
func (e *invalidErr) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidErr{msg: fmt.Sprintf(format, args...)}
}
