package api

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
)

// maxCachedViews bounds the read views kept per server (one per view and
// query, such as each ?workspace= asked for).
const maxCachedViews = 64

// cachedView is a read answer encoded once per state version and served to
// every request of that version: the JSON body, or the error to answer
// instead. It is shared between requests, so never changed once built.
type cachedView struct {
	body []byte
	err  error
}

// encodeView encodes a read answer as c.JSON would.
func encodeView(v any) cachedView {
	b, err := json.Marshal(v)
	if err != nil {
		return cachedView{err: err}
	}
	return cachedView{body: b}
}

// serveView answers 200 with a cached body, or the cached error.
func (s *server) serveView(c *gin.Context, v cachedView) {
	if v.err != nil {
		s.fail(c, v.err)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", v.body)
}
