package raftfsm

import (
	"net/url"
	"strings"
)

// ShortURL shows the webhook URL without its secret, for lists and
// messages (the CLI, the UI): the scheme, the host and
// the leading path segments that are plain words ("services", "api",
// "webhooks") stay; from the first other segment on, the path and the query
// are shown as "…" and their last four characters, enough to tell two
// targets apart. Credentials in the URL are dropped. A Slack URL
// https://hooks.slack.com/services/T0/B0/secret becomes
// https://hooks.slack.com/services/…cret.
func (w Webhook) ShortURL() string {
	u, err := url.Parse(w.URL)
	if err != nil || u.Host == "" {
		return "…"
	}
	out := u.Scheme + "://" + u.Host
	var segs []string
	if p := strings.TrimPrefix(u.EscapedPath(), "/"); p != "" || strings.HasSuffix(u.EscapedPath(), "/") {
		segs = strings.Split(p, "/")
	}
	hidden := ""
	for i, s := range segs {
		if !plainSegment(s) {
			hidden = "/" + strings.Join(segs[i:], "/")
			break
		}
		out += "/" + s
	}
	if u.RawQuery != "" {
		hidden += "?" + u.RawQuery
	}
	r := []rune(hidden)
	switch {
	case hidden == "" || hidden == "/":
		return out + hidden
	case len(r) <= 9:
		return out + hidden[:1] + "…"
	}
	return out + hidden[:1] + "…" + string(r[len(r)-4:])
}

// plainSegment reports a path segment that is a word, not an id or a
// token: 1 to 24 letters, '-' and '_', or an API version such as "v1".
func plainSegment(s string) bool {
	if s == "" || len(s) > 24 {
		return false
	}
	if len(s) >= 2 && s[0] == 'v' && strings.Trim(s[1:], "0123456789") == "" {
		return true
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_") == ""
}
