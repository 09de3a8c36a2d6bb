package fakeapi

import (
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// CFZone is a zone in Cloudflare's JSON shape.
type CFZone struct {
	ID                  string         `json:"id"`
	Name                string         `json:"name"`
	Status              string         `json:"status"`
	Paused              bool           `json:"paused"`
	Type                string         `json:"type"`
	DevelopmentMode     int            `json:"development_mode"`
	NameServers         []string       `json:"name_servers"`
	OriginalNameServers []string       `json:"original_name_servers"`
	OriginalRegistrar   *string        `json:"original_registrar"`
	OriginalDNSHost     *string        `json:"original_dnshost"`
	CreatedOn           time.Time      `json:"created_on"`
	ModifiedOn          time.Time      `json:"modified_on"`
	ActivatedOn         time.Time      `json:"activated_on"`
	Account             CFRef          `json:"account"`
	Owner               CFRef          `json:"owner"`
	Permissions         []string       `json:"permissions"`
	Plan                CFRef          `json:"plan"`
	Meta                map[string]any `json:"meta"`
}

// CFRef is an {"id","name"} object of Cloudflare's.
type CFRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// CFRecord is a DNS record in Cloudflare's JSON shape.
type CFRecord struct {
	ID         string         `json:"id"`
	ZoneID     string         `json:"zone_id"`
	ZoneName   string         `json:"zone_name"`
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Content    string         `json:"content"`
	Proxiable  bool           `json:"proxiable"`
	Proxied    bool           `json:"proxied"`
	TTL        int            `json:"ttl"`
	Priority   *int           `json:"priority,omitempty"`
	Comment    *string        `json:"comment"`
	Tags       []string       `json:"tags"`
	Meta       map[string]any `json:"meta"`
	Settings   map[string]any `json:"settings"`
	CreatedOn  time.Time      `json:"created_on"`
	ModifiedOn time.Time      `json:"modified_on"`
}

// cfResultInfo is Cloudflare's paging block.
type cfResultInfo struct {
	Page       int `json:"page"`
	PerPage    int `json:"per_page"`
	Count      int `json:"count"`
	TotalCount int `json:"total_count"`
	TotalPages int `json:"total_pages"`
}

// cfOK answers in Cloudflare's success envelope.
func cfOK(w http.ResponseWriter, status int, result any, info *cfResultInfo) {
	body := map[string]any{"result": result, "success": true, "errors": []any{}, "messages": []any{}}
	if info != nil {
		body["result_info"] = info
	}
	writeJSON(w, status, body)
}

// cfError answers in Cloudflare's error envelope.
func cfError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{"result": nil, "success": false, "messages": []any{},
		"errors": []map[string]any{{"code": code, "message": msg}}})
}

// cfPage cuts a page out of items, answering a 400 itself on bad params.
// Pages past the end are empty, which is what ends the v6 auto-pager.
func cfPage[T any](w http.ResponseWriter, r *http.Request, items []T, def, maxPer int) ([]T, *cfResultInfo, bool) {
	page, per, ok := pageParams(w, r, def, maxPer, true)
	if !ok {
		return nil, nil, false
	}
	lo, hi := window(page, per, len(items))
	out := slices.Clone(items[lo:hi])
	if out == nil {
		out = []T{}
	}
	return out, &cfResultInfo{Page: page, PerPage: per, Count: len(out), TotalCount: len(items), TotalPages: (len(items) + per - 1) / per}, true
}

var hostLabelRe = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$`)

// validHost reports whether h is a lowercase DNS name of two labels or
// more (a leading "*" label allowed).
func validHost(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	labels := strings.Split(h, ".")
	if len(labels) < 2 {
		return false
	}
	for i, l := range labels {
		if !(i == 0 && l == "*") && !hostLabelRe.MatchString(l) {
			return false
		}
	}
	return true
}

// cfIDLocked hands out a 32-hex id.
func (s *Server) cfIDLocked() string {
	s.st.Seq.CF++
	return fmt.Sprintf("%032x", 0xcf000000+s.st.Seq.CF)
}

func (s *Server) zoneByName(name string) *CFZone {
	for _, z := range s.st.Zones {
		if z.Name == name {
			return z
		}
	}
	return nil
}

func (s *Server) addZone(name string) *CFZone {
	now := nowTime()
	z := &CFZone{ID: s.cfIDLocked(), Name: name, Status: "active", Type: "full",
		NameServers: []string{"ada.ns.cloudflare.com", "bob.ns.cloudflare.com"}, OriginalNameServers: []string{},
		CreatedOn: now, ModifiedOn: now, ActivatedOn: now,
		Account: CFRef{ID: fmt.Sprintf("%032x", 0xacc0), Name: "dropmesh fake account"}, Owner: CFRef{ID: fmt.Sprintf("%032x", 0x0e1), Name: "fake owner"},
		Permissions: []string{"#dns_records:edit", "#dns_records:read", "#zone:read"}, Plan: CFRef{ID: "free", Name: "Free Website"},
		Meta: map[string]any{"phishing_detected": false, "cdn_only": false, "dns_only": false}}
	s.st.Zones[z.ID] = z
	return z
}

func (s *Server) listZones(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSuffix(strings.ToLower(r.URL.Query().Get("name")), ".")
	status := r.URL.Query().Get("status")
	s.mu.Lock()
	var all []CFZone
	for _, z := range s.st.Zones {
		if (name == "" || z.Name == name) && (status == "" || z.Status == status) {
			all = append(all, *z)
		}
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	page, info, ok := cfPage(w, r, all, 20, 50)
	if ok {
		cfOK(w, http.StatusOK, page, info)
	}
}

// zoneLocked finds the zone named by path value "zid", answering itself
// when there is none.
func (s *Server) zoneLocked(w http.ResponseWriter, r *http.Request) *CFZone {
	z := s.st.Zones[r.PathValue("zid")]
	if z == nil {
		cfError(w, http.StatusNotFound, 7003, "Could not route to "+r.URL.Path+", perhaps your object identifier is invalid?")
	}
	return z
}

func (s *Server) getZone(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if z := s.zoneLocked(w, r); z != nil {
		cfOK(w, http.StatusOK, z, nil)
	}
}

func (s *Server) zoneRecords(zoneID string) []CFRecord {
	var out []CFRecord
	for _, rec := range s.st.Records {
		if rec.ZoneID == zoneID {
			out = append(out, *rec)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// recordFilters are the list parameters the fake understands. Any other
// is refused (400), never ignored: an ignored filter would answer every
// record of the zone, and a caller deleting what it listed would delete
// them all.
var recordFilters = []string{"name", "name.exact", "name.contains", "name.startswith", "name.endswith",
	"content", "content.exact", "content.contains", "content.startswith", "content.endswith",
	"type", "proxied", "match", "page", "per_page", "order", "direction"}

// recordFilter is one condition of a listing.
type recordFilter func(CFRecord) bool

// parseRecordFilters reads the query of a record listing.
func parseRecordFilters(q map[string][]string) ([]recordFilter, bool, string) {
	var fs []recordFilter
	for key := range q {
		if !slices.Contains(recordFilters, key) {
			return nil, false, fmt.Sprintf("unknown filter %q: the fake knows %s", key, strings.Join(recordFilters, ", "))
		}
	}
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	text := func(field string, value func(CFRecord) string, norm func(string) string) {
		for _, op := range []string{"", ".exact", ".contains", ".startswith", ".endswith"} {
			want := get(field + op)
			if want == "" {
				continue
			}
			want = norm(want)
			var match func(a, b string) bool
			switch op {
			case "", ".exact":
				match = func(a, b string) bool { return a == b }
			case ".contains":
				match = strings.Contains
			case ".startswith":
				match = strings.HasPrefix
			case ".endswith":
				match = strings.HasSuffix
			}
			fs = append(fs, func(r CFRecord) bool { return match(norm(value(r)), want) })
		}
	}
	// Cloudflare compares names case-insensitively; a name may be written
	// with a trailing dot.
	text("name", func(r CFRecord) string { return r.Name }, func(v string) string { return strings.TrimSuffix(strings.ToLower(v), ".") })
	text("content", func(r CFRecord) string { return r.Content }, func(v string) string { return v })
	if typ := strings.ToUpper(get("type")); typ != "" {
		fs = append(fs, func(r CFRecord) bool { return r.Type == typ })
	}
	switch p := get("proxied"); p {
	case "":
	case "true", "false":
		fs = append(fs, func(r CFRecord) bool { return strconv.FormatBool(r.Proxied) == p })
	default:
		return nil, false, "proxied must be true or false"
	}
	matchAny := false
	switch m := get("match"); m {
	case "", "all":
	case "any":
		matchAny = true
	default:
		return nil, false, "match must be any or all"
	}
	return fs, matchAny, ""
}

func (s *Server) listRecords(w http.ResponseWriter, r *http.Request) {
	fs, matchAny, msg := parseRecordFilters(r.URL.Query())
	if msg != "" {
		cfError(w, http.StatusBadRequest, 1001, msg)
		return
	}
	s.mu.Lock()
	z := s.zoneLocked(w, r)
	if z == nil {
		s.mu.Unlock()
		return
	}
	all := slices.DeleteFunc(s.zoneRecords(z.ID), func(rec CFRecord) bool {
		if len(fs) == 0 {
			return false
		}
		for _, f := range fs {
			if ok := f(rec); ok && matchAny {
				return false
			} else if !ok && !matchAny {
				return true
			}
		}
		return matchAny
	})
	s.mu.Unlock()
	page, info, ok := cfPage(w, r, all, 100, 5000)
	if ok {
		cfOK(w, http.StatusOK, page, info)
	}
}

// recordBody is a record create, replace or edit; nil fields were absent.
type recordBody struct {
	Name     *string  `json:"name"`
	Type     *string  `json:"type"`
	Content  *string  `json:"content"`
	TTL      *float64 `json:"ttl"`
	Proxied  *bool    `json:"proxied"`
	Priority *float64 `json:"priority"`
	Comment  *string  `json:"comment"`
	Tags     []string `json:"tags"`
}

// apply sets rec's fields from b: all of them (a create or a PUT), or only
// those present (a PATCH).
func (b *recordBody) apply(rec *CFRecord, z *CFZone, partial bool) {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	if !partial || b.Name != nil {
		n := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(str(b.Name))), ".")
		switch {
		case n == "" || n == "@":
			n = z.Name
		case n != z.Name && !strings.HasSuffix(n, "."+z.Name):
			n += "." + z.Name
		}
		rec.Name = n
	}
	if !partial || b.Type != nil {
		rec.Type = strings.ToUpper(str(b.Type))
	}
	if !partial || b.Content != nil {
		rec.Content = strings.TrimSpace(str(b.Content))
	}
	if !partial || b.TTL != nil {
		rec.TTL = 1
		if b.TTL != nil {
			rec.TTL = int(*b.TTL)
		}
	}
	if !partial || b.Proxied != nil {
		rec.Proxied = b.Proxied != nil && *b.Proxied
	}
	if !partial || b.Comment != nil {
		rec.Comment = b.Comment
	}
	if !partial || b.Priority != nil {
		rec.Priority = nil
		if b.Priority != nil {
			p := int(*b.Priority)
			rec.Priority = &p
		}
	}
	if !partial || b.Tags != nil {
		rec.Tags = nonNil(b.Tags)
	}
}

// checkRecordLocked validates rec as Cloudflare would (normalising its
// content and TTL); code 0 means valid.
func (s *Server) checkRecordLocked(rec *CFRecord) (code int, msg string) {
	if !validHost(rec.Name) {
		return 9005, fmt.Sprintf("DNS name %q is invalid.", rec.Name)
	}
	switch rec.Type {
	case "A", "AAAA":
		a, err := netip.ParseAddr(rec.Content)
		if err != nil || (rec.Type == "A") != a.Is4() {
			return 9005, fmt.Sprintf("Content for %s record is invalid: %q.", rec.Type, rec.Content)
		}
		rec.Content = a.String()
	case "CNAME":
		rec.Content = strings.TrimSuffix(strings.ToLower(rec.Content), ".")
		if !validHost(rec.Content) {
			return 9005, fmt.Sprintf("Content for CNAME record is invalid: %q.", rec.Content)
		}
	case "TXT":
		if rec.Content == "" || len(rec.Content) > 2048 {
			return 9005, "Content for TXT record must be 1-2048 characters."
		}
	case "MX":
		rec.Content = strings.TrimSuffix(strings.ToLower(rec.Content), ".")
		if !validHost(rec.Content) {
			return 9005, fmt.Sprintf("Content for MX record is invalid: %q.", rec.Content)
		}
		if rec.Priority == nil || *rec.Priority < 0 || *rec.Priority > 65535 {
			return 9100, "MX records need a priority between 0 and 65535."
		}
	default:
		return 1004, fmt.Sprintf("DNS Validation Error: record type %q is not supported by the fake (A, AAAA, CNAME, MX, TXT).", rec.Type)
	}
	if rec.Type != "MX" {
		rec.Priority = nil
	}
	rec.Proxiable = rec.Type == "A" || rec.Type == "AAAA" || rec.Type == "CNAME"
	if rec.Proxied && !rec.Proxiable {
		return 9004, "This record type cannot be proxied."
	}
	if rec.Proxied {
		rec.TTL = 1
	}
	if rec.TTL != 1 && (rec.TTL < 30 || rec.TTL > 86400) {
		return 9020, "Invalid TTL. Must be between 30 and 86400 seconds, or 1 for Automatic."
	}
	for _, o := range s.st.Records {
		if o.ZoneID != rec.ZoneID || o.ID == rec.ID || o.Name != rec.Name {
			continue
		}
		switch {
		case o.Type == rec.Type && o.Content == rec.Content:
			return 81058, "An identical record already exists."
		case rec.Type == "CNAME" && (o.Type == "A" || o.Type == "AAAA" || o.Type == "CNAME"):
			return 81053, "An A, AAAA, or CNAME record with that host already exists."
		case (rec.Type == "A" || rec.Type == "AAAA") && o.Type == "CNAME":
			return 81054, "A CNAME record with that host already exists."
		}
	}
	return 0, ""
}

func (s *Server) createRecord(w http.ResponseWriter, r *http.Request) {
	var b recordBody
	if err := decode(r, &b); err != nil {
		cfError(w, http.StatusBadRequest, 9207, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	z := s.zoneLocked(w, r)
	if z == nil {
		return
	}
	rec := &CFRecord{ZoneID: z.ID, ZoneName: z.Name, Meta: map[string]any{"auto_added": false}, Settings: map[string]any{}}
	b.apply(rec, z, false)
	if code, msg := s.checkRecordLocked(rec); code != 0 {
		cfError(w, http.StatusBadRequest, code, msg)
		return
	}
	rec.ID = s.cfIDLocked()
	rec.CreatedOn, rec.ModifiedOn = nowTime(), nowTime()
	s.st.Records[rec.ID] = rec
	s.changed()
	s.log.Info("dns record created", "zone", z.Name, "name", rec.Name, "type", rec.Type, "content", rec.Content)
	cfOK(w, http.StatusOK, rec, nil)
}

// recordLocked finds the zone and record named by the path, answering
// itself when either is missing.
func (s *Server) recordLocked(w http.ResponseWriter, r *http.Request) (*CFZone, *CFRecord) {
	z := s.zoneLocked(w, r)
	if z == nil {
		return nil, nil
	}
	rec := s.st.Records[r.PathValue("id")]
	if rec == nil || rec.ZoneID != z.ID {
		cfError(w, http.StatusNotFound, 81044, "Record does not exist.")
		return nil, nil
	}
	return z, rec
}

func (s *Server) getRecord(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, rec := s.recordLocked(w, r); rec != nil {
		cfOK(w, http.StatusOK, rec, nil)
	}
}

func (s *Server) putRecord(w http.ResponseWriter, r *http.Request)   { s.changeRecord(w, r, false) }
func (s *Server) patchRecord(w http.ResponseWriter, r *http.Request) { s.changeRecord(w, r, true) }

// changeRecord replaces (PUT) or edits (PATCH) a record; on a validation
// error the record is left as it was.
func (s *Server) changeRecord(w http.ResponseWriter, r *http.Request, partial bool) {
	var b recordBody
	if err := decode(r, &b); err != nil {
		cfError(w, http.StatusBadRequest, 9207, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	z, rec := s.recordLocked(w, r)
	if rec == nil {
		return
	}
	next := *rec
	b.apply(&next, z, partial)
	if code, msg := s.checkRecordLocked(&next); code != 0 {
		cfError(w, http.StatusBadRequest, code, msg)
		return
	}
	next.ModifiedOn = nowTime()
	*rec = next
	s.changed()
	s.log.Info("dns record changed", "zone", z.Name, "name", rec.Name, "content", rec.Content, "proxied", rec.Proxied)
	cfOK(w, http.StatusOK, rec, nil)
}

func (s *Server) deleteRecord(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	z, rec := s.recordLocked(w, r)
	if rec == nil {
		return
	}
	delete(s.st.Records, rec.ID)
	s.changed()
	s.log.Info("dns record deleted", "zone", z.Name, "name", rec.Name, "content", rec.Content)
	cfOK(w, http.StatusOK, map[string]string{"id": rec.ID}, nil)
}
