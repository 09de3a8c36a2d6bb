package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/pkg/jsonmessage"
)

// RegistryAuth are the credentials for one registry.
type RegistryAuth struct {
	Username, Password string
	// ServerAddress is the registry host ("ghcr.io", "127.0.0.1:5000").
	ServerAddress string
}

// ImageInfo is what the reconciler needs to know about a local image.
type ImageInfo struct {
	// ID is the local image id ("sha256:...").
	ID string
	// Digest is the registry's manifest digest ("sha256:...") of the
	// reference that was asked for, "" for images that were never pulled
	// or pushed (built locally).
	Digest string
	// ExposedPorts are the image's exposed TCP ports, ascending.
	ExposedPorts []int
	// Cmd and Entrypoint are the image's defaults.
	Cmd, Entrypoint []string
}

// ParseImageRef parses an image reference the way Docker does ("nginx" is
// docker.io/library/nginx:latest) and returns its canonical string with a
// tag (":latest" when it has neither tag nor digest). A bad reference gets
// an error wrapping ErrInvalid.
func ParseImageRef(ref string) (string, error) {
	if ref == "" || len(ref) > 1024 || strings.TrimSpace(ref) != ref {
		return "", fmt.Errorf("image reference %q: %w: empty, too long or padded with spaces", ref, ErrInvalid)
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w: %v", ref, ErrInvalid, err)
	}
	return reference.TagNameOnly(named).String(), nil
}

// InspectImage describes a local image by reference or id. It returns an
// error wrapping ErrImageNotFound when the image is not present.
func (r *Runtime) InspectImage(ctx context.Context, ref string) (ImageInfo, error) {
	if ref == "" {
		return ImageInfo{}, fmt.Errorf("inspect image: %w: empty reference", ErrInvalid)
	}
	ii, err := r.cli.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return ImageInfo{}, fmt.Errorf("image %s: %w", ref, ErrImageNotFound)
	}
	if err != nil {
		return ImageInfo{}, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return imageInfo(ii, ref), nil
}

// imageInfo converts Docker's answer; the digest is the one recorded for
// ref's repository, if any.
func imageInfo(ii image.InspectResponse, ref string) ImageInfo {
	info := ImageInfo{ID: ii.ID}
	if ii.Config != nil {
		info.Cmd, info.Entrypoint = ii.Config.Cmd, ii.Config.Entrypoint
		for p := range ii.Config.ExposedPorts {
			num, proto, _ := strings.Cut(p, "/")
			if n, err := strconv.Atoi(num); err == nil && (proto == "" || proto == "tcp") {
				info.ExposedPorts = append(info.ExposedPorts, n)
			}
		}
		sort.Ints(info.ExposedPorts)
	}
	info.Digest = repoDigest(ii.RepoDigests, ref)
	return info
}

// repoDigest picks the digest recorded for ref's repository, or the only
// one there is.
func repoDigest(repoDigests []string, ref string) string {
	want := ""
	if named, err := reference.ParseNormalizedNamed(ref); err == nil {
		if d, ok := named.(reference.Digested); ok {
			return d.Digest().String()
		}
		want = named.Name()
	}
	for _, rd := range repoDigests {
		named, err := reference.ParseNormalizedNamed(rd)
		if err != nil {
			continue
		}
		d, ok := named.(reference.Digested)
		if ok && (named.Name() == want || len(repoDigests) == 1) {
			return d.Digest().String()
		}
	}
	return ""
}

// EnsureImage makes ref available locally: it pulls it (with auth when
// given) unless it is already present and pull is false. A reference that
// does not parse is refused before any call to Docker. progress, if not
// nil, gets short human lines ("pulling 3/5 layers") at most every
// Config.ProgressInterval. Pull failures carry Docker's own message; a tag
// or repository the registry does not have also wraps ErrImageNotFound.
func (r *Runtime) EnsureImage(ctx context.Context, ref string, auth *RegistryAuth, pull bool, progress func(string)) (ImageInfo, error) {
	canonical, err := ParseImageRef(ref)
	if err != nil {
		return ImageInfo{}, err
	}
	if !pull {
		info, err := r.InspectImage(ctx, canonical)
		if err == nil {
			return info, nil
		}
		if !errors.Is(err, ErrImageNotFound) {
			return ImageInfo{}, err
		}
	}
	opts := image.PullOptions{RegistryAuth: "e30="} // "{}": anonymous
	if auth != nil {
		enc, err := registry.EncodeAuthConfig(registry.AuthConfig{Username: auth.Username, Password: auth.Password, ServerAddress: auth.ServerAddress})
		if err != nil {
			return ImageInfo{}, fmt.Errorf("pull %s: encode credentials: %w", ref, err)
		}
		opts.RegistryAuth = enc
	}
	start := time.Now()
	rc, err := r.cli.ImagePull(ctx, canonical, opts)
	if err != nil {
		return ImageInfo{}, pullErr(ref, err.Error(), err)
	}
	defer rc.Close()
	if err := drainPull(rc, newThrottle(r.cfg.ProgressInterval, progress)); err != nil {
		return ImageInfo{}, pullErr(ref, err.Error(), err)
	}
	info, err := r.InspectImage(ctx, canonical)
	if err != nil {
		return ImageInfo{}, fmt.Errorf("pull %s: pulled but cannot inspect: %w", ref, err)
	}
	r.logger.Info("image pulled", "image", ref, "id", info.ID, "digest", info.Digest, "took", time.Since(start).Round(time.Millisecond))
	if progress != nil {
		progress(fmt.Sprintf("pulled %s (%s)", ref, shortDigest(info.Digest, info.ID)))
	}
	return info, nil
}

// pullErr keeps Docker's text and marks the "registry has no such image" family.
func pullErr(ref, msg string, err error) error {
	low := strings.ToLower(msg)
	if cerrdefs.IsNotFound(err) || strings.Contains(low, "manifest unknown") || strings.Contains(low, "not found") ||
		strings.Contains(low, "name unknown") {
		return fmt.Errorf("pull %s: %w: %s", ref, ErrImageNotFound, msg)
	}
	var jm *jsonmessage.JSONError
	if errors.As(err, &jm) {
		return fmt.Errorf("pull %s: %s", ref, jm.Message)
	}
	return fmt.Errorf("pull %s: %w", ref, err)
}

func shortDigest(digest, id string) string {
	if digest == "" {
		digest = id
	}
	if len(digest) > 19 {
		return digest[:19]
	}
	return digest
}

// drainPull reads a pull's JSON stream to the end, turns layer states into
// "pulling n/m layers" lines and returns the stream's error, if any.
func drainPull(rd io.Reader, p *throttle) error {
	dec := json.NewDecoder(rd)
	layers := map[string]bool{} // layer id -> done
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("read pull progress: %w", err)
		}
		if m.Error != nil {
			return m.Error
		}
		if m.ID == "" {
			continue
		}
		switch {
		case m.Status == "Pull complete" || m.Status == "Already exists":
			layers[m.ID] = true
		case m.Status == "Pulling fs layer" || m.Status == "Waiting" || strings.HasPrefix(m.Status, "Downloading") ||
			m.Status == "Verifying Checksum" || m.Status == "Download complete" || strings.HasPrefix(m.Status, "Extracting"):
			if _, ok := layers[m.ID]; !ok {
				layers[m.ID] = false
			}
		default:
			continue
		}
		done := 0
		for _, d := range layers {
			if d {
				done++
			}
		}
		p.line(fmt.Sprintf("pulling %d/%d layers", done, len(layers)))
	}
	p.flush()
	return nil
}

// throttle passes progress lines on at most once per interval; the last
// line held back is delivered by flush.
type throttle struct {
	every   time.Duration
	fn      func(string)
	last    time.Time
	pending string
}

func newThrottle(every time.Duration, fn func(string)) *throttle {
	return &throttle{every: every, fn: fn}
}

func (t *throttle) line(s string) {
	if t.fn == nil || s == "" {
		return
	}
	if now := time.Now(); now.Sub(t.last) >= t.every {
		t.last, t.pending = now, ""
		t.fn(s)
		return
	}
	t.pending = s
}

func (t *throttle) flush() {
	if t.fn != nil && t.pending != "" {
		t.fn(t.pending)
		t.pending = ""
	}
}
