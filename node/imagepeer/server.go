package imagepeer

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/dropmesh/dropmesh/node/control"
)

// The peer routes. They are AccessNode routes of the agent API: only
// another agent, with its node certificate and the API key over mutual
// TLS, may call them.
const (
	DescriptorPath = "/v1/internal/images/descriptor"
	BlobPath       = "/v1/internal/images/blobs/{digest}"
	blobPrefix     = "/v1/internal/images/blobs/"
)

// Server serves a Store's images to the peers. Allowed says whether the
// state references an image (a reference or an image id): nothing else of
// the engine is ever exported or served.
type Server struct {
	Store   *Store
	Allowed func(ref string) bool
	Logger  *slog.Logger
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// ServeDescriptor answers a peer asking for an image this node holds (query ref).
func (s *Server) ServeDescriptor(w http.ResponseWriter, hr *http.Request) {
	ref := hr.URL.Query().Get("ref")
	if ref == "" || len(ref) > 1024 {
		writeJSON(w, http.StatusBadRequest, control.ErrorBody{Error: control.CodeInvalid, Message: "query parameter ref: want an image reference or id"})
		return
	}
	if s.Allowed == nil || !s.Allowed(ref) {
		writeJSON(w, http.StatusNotFound, control.ErrorBody{Error: control.CodeNotFound, Message: "image " + ref + " is not one this node serves"})
		return
	}
	d, err := s.Store.Export(hr.Context(), ref)
	if errors.Is(err, ErrNotFound) {
		writeJSON(w, http.StatusNotFound, control.ErrorBody{Error: control.CodeNotFound, Message: err.Error()})
		return
	}
	if err != nil {
		s.logger().Warn("image export failed", "image", ref, "err", err)
		writeJSON(w, http.StatusInternalServerError, control.ErrorBody{Error: control.CodeInternal, Message: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// ServeBlob serves a config or layer blob by the digest path value, with byte ranges.
func (s *Server) ServeBlob(w http.ResponseWriter, hr *http.Request) {
	digest := hr.PathValue("digest")
	f, err := s.Store.OpenBlob(digest)
	switch {
	case errors.Is(err, ErrInvalid):
		writeJSON(w, http.StatusBadRequest, control.ErrorBody{Error: control.CodeInvalid, Message: err.Error()})
		return
	case err != nil:
		writeJSON(w, http.StatusNotFound, control.ErrorBody{Error: control.CodeNotFound, Message: err.Error()})
		return
	}
	defer f.Close()
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Type", "application/octet-stream")
	// ServeContent answers Range requests: a broken download resumes.
	http.ServeContent(w, hr, "", time.Time{}, f)
}

// writeJSON answers with status code and v as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
