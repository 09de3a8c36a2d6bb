package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/node/runtime"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// LocalImagePrefix marks images that only exist on the nodes (built there,
// such as local/base:latest and local/sample:latest): they are never pulled.
const LocalImagePrefix = "local/"

// dataPath is a path inside the agent's data dir.
func (a *Agent) dataPath(parts ...string) string {
	return filepath.Join(append([]string{a.cfg.DataDir}, parts...)...)
}

// registryAuth finds the credentials for an image's registry, if stored.
func (a *Agent) registryAuth(s *raftfsm.State, image string) (*runtime.RegistryAuth, error) {
	if image == "" {
		return nil, nil
	}
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return nil, nil // validated at deploy; nothing to look up
	}
	domain := reference.Domain(named)
	cred, ok := s.Registries[domain]
	if !ok {
		return nil, nil
	}
	pw, err := raftfsm.Open(a.keys.Sealer, raftfsm.RegistryLabel(domain), cred.Password)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", domain, err)
	}
	return &runtime.RegistryAuth{Username: cred.Username, Password: string(pw), ServerAddress: domain}, nil
}

// ensureImage makes the instance's image present: built from its uploaded
// context, or pulled (always for :latest, else only when missing; never for
// local/ images). Docker's own message is returned on failure.
func (a *Agent) ensureImage(ctx context.Context, d desiredInstance, progress func(string)) (runtime.ImageInfo, error) {
	if d.spec.Build != "" {
		return a.buildOnce(ctx, d, progress)
	}
	ref := d.spec.Image
	if strings.HasPrefix(ref, LocalImagePrefix) {
		info, err := a.rt.InspectImage(ctx, ref)
		if err != nil {
			return info, fmt.Errorf("%s is a node-local image and is not on %s: %w", ref, a.cfg.NodeID, err)
		}
		return info, nil
	}
	pull := true
	if named, err := reference.ParseNormalizedNamed(ref); err == nil {
		if tagged, ok := named.(reference.Tagged); ok && tagged.Tag() != "latest" {
			pull = false
		}
		if _, ok := named.(reference.Digested); ok {
			pull = false
		}
	}
	return a.pullOrPeers(ctx, d, ref, pull, progress)
}

// reportedDigest is the image an instance reports (raftfsm.Instance.ImageDigest):
// the registry's manifest digest when the image came from a registry, else
// the local image id (images built on the node, node-local images).
func reportedDigest(info runtime.ImageInfo) string {
	if info.Digest != "" {
		return info.Digest
	}
	return info.ID
}

// runningDigest is reportedDigest for a container that already runs image
// id imageID: the spec's reference is looked up again, and its registry
// digest counts only when the reference still names that image.
func (a *Agent) runningDigest(ctx context.Context, spec raftfsm.ServiceSpec, imageID string) string {
	if spec.Image == "" {
		return imageID
	}
	info, err := a.rt.InspectImage(ctx, spec.Image)
	if err != nil || info.ID != imageID {
		return imageID
	}
	return reportedDigest(info)
}

// buildTag names the image built from a context with a Dockerfile: the
// same context built with another Dockerfile is another image. (Specs have
// no build arguments; they would join the hash here.)
func buildTag(contextDigest, dockerfile string) string {
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	h := sha256.Sum256([]byte(contextDigest + "\x00" + path.Clean(dockerfile)))
	return "dropmesh-build/" + strings.TrimPrefix(contextDigest, "sha256:")[:16] + ":" + hex.EncodeToString(h[:8])
}

// buildImage builds an uploaded context once per context and Dockerfile on
// this node. The stored context is checked again for the spec's Dockerfile
// (uploads are stored before a spec names it), and what is built is the
// checked copy.
func (a *Agent) buildImage(ctx context.Context, d desiredInstance, progress func(string)) (runtime.ImageInfo, error) {
	tag := buildTag(d.spec.Build, d.spec.Dockerfile)
	if info, err := a.rt.InspectImage(ctx, tag); err == nil {
		return info, nil
	}
	rc, err := a.openOrFetchContext(ctx, d.spec.Build)
	if err != nil {
		return runtime.ImageInfo{}, err
	}
	defer rc.Close()
	dockerfile := d.spec.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	checked, err := a.contexts.Checked(ctx, rc, dockerfile)
	if err != nil {
		return runtime.ImageInfo{}, fmt.Errorf("build context %s: %w", d.spec.Build, err)
	}
	defer checked.Close()
	if _, err := a.rt.BuildImage(ctx, checked, []string{tag}, dockerfile, map[string]string{runtime.LabelManaged: "true"}, progress); err != nil {
		return runtime.ImageInfo{}, err
	}
	return a.rt.InspectImage(ctx, tag)
}

func (a *Agent) contextPath(digest string) string {
	return a.contexts.Path(digest)
}

// StoreContext validates an uploaded build context (size, paths, links) as
// it streams to disk (runtime.ContextStore: per-upload and per-node quota,
// one decompression at a time), stores it by digest and records this node
// as a holder. Its Dockerfile is checked when a spec names it
// (buildImage): a context may hold several.
func (a *Agent) StoreContext(ctx context.Context, r io.Reader) (control.ContextInfo, error) {
	info, err := a.contexts.Store(ctx, r)
	if errors.Is(err, runtime.ErrInvalid) {
		// A refusal of the upload: the API answers 400 with the message.
		return control.ContextInfo{}, fmt.Errorf("%w: %w", raftfsm.ErrInvalid, err)
	}
	if err != nil {
		return control.ContextInfo{}, fmt.Errorf("build context: %w", err)
	}
	out := control.ContextInfo{Digest: info.Digest, Size: info.Size}
	if err := a.report(ctx, &raftfsm.PutBuildContext{At: a.now(), Digest: out.Digest, Size: out.Size, Node: a.cfg.NodeID}); err != nil {
		return out, fmt.Errorf("record build context: %w", err)
	}
	return out, nil
}

// OpenContext opens a stored build context.
func (a *Agent) OpenContext(digest string) (io.ReadCloser, int64, error) {
	if err := raftfsm.ValidateContextDigest(digest); err != nil {
		return nil, 0, err
	}
	f, err := os.Open(a.contextPath(digest))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, fmt.Errorf("build context %s: %w", digest, raftfsm.ErrNotFound)
	}
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// openOrFetchContext opens a context here, or fetches it from a holder.
func (a *Agent) openOrFetchContext(ctx context.Context, digest string) (io.ReadCloser, error) {
	if rc, _, err := a.OpenContext(digest); err == nil {
		return rc, nil
	}
	var holders []string
	a.fsm.View(func(s *raftfsm.State) {
		if bc, ok := s.Contexts[digest]; ok {
			for _, h := range bc.Holders {
				if n, ok := s.Nodes[h]; ok && h != a.cfg.NodeID {
					holders = append(holders, n.API)
				}
			}
		}
	})
	var lastErr error = fmt.Errorf("build context %s: no node holds it", digest)
	for _, api := range holders {
		rc, err := a.peers.fetchContext(ctx, api, digest)
		if err != nil {
			lastErr = err
			continue
		}
		_, err = a.StoreContext(ctx, rc)
		rc.Close()
		if err != nil {
			lastErr = err
			continue
		}
		if rc, _, err := a.OpenContext(digest); err == nil {
			return rc, nil
		}
	}
	return nil, lastErr
}
