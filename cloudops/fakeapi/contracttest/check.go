package contracttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"sigs.k8s.io/yaml"
)

// Provider is one cloud API the fake imitates.
type Provider struct {
	// Name is "digitalocean" or "cloudflare", as in the allow-list.
	Name string
	// Prefix is where its paths start on the fake ("/v2/", "/client/v4/").
	Prefix string
	// Base is its real base URL; a recorded request is routed as if sent
	// there.
	Base   string
	doc    *openapi3.T
	router routers.Router
}

// AllowEntry is one known difference between the spec and the live API.
type AllowEntry struct {
	// Provider is "digitalocean" or "cloudflare".
	Provider string `json:"provider"`
	// Operation is "METHOD /path" in the spec's spelling, or "*".
	Operation string `json:"operation"`
	// Status narrows the entry to one status ("404") or class ("4XX");
	// "" is any.
	Status string `json:"status,omitempty"`
	// Match is a substring of the violation it covers.
	Match string `json:"match"`
	// Evidence says why the live API is known to answer so: a link, a
	// captured answer, a client's source.
	Evidence string `json:"evidence"`
}

// Checker validates recorded exchanges against both providers' specs.
type Checker struct {
	providers []*Provider
	allow     []AllowEntry
}

// Load reads digitalocean.json and cloudflare.json from dir/openapi and the
// allow-list dir/openapi/allowlist.yaml.
func Load(dir string) (*Checker, error) {
	c := &Checker{providers: []*Provider{
		{Name: "digitalocean", Prefix: "/v2/", Base: "https://api.digitalocean.com"},
		{Name: "cloudflare", Prefix: "/client/v4/", Base: "https://api.cloudflare.com/client/v4"},
	}}
	for _, p := range c.providers {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromFile(filepath.Join(dir, "openapi", p.Name+".json"))
		if err != nil {
			return nil, fmt.Errorf("load %s spec: %w", p.Name, err)
		}
		if err := doc.Validate(loader.Context, openapi3.DisableExamplesValidation()); err != nil {
			return nil, fmt.Errorf("%s spec is not valid OpenAPI: %w", p.Name, err)
		}
		doc.Servers = openapi3.Servers{{URL: p.Base}}
		if p.router, err = gorillamux.NewRouter(doc); err != nil {
			return nil, fmt.Errorf("route %s spec: %w", p.Name, err)
		}
		p.doc = doc
	}
	b, err := os.ReadFile(filepath.Join(dir, "openapi", "allowlist.yaml"))
	if err != nil {
		return nil, fmt.Errorf("read allow-list: %w", err)
	}
	if err := yaml.UnmarshalStrict(b, &c.allow); err != nil {
		return nil, fmt.Errorf("parse allow-list: %w", err)
	}
	for i, a := range c.allow {
		if a.Provider == "" || a.Operation == "" || a.Match == "" || strings.TrimSpace(a.Evidence) == "" {
			return nil, fmt.Errorf("allow-list entry %d: provider, operation, match and evidence are all required", i)
		}
	}
	return c, nil
}

// Violation is one way an answer broke its spec.
type Violation struct {
	Provider  string
	Operation string // "METHOD /path" in the spec, or the request's if unrouted
	Status    int
	Problem   string
	// Allowed is the allow-list entry that covers it, or nil.
	Allowed *AllowEntry
	// Example is one exchange that showed it; Count how many did.
	Example Exchange
	Count   int
}

func (v Violation) String() string {
	return fmt.Sprintf("%s %s -> %d: %s", v.Provider, v.Operation, v.Status, v.Problem)
}

// Report is what Check found.
type Report struct {
	Exchanges  int            // exchanges checked
	Skipped    int            // /_fake, unfinished or unrouted 404/405 exchanges
	Operations map[string]int // answers checked per "provider METHOD /path STATUS"
	Violations []Violation    // distinct violations, allowed ones included
	Unused     []AllowEntry   // allow-list entries nothing matched
}

// Failed returns the violations no allow-list entry covers.
func (r Report) Failed() []Violation {
	var out []Violation
	for _, v := range r.Violations {
		if v.Allowed == nil {
			out = append(out, v)
		}
	}
	return out
}

// Check validates every exchange.
func (c *Checker) Check(ctx context.Context, exs []Exchange) Report {
	rep := Report{Operations: map[string]int{}}
	found := map[string]*Violation{}
	used := map[int]bool{}
	type result struct {
		op       string
		problems []string
	}
	memo := map[string]result{}
	for _, ex := range exs {
		p := c.provider(ex.Path)
		if p == nil || ex.Unfinished {
			rep.Skipped++
			continue
		}
		rep.Exchanges++
		// Polls repeat the same answer: validate each distinct one once.
		key := answerKey(ex)
		res, seen := memo[key]
		if !seen {
			res.op, res.problems = c.check(ctx, p, ex)
			memo[key] = res
		}
		op, problems := res.op, res.problems
		if op == "" {
			if ex.Status == http.StatusNotFound || ex.Status == http.StatusMethodNotAllowed {
				rep.Skipped++ // a path no API has; the fake said so
				continue
			}
			op = ex.Method + " " + ex.Path
		}
		rep.Operations[fmt.Sprintf("%s %s %d", p.Name, op, ex.Status)]++
		for _, prob := range problems {
			key := p.Name + "\x00" + op + "\x00" + strconv.Itoa(ex.Status) + "\x00" + prob
			if v := found[key]; v != nil {
				v.Count++
				continue
			}
			v := &Violation{Provider: p.Name, Operation: op, Status: ex.Status, Problem: prob, Example: ex, Count: 1}
			for i := range c.allow {
				a := &c.allow[i]
				if a.Provider == p.Name && (a.Operation == "*" || a.Operation == op) && statusMatches(a.Status, ex.Status) && strings.Contains(prob, a.Match) {
					v.Allowed, used[i] = a, true
					break
				}
			}
			found[key] = v
		}
	}
	for _, v := range found {
		rep.Violations = append(rep.Violations, *v)
	}
	sort.Slice(rep.Violations, func(i, j int) bool { return rep.Violations[i].String() < rep.Violations[j].String() })
	for i, a := range c.allow {
		if !used[i] {
			rep.Unused = append(rep.Unused, a)
		}
	}
	return rep
}

// statusMatches reports whether an allow-list status ("", "404", "4XX")
// covers status.
func statusMatches(want string, status int) bool {
	got := strconv.Itoa(status)
	switch {
	case want == "":
		return true
	case len(want) == 3 && strings.HasSuffix(strings.ToUpper(want), "XX"):
		return got[0] == want[0]
	}
	return want == got
}

// answerKey identifies an exchange for validation: the request line, the
// status, the names of the headers sent and the body.
func answerKey(ex Exchange) string {
	names := make([]string, 0, len(ex.Header))
	for k := range ex.Header {
		names = append(names, k)
	}
	slices.Sort(names)
	return ex.Method + " " + ex.Path + "?" + ex.RawQuery + " " + strconv.Itoa(ex.Status) + " " + strings.Join(names, ",") + "\x00" + string(ex.Body)
}

func (c *Checker) provider(path string) *Provider {
	for _, p := range c.providers {
		if strings.HasPrefix(path, p.Prefix) {
			return p
		}
	}
	return nil
}

// check validates one answer; op is "" when no operation of the spec
// matches the request.
func (c *Checker) check(ctx context.Context, p *Provider, ex Exchange) (op string, problems []string) {
	// Route it as if it had been sent to the real API: DigitalOcean's paths
	// are the same, Cloudflare's lose the fake's /client/v4 (its base
	// URL's path).
	path := ex.Path
	if p.Name == "cloudflare" {
		path = "/" + strings.TrimPrefix(ex.Path, p.Prefix)
	}
	u, err := url.Parse(p.Base + path)
	if err != nil {
		return "", []string{"unparsable path: " + err.Error()}
	}
	u.RawQuery = ex.RawQuery
	req, err := http.NewRequestWithContext(ctx, ex.Method, u.String(), bytes.NewReader(ex.ReqBody))
	if err != nil {
		return "", []string{err.Error()}
	}
	req.Header = ex.ReqHeader.Clone()
	route, params, err := p.router.FindRoute(req)
	if err != nil {
		return "", []string{"no operation in the spec: " + err.Error()}
	}
	op = ex.Method + " " + route.Path
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 ex.Status,
		Header:                 ex.Header,
		Body:                   io.NopCloser(bytes.NewReader(ex.Body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(ctx, in); err != nil {
		problems = append(problems, explain(err)...)
	}
	// Stricter than the validator, which lets a documented header be
	// absent: the providers send the headers they document (DigitalOcean's
	// rate limit on every answer), and clients read them.
	if resp := responseFor(route.Operation, ex.Status); resp != nil {
		var missing []string
		for name := range resp.Headers {
			if ex.Header.Get(name) == "" && !strings.EqualFold(name, "content-type") && !strings.EqualFold(name, "x-request-id") {
				missing = append(missing, strings.ToLower(name))
			}
		}
		slices.Sort(missing)
		for _, m := range missing {
			problems = append(problems, "documented header "+m+" is missing")
		}
	}
	return op, problems
}

// responseFor is the response the spec documents for status.
func responseFor(op *openapi3.Operation, status int) *openapi3.Response {
	if op.Responses == nil {
		return nil
	}
	r := op.Responses.Status(status)
	if r == nil {
		r = op.Responses.Default()
	}
	if r == nil {
		return nil
	}
	return r.Value
}

// explain turns a validation error into one line per problem, each naming
// the JSON pointer of the offending value.
func explain(err error) []string {
	var re *openapi3filter.ResponseError
	if !errors.As(err, &re) || re.Err == nil {
		return []string{oneLine(err.Error())}
	}
	var out []string
	for _, p := range flatten(re.Err) {
		out = append(out, p.String())
	}
	if len(out) == 0 {
		out = []string{oneLine(re.Reason + ": " + re.Err.Error())}
	}
	return out
}

// problem is one schema complaint.
type problem struct {
	ptr    []string
	reason string
	// notThisBranch: a single-valued enum (a record's "type": "A") did
	// not match, so the value was never meant for this oneOf branch.
	notThisBranch bool
}

func (p problem) String() string { return "/" + strings.Join(p.ptr, "/") + ": " + oneLine(p.reason) }

func flatten(err error) []problem {
	switch e := err.(type) {
	case openapi3.MultiError:
		var out []problem
		for _, sub := range e {
			out = append(out, flatten(sub)...)
		}
		return out
	case *openapi3.SchemaError:
		var branches openapi3.MultiError
		if (e.SchemaField == "oneOf" || e.SchemaField == "anyOf" || e.SchemaField == "allOf") && errors.As(e.Origin, &branches) && len(branches) > 0 {
			if e.SchemaField == "allOf" {
				return flatten(branches)
			}
			return closestBranch(branches)
		}
		constant := e.SchemaField == "enum" && e.Schema != nil && len(e.Schema.Enum) == 1
		return []problem{{ptr: e.JSONPointer(), reason: e.Reason, notThisBranch: constant}}
	}
	if u := errors.Unwrap(err); u != nil {
		return flatten(u)
	}
	return []problem{{reason: err.Error()}}
}

// closestBranch picks the problems of the oneOf branch the value was meant
// for: not one whose constant it contradicts, then the one it got deepest
// into before failing, then the one with the fewest complaints.
func closestBranch(branches []error) []problem {
	var best []problem
	bestScore := [3]int{1 << 30, 1 << 30, 1 << 30}
	for _, b := range branches {
		ps := flatten(b)
		mismatch, depth := 0, 1<<20
		for _, p := range ps {
			if p.notThisBranch {
				mismatch = 1
			}
			depth = min(depth, len(p.ptr))
		}
		score := [3]int{mismatch, -depth, len(ps)}
		if best == nil || score[0] < bestScore[0] || (score[0] == bestScore[0] && (score[1] < bestScore[1] || (score[1] == bestScore[1] && score[2] < bestScore[2]))) {
			best, bestScore = ps, score
		}
	}
	return best
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
