package api

import (
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"
)

// MetricsPath is where NewMeasured serves the node's metrics.
const MetricsPath = "/metrics"

// Meter is what the API needs of the node's metrics (node/metrics.Metrics
// is one): the registry's handler, and a wrapper that times each request
// by the route template it matches. Declared here, so the metrics package
// never builds or imports the API.
type Meter interface {
	// Handler serves the registry in the Prometheus text format.
	Handler() http.Handler
	// InstrumentAPI wraps the API handler; patterns are the route table as
	// "METHOD /path/{param}".
	InstrumentAPI(next http.Handler, patterns []string) http.Handler
}

// NewMeasured is New with GET /metrics added to the route table (served by
// the node that is asked, never forwarded, behind the API key like every
// route but /ping, and in the OpenAPI document like any other) and every
// request timed by m.
func NewMeasured(opts Options, m Meter) (http.Handler, error) {
	opts.Extra = append(slices.Clip(opts.Extra), Route{
		Method:       http.MethodGet,
		Path:         MetricsPath,
		Summary:      "This node's Prometheus metrics (text exposition format)",
		Kind:         RouteLocal,
		Handler:      gin.WrapH(m.Handler()),
		ResponseType: "text/plain",
	})
	h, err := New(opts)
	if err != nil {
		return nil, err
	}
	return m.InstrumentAPI(h, RoutePatterns(opts)), nil
}

// RoutePatterns is the route table of an API built with o as
// "METHOD /path/{param}" patterns (net/http.ServeMux's form).
func RoutePatterns(o Options) []string {
	rs := Routes(o)
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Method + " " + r.Path
	}
	return out
}
