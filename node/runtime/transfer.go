package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
)

// The Docker calls that move images between engines without a registry
// (node/imagepeer): an image's layer list, docker save and docker load, and
// the layers the engine already holds.

// ImageLayers is an image's id, tags and uncompressed layer digests
// (config rootfs.diff_ids, bottom first). It returns an error wrapping
// ErrImageNotFound when the image is not present.
func (r *Runtime) ImageLayers(ctx context.Context, ref string) (id string, tags, diffIDs []string, err error) {
	if ref == "" {
		return "", nil, nil, fmt.Errorf("image layers: %w: empty reference", ErrInvalid)
	}
	ii, err := r.cli.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return "", nil, nil, fmt.Errorf("image %s: %w", ref, ErrImageNotFound)
	}
	if err != nil {
		return "", nil, nil, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return ii.ID, ii.RepoTags, ii.RootFS.Layers, nil
}

// SaveImage streams `docker save` of one image (by id or reference).
func (r *Runtime) SaveImage(ctx context.Context, ref string) (io.ReadCloser, error) {
	rc, err := r.cli.ImageSave(ctx, []string{ref})
	if cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("image %s: %w", ref, ErrImageNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("save image %s: %w", ref, err)
	}
	return rc, nil
}

// LoadImage is `docker load` of a docker-save tar stream; Docker's own
// message is returned when it refuses the stream.
func (r *Runtime) LoadImage(ctx context.Context, tarStream io.Reader) error {
	resp, err := r.cli.ImageLoad(ctx, tarStream, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("load image: %w", err)
	}
	defer resp.Body.Close()
	if !resp.JSON {
		_, err := io.Copy(io.Discard, resp.Body)
		return err
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("load image: %w", err)
		}
		if m.Error != nil {
			return fmt.Errorf("load image: %s", m.Error.Message)
		}
	}
}

// LayerChains are the chain ids (OCI image spec: the digest of a layer
// stack) of every layer stack the engine holds, found through its images:
// a layer whose chain id is here need not be sent again.
func (r *Runtime) LayerChains(ctx context.Context) (map[string]bool, error) {
	list, err := r.cli.ImageList(ctx, image.ListOptions{All: true})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	chains := map[string]bool{}
	for _, s := range list {
		ii, err := r.cli.ImageInspect(ctx, s.ID)
		if err != nil {
			continue // removed meanwhile
		}
		for _, c := range ChainIDs(ii.RootFS.Layers) {
			chains[c] = true
		}
	}
	return chains, nil
}

// ChainIDs are the chain ids of a layer list (diff ids, bottom first): the
// first is the first diff id, each next is sha256 of "previous next".
func ChainIDs(diffIDs []string) []string {
	out := make([]string, 0, len(diffIDs))
	prev := ""
	for _, d := range diffIDs {
		if prev == "" {
			prev = d
		} else {
			h := sha256.Sum256([]byte(prev + " " + d))
			prev = "sha256:" + hex.EncodeToString(h[:])
		}
		out = append(out, prev)
	}
	return out
}

// TaggedImage is a local image with its tags and creation time.
type TaggedImage struct {
	ID      string
	Tags    []string
	Created time.Time
}

// ManagedImages are the images dropmesh built (label LabelManaged): what
// image housekeeping may remove.
func (r *Runtime) ManagedImages(ctx context.Context) ([]TaggedImage, error) {
	list, err := r.cli.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelManaged+"=true"))})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]TaggedImage, 0, len(list))
	for _, s := range list {
		out = append(out, TaggedImage{ID: s.ID, Tags: s.RepoTags, Created: time.Unix(s.Created, 0).UTC()})
	}
	return out, nil
}

// ImagesDiskUsage is the disk the engine's image layers take (shared
// layers counted once), as `docker system df` reports it.
func (r *Runtime) ImagesDiskUsage(ctx context.Context) (int64, error) {
	du, err := r.cli.DiskUsage(ctx, types.DiskUsageOptions{Types: []types.DiskUsageObject{types.ImageObject}})
	if err != nil {
		return 0, fmt.Errorf("docker disk usage: %w", err)
	}
	return du.LayersSize, nil
}

// ImagesInUse are the image ids of every container of the engine, running
// or not (any container, not only dropmesh's): images housekeeping keeps.
func (r *Runtime) ImagesInUse(ctx context.Context) (map[string]bool, error) {
	list, err := r.cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make(map[string]bool, len(list))
	for _, c := range list {
		out[c.ImageID] = true
	}
	return out, nil
}
