package imagepeer_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/imagepeer"
	"github.com/dropmesh/dropmesh/node/imagepeer/enginetest"
	"github.com/dropmesh/dropmesh/node/runtime"
)

// contextTar is a build context: a Dockerfile FROM scratch copying files,
// one layer per file, in order.
func contextTar(t *testing.T, files ...[]byte) io.Reader { return contextTarB(t, files...) }

func contextTarB(t testing.TB, files ...[]byte) io.Reader {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	df := "FROM scratch\n"
	add := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(1e9, 0), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	for i, f := range files {
		name := "f" + string(rune('a'+i))
		add(name, f)
		df += "COPY " + name + " /" + name + "\n"
	}
	add("Dockerfile", []byte(df))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func randomBytes(t *testing.T, n int) []byte { return randomBytesB(t, n) }

func randomBytesB(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func build(t *testing.T, rt *runtime.Runtime, tag string, files ...[]byte) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := rt.BuildImage(ctx, contextTar(t, files...), []string{tag}, "Dockerfile", nil, nil); err != nil {
		t.Fatalf("build %s: %v", tag, err)
	}
	id, _, _, err := rt.ImageLayers(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// peerServer serves a store of rt's images over TLS (as the agent API's
// internal routes do, without the auth chain that api tests cover), with
// an optional handler wrapped around it (a tampering proxy).
func peerServer(t testing.TB, rt *runtime.Runtime, allowed func(string) bool, wrap func(http.Handler) http.Handler) (*httptest.Server, *imagepeer.Server) {
	s := &imagepeer.Server{Store: imagepeer.NewStore(t.TempDir(), rt), Allowed: allowed}
	r := http.NewServeMux()
	r.HandleFunc("GET "+imagepeer.DescriptorPath, s.ServeDescriptor)
	r.HandleFunc("GET "+imagepeer.BlobPath, s.ServeBlob)
	var h http.Handler = r
	if wrap != nil {
		h = wrap(r)
	}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv, s
}

func fetcher(t *testing.T, rt *runtime.Runtime, srv *httptest.Server) *imagepeer.Fetcher {
	return &imagepeer.Fetcher{HTTP: srv.Client(), APIKey: "k", Engine: rt, Dir: t.TempDir()}
}

func all(string) bool { return true }

func benchPeer(b *testing.B, rt *runtime.Runtime) *httptest.Server {
	srv, _ := peerServer(b, rt, all, nil)
	return srv
}

// TestFetchBetweenEngines moves an image from one private engine to
// another: the same image id arrives, layers the target already holds are
// not sent again, and an image the state does not reference is not served.
func TestFetchBetweenEngines(t *testing.T) {
	var a, b *enginetest.Engine
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a = enginetest.Start(t) }()
	go func() { defer wg.Done(); b = enginetest.Start(t) }()
	wg.Wait()
	if a == nil || a.RT == nil || b == nil || b.RT == nil {
		t.FailNow()
	}
	base := randomBytes(t, 300<<10)
	id1 := build(t, a.RT, "app:one", base, randomBytes(t, 200<<10))
	id2 := build(t, a.RT, "app:two", base, randomBytes(t, 100<<10))
	srv, _ := peerServer(t, a.RT, func(ref string) bool { return ref != "app:secret" }, nil)
	build(t, a.RT, "app:secret", randomBytes(t, 10))
	f := fetcher(t, b.RT, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var lines []string
	res, err := f.Fetch(ctx, "app:one", id1, []string{"app:one"}, []imagepeer.Peer{{Name: "a", Addr: srv.URL}}, func(s string) { lines = append(lines, s) })
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if res.ID != id1 || res.Layers != 2 || res.Skipped != 0 {
		t.Fatalf("result %+v, want id %s, 2 layers, none skipped", res, id1)
	}
	got, tags, _, err := b.RT.ImageLayers(ctx, "app:one")
	if err != nil || got != id1 || len(tags) != 1 {
		t.Fatalf("engine b has app:one as %s %v (%v), want %s", got, tags, err, id1)
	}
	t.Logf("progress: %q", lines)

	// The second image shares the first layer: only the other one moves.
	res, err = f.Fetch(ctx, "app:two", "", []string{"app:two"}, []imagepeer.Peer{{Name: "a", Addr: srv.URL}}, nil)
	if err != nil {
		t.Fatalf("fetch two: %v", err)
	}
	if res.ID != id2 || res.Skipped != 1 || res.Bytes > 150<<10 {
		t.Fatalf("result %+v: want id %s, 1 layer skipped, about 100 KiB sent", res, id2)
	}

	// Asking for an id the peer does not hold under that name finds nobody.
	if _, err := f.Fetch(ctx, "app:two", id1, nil, []imagepeer.Peer{{Name: "a", Addr: srv.URL}}, nil); !errors.Is(err, imagepeer.ErrNotFound) {
		t.Fatalf("fetch of app:two as %s: %v, want ErrNotFound", id1, err)
	}
	// Not referenced by the state: not served.
	if _, err := f.Fetch(ctx, "app:secret", "", nil, []imagepeer.Peer{{Name: "a", Addr: srv.URL}}, nil); !errors.Is(err, imagepeer.ErrNotFound) {
		t.Fatalf("fetch of an unreferenced image: %v, want ErrNotFound", err)
	}
	if _, _, _, err := b.RT.ImageLayers(ctx, "app:secret"); err == nil {
		t.Fatal("app:secret reached engine b")
	}
	// A dead peer first, then one that holds it: the holder serves it.
	dead := httptest.NewTLSServer(http.NotFoundHandler())
	dead.Close()
	if _, err := f.Fetch(ctx, "app:one", id1, nil, []imagepeer.Peer{{Name: "dead", Addr: dead.URL}, {Name: "a", Addr: srv.URL}}, nil); err != nil {
		t.Fatalf("fetch with a dead peer first: %v", err)
	}
}

// TestCorruptedAndBrokenTransfers puts a tampering proxy in front of the
// peer: the first download of every layer has one byte flipped, the second
// breaks off halfway. The corrupted copy is refused by digest, the broken
// one resumed with a byte range, and the right image arrives.
func TestCorruptedAndBrokenTransfers(t *testing.T) {
	var a, b *enginetest.Engine
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a = enginetest.Start(t) }()
	go func() { defer wg.Done(); b = enginetest.Start(t) }()
	wg.Wait()
	if a == nil || a.RT == nil || b == nil || b.RT == nil {
		t.FailNow()
	}
	id := build(t, a.RT, "app:one", randomBytes(t, 256<<10), randomBytes(t, 128<<10))
	var mu sync.Mutex
	seen := map[string]int{}
	var flipped, cut, ranged atomic.Int32
	tamper := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.Contains(r.URL.Path, "/blobs/") {
				next.ServeHTTP(w, r)
				return
			}
			digest, _ := url.PathUnescape(r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
			if digest == id { // the config: left alone
				next.ServeHTTP(w, r)
				return
			}
			if r.Header.Get("Range") != "" {
				ranged.Add(1)
			}
			mu.Lock()
			seen[digest]++
			n := seen[digest]
			mu.Unlock()
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			switch n {
			case 1: // one byte flipped in the middle
				body = bytes.Clone(body)
				body[len(body)/2] ^= 0x40
				flipped.Add(1)
				w.WriteHeader(rec.Code)
				_, _ = w.Write(body)
			case 2: // half of it, then the connection drops
				cut.Add(1)
				w.WriteHeader(rec.Code)
				_, _ = w.Write(body[:len(body)/2])
				if fl, ok := w.(http.Flusher); ok {
					fl.Flush()
				}
				panic(http.ErrAbortHandler)
			default:
				w.WriteHeader(rec.Code)
				_, _ = w.Write(body)
			}
		})
	}
	srv, _ := peerServer(t, a.RT, all, tamper)
	f := fetcher(t, b.RT, srv)
	var lines []string
	var lmu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := f.Fetch(ctx, "app:one", id, []string{"app:one"}, []imagepeer.Peer{{Name: "a", Addr: srv.URL}}, func(s string) {
		lmu.Lock()
		lines = append(lines, s)
		lmu.Unlock()
	})
	if err != nil {
		t.Fatalf("fetch: %v (progress %q)", err, lines)
	}
	if res.ID != id {
		t.Fatalf("got %s, want %s", res.ID, id)
	}
	if got, _, _, err := b.RT.ImageLayers(ctx, "app:one"); err != nil || got != id {
		t.Fatalf("engine b: %s (%v), want %s", got, err, id)
	}
	if flipped.Load() != 2 || cut.Load() != 2 || ranged.Load() < 2 {
		t.Fatalf("flipped %d, cut %d, ranged %d: want 2 corrupted, 2 broken and resumed", flipped.Load(), cut.Load(), ranged.Load())
	}
	joined := strings.Join(lines, "\n")
	if !strings.Contains(joined, "refused (digest mismatch)") || !strings.Contains(joined, "resuming") {
		t.Fatalf("progress does not show the refusal and the resume:\n%s", joined)
	}
}
