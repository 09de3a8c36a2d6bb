package imagepeer

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/api"
)

// The push routes: `dropmesh push` sends an image from the user's Docker to
// one node, with the API key or a deployer's token. The CLI asks which
// layers the node lacks (check), uploads those (blobs, each checked
// against its diff id as it arrives), then sends the config (commit): the
// node loads the image, tags it and records itself as a holder, and the
// other nodes fetch it from the peers when a deploy names it.
const (
	PushCheckPath  = "/v1/images/push/check"
	PushBlobPath   = "/v1/images/push/blobs/{digest}"
	PushCommitPath = "/v1/images/push/commit"
	// MaxPushLayerBytes bounds one uploaded layer (uncompressed).
	MaxPushLayerBytes = 8 << 30
)

// PushCheck asks which layers of an image the node lacks.
type PushCheck struct {
	Ref     string   `json:"ref"`
	ID      string   `json:"id"`
	DiffIDs []string `json:"diff_ids"`
}

// PushMissing are the diff ids to upload.
type PushMissing struct {
	Missing []string `json:"missing"`
}

// PushCommit finishes a push: the image config (its digest is the id).
type PushCommit struct {
	Ref    string `json:"ref"`
	Config []byte `json:"config"`
}

// PushResult says what the node took.
type PushResult struct {
	Ref    string `json:"ref"`
	ID     string `json:"id"`
	Node   string `json:"node"`
	Layers int    `json:"layers"`
	// Loaded is how many layers this push added to the node's engine.
	Loaded int `json:"loaded"`
}

// Receiver takes pushed images into this node's engine. Canon puts a
// reference in its one form (or refuses it); Record commits that this node
// holds ref as image id (raftfsm.PutImage).
type Receiver struct {
	Engine Engine
	Dir    string
	Node   string
	Canon  func(ref string) (string, error)
	Record func(ctx context.Context, ref, id string) error
	Logger *slog.Logger
}

// Routes are the receiver's entries for the API route table.
func (r *Receiver) Routes() []api.Route {
	return []api.Route{
		{Method: http.MethodPost, Path: PushCheckPath, Summary: "dropmesh push: which layers of an image this node lacks", Kind: api.RouteLocal,
			Handler: r.check, Request: PushCheck{}, Response: PushMissing{}},
		{Method: http.MethodPut, Path: PushBlobPath, Summary: "dropmesh push: upload one uncompressed layer, checked against its digest", Kind: api.RouteLocal,
			Handler: r.blob, RequestType: "application/octet-stream", MaxBody: MaxPushLayerBytes, Status: http.StatusNoContent},
		{Method: http.MethodPost, Path: PushCommitPath, Summary: "dropmesh push: load the pushed image on this node and record it", Kind: api.RouteLocal,
			Handler: r.commit, Request: PushCommit{}, Response: PushResult{}, Status: http.StatusCreated},
	}
}

func bad(c *gin.Context, msg string) {
	c.AbortWithStatusJSON(http.StatusBadRequest, api.ErrorBody{Error: api.CodeInvalid, Message: msg})
}

func (r *Receiver) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

func (r *Receiver) layerPath(diff string) string {
	return filepath.Join(r.Dir, strings.TrimPrefix(diff, "sha256:"))
}

func (r *Receiver) check(c *gin.Context) {
	var req PushCheck
	if err := c.ShouldBindJSON(&req); err != nil {
		bad(c, "push check: "+err.Error())
		return
	}
	if _, err := r.Canon(req.Ref); err != nil {
		bad(c, err.Error())
		return
	}
	for _, d := range append([]string{req.ID}, req.DiffIDs...) {
		if err := ValidDigest(d); err != nil {
			bad(c, err.Error())
			return
		}
	}
	missing, err := missingLayers(c.Request.Context(), r.Engine, req.DiffIDs)
	if err != nil {
		c.AbortWithStatusJSON(http.StatusServiceUnavailable, api.ErrorBody{Error: api.CodeUnavailable, Message: err.Error()})
		return
	}
	out := PushMissing{Missing: []string{}}
	for _, i := range missing {
		if _, err := os.Stat(r.layerPath(req.DiffIDs[i])); err == nil {
			continue // uploaded already (an interrupted push)
		}
		out.Missing = append(out.Missing, req.DiffIDs[i])
	}
	c.JSON(http.StatusOK, out)
}

func (r *Receiver) blob(c *gin.Context) {
	digest := c.Param("digest")
	if err := ValidDigest(digest); err != nil {
		bad(c, err.Error())
		return
	}
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		c.AbortWithStatusJSON(http.StatusInternalServerError, api.ErrorBody{Error: api.CodeInternal, Message: err.Error()})
		return
	}
	var nonce [6]byte
	_, _ = rand.Read(nonce[:])
	part := r.layerPath(digest) + ".part-" + hex.EncodeToString(nonce[:])
	defer os.Remove(part)
	f, err := os.OpenFile(part, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		c.AbortWithStatusJSON(http.StatusInternalServerError, api.ErrorBody{Error: api.CodeInternal, Message: err.Error()})
		return
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), c.Request.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		c.AbortWithStatusJSON(http.StatusRequestEntityTooLarge, api.ErrorBody{Error: api.CodeTooLarge, Message: fmt.Sprintf("layer %s: larger than %d bytes", digest, int64(MaxPushLayerBytes))})
		return
	case err != nil:
		bad(c, fmt.Sprintf("layer %s: %v", digest, err))
		return
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		bad(c, fmt.Sprintf("layer %s: the bytes hash to %s (%v): send it again", digest, got, ErrDigest))
		return
	}
	if err := os.Rename(part, r.layerPath(digest)); err != nil {
		c.AbortWithStatusJSON(http.StatusInternalServerError, api.ErrorBody{Error: api.CodeInternal, Message: err.Error()})
		return
	}
	c.Status(http.StatusNoContent)
}

func (r *Receiver) commit(c *gin.Context) {
	var req PushCommit
	if err := c.ShouldBindJSON(&req); err != nil {
		bad(c, "push commit: "+err.Error())
		return
	}
	ref, err := r.Canon(req.Ref)
	if err != nil {
		bad(c, err.Error())
		return
	}
	id := digestOf(req.Config)
	var cfg imageConfig
	if err := json.Unmarshal(req.Config, &cfg); err != nil || len(cfg.RootFS.DiffIDs) == 0 {
		bad(c, fmt.Sprintf("push commit: the config is not an image config with layers (%v)", err))
		return
	}
	diffs := cfg.RootFS.DiffIDs
	for _, d := range diffs {
		if err := ValidDigest(d); err != nil {
			bad(c, err.Error())
			return
		}
	}
	ctx := c.Request.Context()
	missing, err := missingLayers(ctx, r.Engine, diffs)
	if err != nil {
		c.AbortWithStatusJSON(http.StatusServiceUnavailable, api.ErrorBody{Error: api.CodeUnavailable, Message: err.Error()})
		return
	}
	for _, i := range missing {
		if _, err := os.Stat(r.layerPath(diffs[i])); err != nil {
			c.AbortWithStatusJSON(http.StatusConflict, api.ErrorBody{Error: api.CodeConflict,
				Message: fmt.Sprintf("layer %s was not uploaded to %s: check and upload again", diffs[i], r.Node)})
			return
		}
	}
	if err := loadImage(ctx, r.Engine, id, req.Config, diffs, missing, r.layerPath, []string{ref}); err != nil {
		c.AbortWithStatusJSON(http.StatusBadRequest, api.ErrorBody{Error: api.CodeInvalid, Message: fmt.Sprintf("load %s: %v", ref, err)})
		return
	}
	for _, i := range missing {
		os.Remove(r.layerPath(diffs[i]))
	}
	if got, _, _, err := r.Engine.ImageLayers(ctx, ref); err != nil || got != id {
		c.AbortWithStatusJSON(http.StatusInternalServerError, api.ErrorBody{Error: api.CodeInternal, Message: fmt.Sprintf("load %s: the engine shows %s (%v), not %s", ref, got, err, id)})
		return
	}
	if err := r.Record(ctx, ref, id); err != nil {
		r.logger().Warn("record pushed image", "image", ref, "err", err)
		c.AbortWithStatusJSON(http.StatusServiceUnavailable, api.ErrorBody{Error: api.CodeUnavailable, Message: fmt.Sprintf("%s is loaded on %s but not recorded: %v; push again", ref, r.Node, err)})
		return
	}
	r.logger().Info("image pushed", "image", ref, "id", id, "layers", len(diffs), "loaded", len(missing))
	c.JSON(http.StatusCreated, PushResult{Ref: ref, ID: id, Node: r.Node, Layers: len(diffs), Loaded: len(missing)})
}
