package runtime_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/dropmesh/dropmesh/node/runtime"
)

// bomb is a gzip of a tar with files 1 MiB of zeros each: a small upload
// that expands to files MiB.
func bomb(t testing.TB, files int) []byte {
	t.Helper()
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	zeros := make([]byte, 1<<20)
	for i := 0; i < files; i++ {
		if err := tw.WriteHeader(&tar.Header{Name: "z/" + strconv.Itoa(i), Mode: 0o644, Size: int64(len(zeros)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return gz.Bytes()
}

// memWatch samples the process's memory each time 16 MiB more pass
// through it, and keeps the largest growth over the start.
type memWatch struct {
	w                 io.Writer
	n, next           int64
	baseSys, maxSys   uint64
	baseHeap, maxHeap uint64
}

func newMemWatch(w io.Writer) *memWatch {
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	return &memWatch{w: w, baseSys: ms.Sys, baseHeap: ms.HeapAlloc, maxSys: ms.Sys, maxHeap: ms.HeapAlloc}
}

func (m *memWatch) sample() {
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	m.maxSys = max(m.maxSys, ms.Sys)
	m.maxHeap = max(m.maxHeap, ms.HeapAlloc)
}

func (m *memWatch) Write(p []byte) (int, error) {
	n, err := m.w.Write(p)
	if m.n += int64(n); m.n >= m.next {
		m.next = m.n + 16<<20
		m.sample()
	}
	return n, err
}

func (m *memWatch) ReadAt(p []byte, off int64) (int, error) {
	return m.w.(io.ReaderAt).ReadAt(p, off)
}

// countReader counts what has been read of an input.
type countReader struct {
	r io.Reader
	n int
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestContextBombRefusedWhileStreaming: a half-megabyte gzip that expands
// to more than 512 MiB (the agents' limit, control.MaxBuildContextBytes)
// is refused before its end is read, written to a file as it streams, and
// the process's memory stays bounded meanwhile.
func TestContextBombRefusedWhileStreaming(t *testing.T) {
	const limit = 512 << 20
	gz := bomb(t, 520)
	if len(gz) > 1<<20 {
		t.Fatalf("the bomb is %d bytes compressed; want about 0.5 MB", len(gz))
	}
	t.Logf("bomb: %d bytes of gzip for 520 MiB of tar", len(gz))
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in := &countReader{r: bytes.NewReader(gz)}
	w := newMemWatch(f)
	_, err = runtime.ValidateBuildContextTo(in, w, limit, "")
	w.sample()
	if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "536870912-byte limit") {
		t.Fatalf("bomb: err = %v, want a refusal naming the limit", err)
	}
	if in.n >= len(gz) {
		t.Fatalf("the whole bomb (%d bytes) was read before the refusal", in.n)
	}
	if w.n > limit+1<<20 {
		t.Fatalf("%d bytes written before the refusal; want at most the limit", w.n)
	}
	growSys, growHeap := w.maxSys-w.baseSys, w.maxHeap-w.baseHeap
	t.Logf("refused after %d of %d compressed bytes, %d bytes written; memory growth: Sys %d KiB, HeapAlloc %d KiB",
		in.n, len(gz), w.n, growSys>>10, growHeap>>10)
	if growSys > 64<<20 || growHeap > 64<<20 {
		t.Fatalf("memory grew by Sys %d MiB / HeapAlloc %d MiB while streaming the bomb; want under 64 MiB", growSys>>20, growHeap>>20)
	}

	// A single entry declaring 512 MiB is refused at its header.
	var one bytes.Buffer
	tw := tar.NewWriter(&one)
	if err := tw.WriteHeader(&tar.Header{Name: "big", Mode: 0o644, Size: limit, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := runtime.ValidateBuildContextTo(bytes.NewReader(one.Bytes()), &runtime.MemOut{}, limit, ""); !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "do not fit") {
		t.Fatalf("declared 512 MiB entry: err = %v", err)
	}
}

// TestContextStoreQuota: the per-upload and per-node limits refuse with a
// message, and a refusal leaves no file behind.
func TestContextStoreQuota(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	small := tarEntries(t, file("Dockerfile", "FROM scratch\n"), file("a", strings.Repeat("x", 10<<10)))
	s := runtime.NewContextStore(dir, 16<<10, 24<<10)
	// Per upload: 20 KiB > 16 KiB.
	big := gzipped(t, tarEntries(t, file("b", strings.Repeat("y", 20<<10))))
	if _, err := s.Store(ctx, bytes.NewReader(big)); !errors.Is(err, runtime.ErrInvalid) || errors.Is(err, runtime.ErrContextQuota) {
		t.Fatalf("over the upload limit: err = %v", err)
	}
	info, err := s.Store(ctx, bytes.NewReader(small))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(s.Path(info.Digest)); err != nil || st.Size() != info.Size {
		t.Fatalf("stored: %v %v", st, err)
	}
	// Per node: 24 KiB in all, about 12 KiB used; 14 KiB more does not fit.
	more := tarEntries(t, file("c", strings.Repeat("z", 14<<10)))
	_, err = s.Store(ctx, bytes.NewReader(more))
	if !errors.Is(err, runtime.ErrContextQuota) || !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "this node") {
		t.Fatalf("over the node quota: err = %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("the store holds %d files after the refusals, want the one stored", len(ents))
	}
	// The checked copy for a build is the same tar, and leaves nothing.
	src, err := os.Open(s.Path(info.Digest))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	c, err := s.Checked(ctx, src, "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(c)
	c.Close()
	want, _ := os.ReadFile(s.Path(info.Digest))
	if !bytes.Equal(got, want) {
		t.Fatal("the checked copy differs from the stored context")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("the store holds %d files after a build copy, want 1", len(ents))
	}
}

// TestContextStoreOneAtATime: while one upload streams, another waits
// for its turn (and gives up with its context), then is served.
func TestContextStoreOneAtATime(t *testing.T) {
	s := runtime.NewContextStore(t.TempDir(), 1<<20, 8<<20)
	raw := tarEntries(t, file("Dockerfile", "FROM scratch\n"), file("a", strings.Repeat("x", 64<<10)))
	pr, pw := io.Pipe()
	first := make(chan error, 1)
	go func() {
		_, err := s.Store(context.Background(), pr)
		first <- err
	}()
	// A write returns once the first upload reads it: it holds the turn.
	if _, err := pw.Write(raw[:1024]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Store(ctx, bytes.NewReader(raw)); !errors.Is(err, context.Canceled) {
		t.Fatalf("second upload during the first: err = %v, want it to wait (context canceled)", err)
	}
	if _, err := pw.Write(raw[1024:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store(context.Background(), bytes.NewReader(raw)); err != nil {
		t.Fatalf("after the first: %v", err)
	}
}
