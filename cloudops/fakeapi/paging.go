package fakeapi

import (
	"math"
	"net/http"
	"net/url"
	"strconv"

	"github.com/digitalocean/godo"
)

// maxPage bounds the page number a listing accepts: far past any list the
// fake holds (200 million items at 200 a page), and small enough that
// page*per_page cannot overflow.
const maxPage = 1_000_000

// pageParams reads page and per_page; a bad value (not a positive integer,
// or a page beyond maxPage) is answered with a 400 in the provider's shape.
func pageParams(w http.ResponseWriter, r *http.Request, def, maxPer int, cloudflare bool) (page, per int, ok bool) {
	page, per = 1, def
	for name, dst := range map[string]*int{"page": &page, "per_page": &per} {
		v := r.URL.Query().Get(name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseFloat(v, 64)
		msg := ""
		switch {
		case err != nil || !(n >= 1) || n != math.Trunc(n):
			msg = name + " must be a positive integer, got " + strconv.Quote(v)
		case name == "page" && n > maxPage:
			msg = "page must be at most " + strconv.Itoa(maxPage) + ", got " + strconv.Quote(v)
		}
		if msg != "" {
			if cloudflare {
				cfError(w, http.StatusBadRequest, 1001, msg)
			} else {
				doError(w, http.StatusBadRequest, "bad_request", msg)
			}
			return 0, 0, false
		}
		*dst = int(min(n, math.MaxInt32)) // a huge per_page is capped below
	}
	per = min(per, maxPer)
	return page, per, true
}

// window returns the bounds of page within total items; a page past the
// end is empty. It never overflows, whatever page and per are (>= 1).
func window(page, per, total int) (lo, hi int) {
	pages := 0
	if total > 0 {
		pages = (total-1)/per + 1
	}
	if page > pages {
		return total, total
	}
	lo = (page - 1) * per // < total: page is at most pages
	return lo, lo + min(per, total-lo)
}

// doPage cuts one page out of items and builds DigitalOcean's links and
// meta; false means a 400 was already written.
func doPage[T any](w http.ResponseWriter, r *http.Request, items []T) ([]T, *godo.Links, *godo.Meta, bool) {
	page, per, ok := pageParams(w, r, 20, 200, false)
	if !ok {
		return nil, nil, nil, false
	}
	total := len(items)
	lo, hi := window(page, per, total)
	last := max(1, (total+per-1)/per)
	link := func(p int) string {
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path}
		if r.TLS != nil {
			u.Scheme = "https"
		}
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(per))
		u.RawQuery = q.Encode()
		return u.String()
	}
	pages := &godo.Pages{}
	if page > 1 {
		pages.First, pages.Prev = link(1), link(min(page-1, last))
	}
	if page < last {
		pages.Next, pages.Last = link(page+1), link(last)
	}
	out := items[lo:hi]
	if out == nil {
		out = []T{}
	}
	return out, &godo.Links{Pages: pages}, &godo.Meta{Total: total}, true
}
