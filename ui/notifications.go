package ui

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// The notifications page lists the webhooks the leader sends events to
// (node/notify) and adds or removes them. Admins only: a webhook receives
// what happens in every workspace.

// webhookRow is a webhook on the notifications page, its URL shortened.
type webhookRow struct {
	ID      string
	Format  string
	URL     string
	Kinds   []string
	Created time.Time
}

// notificationsView is the notifications page.
type notificationsView struct {
	Webhooks []webhookRow
	Formats  []string
	// DefaultKinds are what a webhook without its own kinds receives.
	DefaultKinds []string
	Form         webhookForm
}

// webhookForm is the add-webhook form, kept when it is refused.
type webhookForm struct {
	URL    string
	Format string
	Events string
}

func (s *server) buildNotifications(c *gin.Context, p *pageData) error {
	p.Title = "Notifications"
	v, _ := p.Data.(notificationsView)
	if v.Form.Format == "" {
		v.Form.Format = raftfsm.WebhookGeneric
	}
	v.Formats = []string{raftfsm.WebhookGeneric, raftfsm.WebhookSlack, raftfsm.WebhookDiscord}
	v.DefaultKinds = raftfsm.WebhookDefaultKinds()
	s.node.View(func(st *raftfsm.State) {
		for _, id := range raftfsm.SortedKeys(st.Webhooks) {
			w := st.Webhooks[id]
			v.Webhooks = append(v.Webhooks, webhookRow{ID: w.ID, Format: w.Format, URL: w.ShortURL(), Kinds: slices.Clone(w.Kinds), Created: w.CreatedAt})
		}
	})
	p.Data = v
	return nil
}

// putWebhook adds a webhook. The node checks the URL and the format.
func (s *server) putWebhook(c *gin.Context) {
	form := webhookForm{URL: strings.TrimSpace(c.PostForm("url")), Format: c.PostForm("format"), Events: strings.TrimSpace(c.PostForm("events"))}
	ctx, cancel := s.actionContext(c)
	defer cancel()
	id, err := newWebhookID()
	if err == nil {
		err = s.node.PutWebhook(ctx, raftfsm.Webhook{ID: id, URL: form.URL, Format: form.Format, Kinds: kindsOf(form.Events)})
	}
	if err != nil {
		s.formFailed(c, "notifications", "/notifications", "webhook", err, notificationsView{Form: form}, s.buildNotifications)
		return
	}
	s.redirectOK(c, "/notifications", "Added webhook "+id+" posting to "+(raftfsm.Webhook{URL: form.URL}).ShortURL()+".")
}

// deleteWebhook removes a webhook.
func (s *server) deleteWebhook(c *gin.Context) {
	id := c.Param("id")
	ctx, cancel := s.actionContext(c)
	defer cancel()
	if err := s.node.DeleteWebhook(ctx, id); err != nil {
		s.actionFailed(c, "notifications", "/notifications", err, s.buildNotifications)
		return
	}
	s.redirectOK(c, "/notifications", "Removed webhook "+id+".")
}

// newWebhookID makes an id of the form the API gives a webhook without one.
func newWebhookID() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make webhook id: %w", err)
	}
	return "hook-" + hex.EncodeToString(b), nil
}

// kindsOf splits the events field ("deploy.failed, heal.") into kind
// prefixes; empty means the default set.
func kindsOf(field string) []string {
	return strings.FieldsFunc(field, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
}
