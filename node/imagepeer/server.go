package imagepeer

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/node/api"
	"github.com/dropmesh/dropmesh/raftfsm"
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

// Routes are the server's entries for the API route table (api.Options.Extra).
func (s *Server) Routes() []api.Route {
	return []api.Route{
		{Method: http.MethodGet, Path: DescriptorPath, Summary: "A peer asks for an image this node holds: its id and layers (exported once)", Kind: api.RouteLocal, Access: api.AccessNode,
			Role: raftfsm.RoleAdmin, Handler: s.descriptor, Response: Descriptor{},
			Query: []api.Param{{Name: "ref", Type: "string", Description: "image reference or id, as the state names it", Required: true}}},
		{Method: http.MethodGet, Path: BlobPath, Summary: "A config or uncompressed layer blob of an exported image, by digest (byte ranges allowed)", Kind: api.RouteLocal, Access: api.AccessNode,
			Role: raftfsm.RoleAdmin, Handler: s.blob, ResponseType: "application/octet-stream"},
	}
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) descriptor(c *gin.Context) {
	ref := c.Query("ref")
	if ref == "" || len(ref) > 1024 {
		c.AbortWithStatusJSON(http.StatusBadRequest, api.ErrorBody{Error: api.CodeInvalid, Message: "query parameter ref: want an image reference or id"})
		return
	}
	if s.Allowed == nil || !s.Allowed(ref) {
		c.AbortWithStatusJSON(http.StatusNotFound, api.ErrorBody{Error: api.CodeNotFound, Message: "image " + ref + " is not one this node serves"})
		return
	}
	d, err := s.Store.Export(c.Request.Context(), ref)
	if errors.Is(err, ErrNotFound) {
		c.AbortWithStatusJSON(http.StatusNotFound, api.ErrorBody{Error: api.CodeNotFound, Message: err.Error()})
		return
	}
	if err != nil {
		s.logger().Warn("image export failed", "image", ref, "err", err)
		c.AbortWithStatusJSON(http.StatusInternalServerError, api.ErrorBody{Error: api.CodeInternal, Message: err.Error()})
		return
	}
	c.JSON(http.StatusOK, d)
}

func (s *Server) blob(c *gin.Context) {
	digest := c.Param("digest")
	f, err := s.Store.OpenBlob(digest)
	switch {
	case errors.Is(err, ErrInvalid):
		c.AbortWithStatusJSON(http.StatusBadRequest, api.ErrorBody{Error: api.CodeInvalid, Message: err.Error()})
		return
	case err != nil:
		c.AbortWithStatusJSON(http.StatusNotFound, api.ErrorBody{Error: api.CodeNotFound, Message: err.Error()})
		return
	}
	defer f.Close()
	c.Header("Docker-Content-Digest", digest)
	c.Header("Content-Type", "application/octet-stream")
	// ServeContent answers Range requests: a broken download resumes.
	http.ServeContent(c.Writer, c.Request, "", time.Time{}, f)
}
