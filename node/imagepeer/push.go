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

	"github.com/dropmesh/dropmesh/node/control"
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

func bad(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, control.ErrorBody{Error: control.CodeInvalid, Message: msg})
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

// ServeCheck answers which layers of an image this node lacks.
func (r *Receiver) ServeCheck(w http.ResponseWriter, hr *http.Request) {
	var req PushCheck
	if err := json.NewDecoder(hr.Body).Decode(&req); err != nil {
		bad(w, "push check: "+err.Error())
		return
	}
	if _, err := r.Canon(req.Ref); err != nil {
		bad(w, err.Error())
		return
	}
	for _, d := range append([]string{req.ID}, req.DiffIDs...) {
		if err := ValidDigest(d); err != nil {
			bad(w, err.Error())
			return
		}
	}
	missing, err := missingLayers(hr.Context(), r.Engine, req.DiffIDs)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, control.ErrorBody{Error: control.CodeUnavailable, Message: err.Error()})
		return
	}
	out := PushMissing{Missing: []string{}}
	for _, i := range missing {
		if _, err := os.Stat(r.layerPath(req.DiffIDs[i])); err == nil {
			continue // uploaded already (an interrupted push)
		}
		out.Missing = append(out.Missing, req.DiffIDs[i])
	}
	writeJSON(w, http.StatusOK, out)
}

// ServeUpload takes one uncompressed layer (the digest path value), checked against its digest.
func (r *Receiver) ServeUpload(w http.ResponseWriter, hr *http.Request) {
	digest := hr.PathValue("digest")
	if err := ValidDigest(digest); err != nil {
		bad(w, err.Error())
		return
	}
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		writeJSON(w, http.StatusInternalServerError, control.ErrorBody{Error: control.CodeInternal, Message: err.Error()})
		return
	}
	var nonce [6]byte
	_, _ = rand.Read(nonce[:])
	part := r.layerPath(digest) + ".part-" + hex.EncodeToString(nonce[:])
	defer os.Remove(part)
	f, err := os.OpenFile(part, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, control.ErrorBody{Error: control.CodeInternal, Message: err.Error()})
		return
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), hr.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		writeJSON(w, http.StatusRequestEntityTooLarge, control.ErrorBody{Error: control.CodeTooLarge, Message: fmt.Sprintf("layer %s: larger than %d bytes", digest, int64(MaxPushLayerBytes))})
		return
	case err != nil:
		bad(w, fmt.Sprintf("layer %s: %v", digest, err))
		return
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		bad(w, fmt.Sprintf("layer %s: the bytes hash to %s (%v): send it again", digest, got, ErrDigest))
		return
	}
	if err := os.Rename(part, r.layerPath(digest)); err != nil {
		writeJSON(w, http.StatusInternalServerError, control.ErrorBody{Error: control.CodeInternal, Message: err.Error()})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ServeCommit loads the pushed image on this node and records it.
func (r *Receiver) ServeCommit(w http.ResponseWriter, hr *http.Request) {
	var req PushCommit
	if err := json.NewDecoder(hr.Body).Decode(&req); err != nil {
		bad(w, "push commit: "+err.Error())
		return
	}
	ref, err := r.Canon(req.Ref)
	if err != nil {
		bad(w, err.Error())
		return
	}
	id := digestOf(req.Config)
	var cfg imageConfig
	if err := json.Unmarshal(req.Config, &cfg); err != nil || len(cfg.RootFS.DiffIDs) == 0 {
		bad(w, fmt.Sprintf("push commit: the config is not an image config with layers (%v)", err))
		return
	}
	diffs := cfg.RootFS.DiffIDs
	for _, d := range diffs {
		if err := ValidDigest(d); err != nil {
			bad(w, err.Error())
			return
		}
	}
	ctx := hr.Context()
	missing, err := missingLayers(ctx, r.Engine, diffs)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, control.ErrorBody{Error: control.CodeUnavailable, Message: err.Error()})
		return
	}
	for _, i := range missing {
		if _, err := os.Stat(r.layerPath(diffs[i])); err != nil {
			writeJSON(w, http.StatusConflict, control.ErrorBody{Error: control.CodeConflict,
				Message: fmt.Sprintf("layer %s was not uploaded to %s: check and upload again", diffs[i], r.Node)})
			return
		}
	}
	if err := loadImage(ctx, r.Engine, id, req.Config, diffs, missing, r.layerPath, []string{ref}); err != nil {
		writeJSON(w, http.StatusBadRequest, control.ErrorBody{Error: control.CodeInvalid, Message: fmt.Sprintf("load %s: %v", ref, err)})
		return
	}
	for _, i := range missing {
		os.Remove(r.layerPath(diffs[i]))
	}
	if got, _, _, err := r.Engine.ImageLayers(ctx, ref); err != nil || got != id {
		writeJSON(w, http.StatusInternalServerError, control.ErrorBody{Error: control.CodeInternal, Message: fmt.Sprintf("load %s: the engine shows %s (%v), not %s", ref, got, err, id)})
		return
	}
	if err := r.Record(ctx, ref, id); err != nil {
		r.logger().Warn("record pushed image", "image", ref, "err", err)
		writeJSON(w, http.StatusServiceUnavailable, control.ErrorBody{Error: control.CodeUnavailable, Message: fmt.Sprintf("%s is loaded on %s but not recorded: %v; push again", ref, r.Node, err)})
		return
	}
	r.logger().Info("image pushed", "image", ref, "id", id, "layers", len(diffs), "loaded", len(missing))
	writeJSON(w, http.StatusCreated, PushResult{Ref: ref, ID: id, Node: r.Node, Layers: len(diffs), Loaded: len(missing)})
}
