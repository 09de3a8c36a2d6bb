package imagepeer

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/runtime"
)

// Peer is an agent that may hold an image: its name (for logs and
// progress) and its API address ("host:port" or a base URL). Likely marks
// a peer the state says holds it: those are asked first, the others only
// when none of them has it.
type Peer struct {
	Name, Addr string
	Likely     bool
}

// Fetcher gets images from peers into its own engine. Its HTTP client
// must be the agents' mutual-TLS client (node certificate); APIKey is the
// cluster API key the internal routes also require.
type Fetcher struct {
	HTTP   *http.Client
	APIKey string
	Engine Engine
	// Dir keeps partial and verified layers until they are loaded.
	Dir    string
	Logger *slog.Logger
	// Parallel is how many layers download at once, from different peers
	// when several hold the image (default 3). More helps only when the
	// peers, not this node's link, are the bottleneck.
	Parallel int
	// Attempts bounds the tries per layer, across peers (default 4): a
	// refused (corrupted) or broken download is tried again, resumed with a
	// byte range when the bytes so far may be good.
	Attempts int
}

// Result says what a fetch did.
type Result struct {
	// ID is the image id now in the engine.
	ID string
	// Layers is the image's layer count; Skipped were already here.
	Layers, Skipped int
	// Bytes were downloaded (including retries).
	Bytes int64
	// From are the peers that held the image.
	From []string
}

func (f *Fetcher) logger() *slog.Logger {
	if f.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Logger
}

// Fetch gets image ref from the first peers that hold it and loads it into
// the engine, tagged with tags (familiar references; may be empty).
// progress gets one line per step and per layer, one call at a time. want,
// when not empty, is the image id the caller expects (a committed digest):
// a peer holding another image under ref is ignored. Everything is checked
// against the image id before it is loaded. It returns an error wrapping
// ErrNotFound when no peer holds the image.
func (f *Fetcher) Fetch(ctx context.Context, ref, want string, tags []string, peers []Peer, progress func(string)) (Result, error) {
	progress = serialised(progress)
	if want != "" {
		if err := ValidDigest(want); err != nil {
			return Result{}, err
		}
	}
	d, holders := f.findHolders(ctx, ref, want, peers)
	if len(holders) == 0 {
		return Result{}, fmt.Errorf("image %s: %w on any of %d peers", ref, ErrNotFound, len(peers))
	}
	res := Result{ID: d.ID}
	for _, h := range holders {
		res.From = append(res.From, h.Name)
	}
	cfg, err := f.fetchConfig(ctx, d.ID, holders)
	if err != nil {
		return res, err
	}
	var ic imageConfig
	if err := json.Unmarshal(cfg, &ic); err != nil {
		return res, fmt.Errorf("image %s config: %w", d.ID, err)
	}
	diffs := ic.RootFS.DiffIDs // the config is verified; the descriptor only gives sizes
	for _, l := range diffs {
		if err := ValidDigest(l); err != nil {
			return res, fmt.Errorf("image %s config: %w", d.ID, err)
		}
	}
	res.Layers = len(diffs)
	missing, err := missingLayers(ctx, f.Engine, diffs)
	if err != nil {
		return res, err
	}
	res.Skipped = len(diffs) - len(missing)
	progress(fmt.Sprintf("image %s (%s): %d layers, %d here already, fetching %d from %s", ref, short(d.ID), len(diffs), res.Skipped, len(missing), strings.Join(res.From, ", ")))
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		return res, fmt.Errorf("image %s: %w", ref, err)
	}
	size := func(i int) int64 {
		if len(d.Sizes) == len(diffs) && d.DiffIDs[i] == diffs[i] {
			return d.Sizes[i]
		}
		return -1
	}
	n, err := f.fetchLayers(ctx, diffs, missing, size, holders, progress)
	res.Bytes = n
	defer func() {
		for _, i := range missing {
			os.Remove(f.layerPath(diffs[i]))
		}
	}()
	if err != nil {
		return res, fmt.Errorf("image %s: %w", ref, err)
	}
	if err := loadImage(ctx, f.Engine, d.ID, cfg, diffs, missing, f.layerPath, tags); err != nil {
		return res, fmt.Errorf("image %s: %w", ref, err)
	}
	if id, _, _, err := f.Engine.ImageLayers(ctx, d.ID); err != nil || id != d.ID {
		return res, fmt.Errorf("image %s: loaded, but the engine does not show %s (%v)", ref, d.ID, err)
	}
	progress(fmt.Sprintf("image %s (%s) loaded", ref, short(d.ID)))
	return res, nil
}

// findHolders asks the likely peers at once which image they hold under
// ref, then, when none has it, the others.
func (f *Fetcher) findHolders(ctx context.Context, ref, want string, peers []Peer) (Descriptor, []Peer) {
	var likely, rest []Peer
	for _, p := range peers {
		if p.Likely {
			likely = append(likely, p)
		} else {
			rest = append(rest, p)
		}
	}
	if d, holders := f.askPeers(ctx, ref, want, likely); len(holders) > 0 {
		return d, holders
	}
	return f.askPeers(ctx, ref, want, rest)
}

// askPeers asks peers at once which image each holds under ref; the
// holders of the wanted image (else of the first answer, in peer order)
// are returned in peer order.
func (f *Fetcher) askPeers(ctx context.Context, ref, want string, peers []Peer) (Descriptor, []Peer) {
	ds := make([]*Descriptor, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := f.descriptor(ctx, p, ref)
			if err != nil {
				f.logger().Debug("peer has no image", "peer", p.Name, "image", ref, "err", err)
				return
			}
			ds[i] = &d
		}()
	}
	wg.Wait()
	var chosen Descriptor
	var holders []Peer
	for i, d := range ds {
		if d == nil || (want != "" && d.ID != want) {
			continue
		}
		if chosen.ID == "" {
			chosen = *d
		}
		if d.ID == chosen.ID {
			holders = append(holders, peers[i])
		}
	}
	return chosen, holders
}

func (f *Fetcher) descriptor(ctx context.Context, p Peer, ref string) (Descriptor, error) {
	var d Descriptor
	resp, err := f.get(ctx, p, DescriptorPath+"?ref="+url.QueryEscape(ref), 0)
	if err != nil {
		return d, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&d); err != nil {
		return d, fmt.Errorf("peer %s descriptor of %s: %w", p.Name, ref, err)
	}
	if err := ValidDigest(d.ID); err != nil {
		return d, fmt.Errorf("peer %s descriptor of %s: %w", p.Name, ref, err)
	}
	return d, nil
}

// fetchConfig gets the config blob and checks it hashes to the image id.
func (f *Fetcher) fetchConfig(ctx context.Context, id string, holders []Peer) ([]byte, error) {
	var lastErr error
	for _, p := range holders {
		resp, err := f.get(ctx, p, blobPrefix+id, 0)
		if err != nil {
			lastErr = err
			continue
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		resp.Body.Close()
		if err == nil && digestOf(b) != id {
			err = fmt.Errorf("config of %s from %s: %w", id, p.Name, ErrDigest)
		}
		if err != nil {
			lastErr = err
			continue
		}
		return b, nil
	}
	return nil, fmt.Errorf("image %s config: %w", id, lastErr)
}

func (f *Fetcher) layerPath(diff string) string {
	return filepath.Join(f.Dir, strings.TrimPrefix(diff, "sha256:"))
}

// fetchLayers downloads the missing layers, Parallel at a time, layer i
// starting at holder i so that several holders share the work.
func (f *Fetcher) fetchLayers(ctx context.Context, diffs []string, missing []int, size func(int) int64, holders []Peer, progress func(string)) (int64, error) {
	par := f.Parallel
	if par <= 0 {
		par = 3
	}
	attempts := f.Attempts
	if attempts <= 0 {
		attempts = 4
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		total    int64
		firstErr error
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, par)
	for k, i := range missing {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			n, err := f.fetchLayer(ctx, diffs[i], size(i), holders, k, attempts, progress)
			mu.Lock()
			defer mu.Unlock()
			total += n
			if err != nil && firstErr == nil {
				firstErr = err
				cancel()
			}
		}()
	}
	wg.Wait()
	return total, firstErr
}

// fetchLayer gets one layer into layerPath, checked against its diff id.
func (f *Fetcher) fetchLayer(ctx context.Context, diff string, size int64, holders []Peer, start, attempts int, progress func(string)) (int64, error) {
	part := f.layerPath(diff) + ".part"
	defer os.Remove(part)
	var total int64
	var lastErr error
	for a := range attempts {
		if ctx.Err() != nil {
			return total, ctx.Err()
		}
		p := holders[(start+a)%len(holders)]
		n, err := f.download(ctx, p, diff, part)
		total += n
		if err == nil {
			var got string
			if got, _, err = hashFile(part); err == nil && got != diff {
				err = fmt.Errorf("layer %s from %s hashes to %s: %w", short(diff), p.Name, short(got), ErrDigest)
			}
		}
		if err == nil {
			if err := os.Rename(part, f.layerPath(diff)); err != nil {
				return total, fmt.Errorf("layer %s: %w", diff, err)
			}
			progress(fmt.Sprintf("layer %s %s from %s", short(diff), humanBytes(size), p.Name))
			return total, nil
		}
		lastErr = err
		if errors.Is(err, ErrDigest) {
			os.Remove(part) // bad bytes somewhere: start over
			progress(fmt.Sprintf("layer %s from %s refused (digest mismatch), fetching again", short(diff), p.Name))
		} else {
			progress(fmt.Sprintf("layer %s from %s broke off (%v), resuming", short(diff), p.Name, err))
		}
		f.logger().Warn("layer download failed", "layer", diff, "peer", p.Name, "attempt", a+1, "err", err)
	}
	return total, fmt.Errorf("layer %s: %d attempts: %w", diff, attempts, lastErr)
}

// download appends the rest of a blob to part (a byte range from its
// current size) and returns the bytes received.
func (f *Fetcher) download(ctx context.Context, p Peer, digest, part string) (int64, error) {
	file, err := os.OpenFile(part, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	defer file.Close()
	have, err := file.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	resp, err := f.get(ctx, p, blobPrefix+digest, have)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusRequestedRangeNotSatisfiable:
		return 0, nil // nothing more to send: the hash decides
	case http.StatusOK:
		if have > 0 { // the peer sent it all again
			if err := file.Truncate(0); err != nil {
				return 0, err
			}
			if _, err := file.Seek(0, io.SeekStart); err != nil {
				return 0, err
			}
		}
	}
	n, err := io.Copy(file, resp.Body)
	if err != nil {
		return n, fmt.Errorf("layer %s from %s: %w", short(digest), p.Name, err)
	}
	return n, nil
}

// get calls a peer's internal route; from > 0 asks for the bytes from
// there on. Answers other than 200 and 206 (and 416 for a range) are errors
// with the peer's message.
func (f *Fetcher) get(ctx context.Context, p Peer, pathQuery string, from int64) (*http.Response, error) {
	base := p.Addr
	if !strings.Contains(base, "://") {
		base = "https://" + base
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+pathQuery, nil)
	if err != nil {
		return nil, fmt.Errorf("peer %s: %w", p.Name, err)
	}
	req.Header.Set("Authorization", "Bearer "+f.APIKey)
	if from > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(from, 10)+"-")
	}
	resp, err := f.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("peer %s: %w", p.Name, err)
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusPartialContent:
		return resp, nil
	case http.StatusRequestedRangeNotSatisfiable:
		if from > 0 {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	var eb control.ErrorBody
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&eb)
	err = fmt.Errorf("peer %s %s: %s: %s", p.Name, strings.SplitN(pathQuery, "?", 2)[0], resp.Status, eb.Message)
	if resp.StatusCode == http.StatusNotFound {
		err = fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return nil, err
}

// loadImage streams a docker-save tar of the config and the layers at
// missing (read from pathOf) into engine; layers it already holds are named
// in the manifest but not sent (docker load registers only missing chains).
func loadImage(ctx context.Context, engine Engine, id string, cfg []byte, diffs []string, missing []int, pathOf func(diff string) string, tags []string) error {
	hexID := strings.TrimPrefix(id, "sha256:")
	m := saveManifest{Config: hexID + ".json", RepoTags: tags}
	for _, d := range diffs {
		m.Layers = append(m.Layers, strings.TrimPrefix(d, "sha256:")+"/layer.tar")
	}
	mb, err := json.Marshal([]saveManifest{m})
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeSaveTar(pw, m, mb, cfg, diffs, missing, pathOf))
	}()
	err = engine.LoadImage(ctx, pr)
	pr.CloseWithError(errors.New("load ended"))
	return err
}

func writeSaveTar(w io.Writer, m saveManifest, mb, cfg []byte, diffs []string, missing []int, pathOf func(string) string) error {
	tw := tar.NewWriter(w)
	add := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	if err := add(m.Config, cfg); err != nil {
		return err
	}
	for _, i := range missing {
		if err := addFile(tw, m.Layers[i], pathOf(diffs[i])); err != nil {
			return err
		}
	}
	if err := add("manifest.json", mb); err != nil {
		return err
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, name, p string) error {
	file, err := os.Open(p)
	if err != nil {
		return err
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: st.Size(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, file)
	return err
}

// missingLayers are the indexes of the layers (diff ids, bottom first)
// whose chain the engine does not hold.
func missingLayers(ctx context.Context, engine Engine, diffs []string) ([]int, error) {
	have, err := engine.LayerChains(ctx)
	if err != nil {
		return nil, err
	}
	chains := runtime.ChainIDs(diffs)
	var missing []int
	for i := range diffs {
		if !have[chains[i]] {
			missing = append(missing, i)
		}
	}
	return missing, nil
}

// serialised makes progress safe to call from the layer downloads at once.
func serialised(progress func(string)) func(string) {
	if progress == nil {
		return func(string) {}
	}
	var mu sync.Mutex
	return func(s string) {
		mu.Lock()
		defer mu.Unlock()
		progress(s)
	}
}

// short is a digest's first 12 hex digits.
func short(d string) string {
	h := strings.TrimPrefix(d, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

func humanBytes(n int64) string {
	switch {
	case n < 0:
		return "?"
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}
