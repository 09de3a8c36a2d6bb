package raftfsm

import (
	"crypto/cipher"
	"fmt"
	"net/url"
	"strings"
)

// WebhookLabel is the associated data a webhook URL is sealed with.
func WebhookLabel(id string) string { return "webhook:" + id }

// SealWebhookURL validates w.URL and moves it into w.SealedURL, with its
// shortened form in w.Short: what the node does before a webhook enters
// the log.
func SealWebhookURL(aead cipher.AEAD, w *Webhook) error {
	if err := validateURL("webhook url", w.URL); err != nil {
		return err
	}
	sealed, err := Seal(aead, WebhookLabel(w.ID), []byte(w.URL))
	if err != nil {
		return err
	}
	w.Short, w.SealedURL, w.URL = w.ShortURL(), sealed, ""
	return nil
}

// WebhookURL returns the plain URL of a webhook: opened from SealedURL, or
// the plain URL of a webhook put by an older release.
func WebhookURL(aead cipher.AEAD, w Webhook) (string, error) {
	if w.SealedURL == "" {
		if w.URL == "" {
			return "", fmt.Errorf("webhook %s: %w: no URL", w.ID, ErrUnseal)
		}
		return w.URL, nil
	}
	plain, err := Open(aead, WebhookLabel(w.ID), w.SealedURL)
	if err != nil {
		return "", fmt.Errorf("webhook %s: %w", w.ID, err)
	}
	return string(plain), nil
}

// validateSealed checks a webhook that carries its URL sealed: no plain URL,
// a well-formed sealed value and a short form.
func (w Webhook) validateSealed() error {
	if w.URL != "" || !w.SealedURL.Valid() {
		return invalidf("webhook %s: want the URL sealed and no plain URL", w.ID)
	}
	if w.Short == "" || len(w.Short) > 512 {
		return invalidf("webhook %s: short URL of %d bytes", w.ID, len(w.Short))
	}
	return nil
}

// Redacted is the webhook as API answers show it: the URL shortened, the
// sealed value left out.
func (w Webhook) Redacted() Webhook {
	out := w
	out.URL, out.SealedURL, out.Short = w.ShortURL(), "", ""
	return out
}

// ShortURL shows the webhook URL without its secret, for lists and
// messages (the CLI, the UI): the scheme, the host and
// the leading path segments that are plain words ("services", "api",
// "webhooks") stay; from the first other segment on, the path and the query
// are shown as "…" and their last four characters, enough to tell two
// targets apart. Credentials in the URL are dropped. A Slack URL
// https://hooks.slack.com/services/T0/B0/secret becomes
// https://hooks.slack.com/services/…cret.
func (w Webhook) ShortURL() string {
	if w.URL == "" && w.Short != "" {
		return w.Short
	}
	if strings.Contains(w.URL, "…") {
		return w.URL // already shortened (an API answer)
	}
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
