package metrics

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// API request latency, by method, route template and status code. The route
// is the template of the route table ("/v1/nodes/{id}"), never the raw
// path, so ids do not become series; requests no route matches count as
// "unmatched" and methods outside the standard ones as "other".

// InstrumentAPI wraps a whole API handler (node/api.NewMeasured calls it)
// and labels each request with the route template it matches. patterns
// are "METHOD /path/{param}" (net/http.ServeMux's form), one per route of
// the route table. It needs no change inside the API and knows nothing of
// its HTTP framework. Streaming (Flush) passes through.
func (m *Metrics) InstrumentAPI(next http.Handler, patterns []string) http.Handler {
	mt := newRouteMatcher(patterns)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			// A handler that panics past the API's recovery still counts,
			// as the 500 the server turns it into.
			code := sw.code
			if p := recover(); p != nil {
				code = http.StatusInternalServerError
				m.observeAPI(r.Method, mt.match(r.Method, r.URL.EscapedPath()), code, time.Since(start))
				panic(p)
			}
			if code == 0 {
				code = http.StatusOK
			}
			m.observeAPI(r.Method, mt.match(r.Method, r.URL.EscapedPath()), code, time.Since(start))
		}()
		next.ServeHTTP(sw, r)
	})
}

func (m *Metrics) observeAPI(method, route string, code int, d time.Duration) {
	if code < 100 || code > 599 {
		code = 0
	}
	if d < 0 {
		d = 0
	}
	m.api.WithLabelValues(methodLabel(method), route, strconv.Itoa(code)).Observe(d.Seconds())
}

// routeMatcher finds the template a request path matches, as Gin would:
// among the routes of the method that match, the one with literal segments
// earliest wins ("/v1/nodes/x" over "/v1/nodes/{id}").
type routeMatcher struct {
	routes []matchRoute
}

type matchRoute struct {
	method, path string
	segs         []string // "" marks a {param}
}

func newRouteMatcher(patterns []string) *routeMatcher {
	mt := &routeMatcher{}
	for _, p := range patterns {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			continue // not "METHOD /path": matches nothing
		}
		segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
		for i, s := range segs {
			if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
				segs[i] = ""
			}
		}
		mt.routes = append(mt.routes, matchRoute{method: method, path: path, segs: segs})
	}
	return mt
}

func (mt *routeMatcher) match(method, path string) string {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	best, bestScore := labelUnmatched, -1
	for _, r := range mt.routes {
		if r.method != method || len(r.segs) != len(segs) {
			continue
		}
		score, ok := 0, true
		for i, s := range r.segs {
			switch {
			case s == "":
				if segs[i] == "" {
					ok = false
				}
			case s == segs[i]:
				// Literal segments weigh more the earlier they come.
				score |= 1 << (len(segs) - 1 - min(i, 62))
			default:
				ok = false
			}
			if !ok {
				break
			}
		}
		if ok && score > bestScore {
			best, bestScore = r.path, score
		}
	}
	return best
}

// statusWriter records the status code and keeps Flush (log streams) and
// Hijack working through the wrapper.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush passes through; gin's writer asserts http.Flusher directly.
func (w *statusWriter) Flush() {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack passes through when the underlying writer supports it.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
