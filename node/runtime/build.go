package runtime

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/jsonmessage"
)

// BuildError is a failed build, carrying Docker's own message (the last
// error of the build stream, e.g. "COPY failed: ...").
type BuildError struct {
	Tags    []string
	Message string
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("build %s: %s", strings.Join(e.Tags, ","), e.Message)
}

// BuildImage builds an image from a tar build context (validated by the
// caller, see ValidateBuildContext) and tags it with every tag. dockerfile
// is the Dockerfile's path inside the context ("" = "Dockerfile"); labels
// are set on the image. It returns the image id. A failed build returns a
// *BuildError with Docker's message; progress, if not nil, gets the build's
// step lines at most every Config.ProgressInterval. A context without the
// Dockerfile, or whose Dockerfile ADDs a URL (CheckDockerfile), is refused
// with ErrInvalid before Docker is asked.
func (r *Runtime) BuildImage(ctx context.Context, contextTar io.Reader, tags []string, dockerfile string, labels map[string]string, progress func(string)) (string, error) {
	if len(tags) == 0 {
		return "", fmt.Errorf("build: %w: no tag", ErrInvalid)
	}
	for _, t := range tags {
		if _, err := ParseImageRef(t); err != nil {
			return "", fmt.Errorf("build: tag: %w", err)
		}
	}
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	if err := checkContextPath(dockerfile); err != nil {
		return "", fmt.Errorf("build %s: %w: dockerfile %v", tags[0], ErrInvalid, err)
	}
	if err := checkLabels(labels); err != nil {
		return "", fmt.Errorf("build %s: %w", tags[0], err)
	}
	// The Dockerfile is checked before the daemon sees the context: every
	// build passes here, also one from a context stored earlier. A context
	// that can seek (a file) is read twice as a stream; another is read
	// whole (callers bound it).
	rs, ok := contextTar.(io.ReadSeeker)
	if !ok {
		data, err := io.ReadAll(contextTar)
		if err != nil {
			return "", fmt.Errorf("build %s: read context: %w", tags[0], err)
		}
		rs = bytes.NewReader(data)
	}
	df, err := checkContextDockerfile(rs, dockerfile, true)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", tags[0], err)
	}
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("build %s: rewind context: %w", tags[0], err)
	}
	if err := r.checkBaseImages(ctx, dockerfile, df); err != nil {
		return "", fmt.Errorf("build %s: %w", tags[0], err)
	}
	start := time.Now()
	resp, err := r.cli.ImageBuild(ctx, rs, build.ImageBuildOptions{
		Tags:        tags,
		Dockerfile:  dockerfile,
		Labels:      labels,
		Remove:      true,
		ForceRemove: true, // no intermediate containers left behind by a failed step
		Version:     build.BuilderV1,
		// RUN steps run in containers on Docker's default bridge (docker0),
		// which the host rules (scripts/metadata-guard.sh) cut off from the
		// control ports and the metadata service; never the host network.
		NetworkMode: "bridge",
	})
	if err != nil {
		return "", &BuildError{Tags: tags, Message: strings.TrimPrefix(err.Error(), "Error response from daemon: ")}
	}
	defer resp.Body.Close()
	id, err := drainBuild(resp.Body, newThrottle(r.cfg.ProgressInterval, progress))
	var berr *BuildError
	if errors.As(err, &berr) {
		berr.Tags = tags
		r.logger.Warn("image build failed", "tags", tags, "err", berr.Message)
		return "", berr
	}
	if err != nil {
		return "", fmt.Errorf("build %s: %w", tags[0], err)
	}
	if id == "" { // older daemons do not send the id: ask for it
		info, err := r.InspectImage(ctx, tags[0])
		if err != nil {
			return "", fmt.Errorf("build %s: built but cannot inspect: %w", tags[0], err)
		}
		id = info.ID
	}
	r.logger.Info("image built", "tags", tags, "id", id, "took", time.Since(start).Round(time.Millisecond))
	return id, nil
}

// checkBaseImages checks the ONBUILD triggers of the images a Dockerfile
// builds FROM: the classic builder runs them as lines of the Dockerfile,
// so one that ADDs a URL is refused the same way. Each base image is made
// present first (pulled anonymously when missing, as the builder would).
func (r *Runtime) checkBaseImages(ctx context.Context, dockerfile string, content []byte) error {
	refs, err := baseImages(dockerfile, content)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		if _, err := r.EnsureImage(ctx, ref, nil, false, nil); err != nil {
			return fmt.Errorf("base image %s: %w", ref, err)
		}
		ii, err := r.cli.ImageInspect(ctx, ref)
		if err != nil {
			return fmt.Errorf("base image %s: %w", ref, err)
		}
		if ii.Config == nil {
			continue
		}
		for _, trigger := range ii.Config.OnBuild {
			if err := CheckDockerfile("base image "+ref+" ONBUILD trigger, Dockerfile", []byte(trigger)); err != nil {
				return err
			}
		}
	}
	return nil
}

// drainBuild reads a build's JSON stream to the end: it returns the image id
// (from the aux message), or a *BuildError with the last error message.
func drainBuild(rd io.Reader, p *throttle) (string, error) {
	dec := json.NewDecoder(rd)
	var id, lastErr string
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return "", fmt.Errorf("build: read progress: %w", err)
		}
		switch {
		case m.Error != nil:
			lastErr = m.Error.Message
		case m.ErrorMessage != "":
			lastErr = m.ErrorMessage
		case m.Aux != nil:
			var aux struct{ ID string }
			if json.Unmarshal(*m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		case strings.HasPrefix(m.Stream, "Step "):
			p.line(strings.TrimSpace(m.Stream))
		}
	}
	p.flush()
	if lastErr != "" {
		return "", &BuildError{Message: strings.TrimSpace(lastErr)}
	}
	return id, nil
}

// BuildFromBinary builds tag as an image FROM scratch holding one static
// binary (no libc in the image: build it with CGO_ENABLED=0). The binary is
// placed at entrypoint[0] ("/" + its file name when entrypoint is empty),
// and exposePort (0 = none) is declared with EXPOSE. Local mode builds
// local/sample:latest from the dropmesh binary itself this way.
func (r *Runtime) BuildFromBinary(ctx context.Context, binPath, tag string, entrypoint []string, exposePort int) (string, error) {
	return r.buildFromBinary(ctx, binPath, tag, entrypoint, exposePort, nil)
}

// BuildFromBinaryWithEnv is BuildFromBinary with env baked into the image
// (ENV lines; keys must be shell-style names): the test kit builds its
// variants of the test app this way.
func (r *Runtime) BuildFromBinaryWithEnv(ctx context.Context, binPath, tag string, entrypoint []string, exposePort int, env map[string]string) (string, error) {
	return r.buildFromBinary(ctx, binPath, tag, entrypoint, exposePort, env)
}

var envKeyPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (r *Runtime) buildFromBinary(ctx context.Context, binPath, tag string, entrypoint []string, exposePort int, env map[string]string) (string, error) {
	if len(entrypoint) == 0 {
		entrypoint = []string{"/" + path.Base(binPath)}
	}
	target := entrypoint[0]
	if !path.IsAbs(target) || path.Clean(target) != target || target == "/" {
		return "", fmt.Errorf("build %s: %w: entrypoint %q must start with an absolute, clean path", tag, ErrInvalid, target)
	}
	if exposePort < 0 || exposePort > 65535 {
		return "", fmt.Errorf("build %s: %w: port %d", tag, ErrInvalid, exposePort)
	}
	bin, err := os.ReadFile(binPath)
	if err != nil {
		return "", fmt.Errorf("build %s: read binary: %w", tag, err)
	}
	if err := checkStaticBinary(bin); err != nil {
		return "", fmt.Errorf("build %s: %s: %w", tag, binPath, err)
	}
	ep, err := json.Marshal(entrypoint)
	if err != nil {
		return "", fmt.Errorf("build %s: entrypoint: %w", tag, err)
	}
	var df strings.Builder
	df.WriteString("FROM scratch\nCOPY binary " + target + "\n")
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := env[k]
		if !envKeyPattern.MatchString(k) || strings.ContainsAny(v, "\r\n\x00") {
			return "", fmt.Errorf("build %s: %w: env %q must be a name with a one-line value", tag, ErrInvalid, k)
		}
		// Dockerfile ENV "..." unescapes \\ \" and would expand $.
		v = strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`).Replace(v)
		fmt.Fprintf(&df, "ENV %s=\"%s\"\n", k, v)
	}
	if exposePort > 0 {
		fmt.Fprintf(&df, "EXPOSE %d\n", exposePort)
	}
	fmt.Fprintf(&df, "ENTRYPOINT %s\n", ep)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now().Truncate(time.Second)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(df.String())}, {"binary", 0o755, bin}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return "", fmt.Errorf("build %s: context: %w", tag, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return "", fmt.Errorf("build %s: context: %w", tag, err)
		}
	}
	if err := tw.Close(); err != nil {
		return "", fmt.Errorf("build %s: context: %w", tag, err)
	}
	return r.BuildImage(ctx, &buf, []string{tag}, "Dockerfile", map[string]string{LabelManaged: "true"}, nil)
}

// RemoveImage untags (and, when it was the last tag, deletes) a local image.
// An image that is already gone is not an error; one still used by a
// container is, with Docker's message.
func (r *Runtime) RemoveImage(ctx context.Context, ref string) error {
	if ref == "" {
		return fmt.Errorf("remove image: %w: empty reference", ErrInvalid)
	}
	_, err := r.cli.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	return nil
}

// checkStaticBinary refuses what cannot run FROM scratch: anything but a
// Linux ELF executable without a dynamic loader.
func checkStaticBinary(bin []byte) error {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return invalidf("not an ELF executable: %v", err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return invalidf("not an executable (ELF type %v)", f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return invalidf("dynamically linked: an image FROM scratch has no libc; build it with CGO_ENABLED=0")
		}
	}
	return nil
}
