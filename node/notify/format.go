package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// ErrUnknownFormat is a webhook format this version cannot render.
var ErrUnknownFormat = errors.New("unknown webhook format")

// Wants reports whether webhook w receives event e: its kind matches one of
// w.Kinds as a prefix (raftfsm.WebhookDefaultKinds when empty, raftfsm.WebhookAllKinds
// "*" for all), and w existed
// when e happened.
func Wants(w raftfsm.Webhook, e raftfsm.Event) bool {
	if e.At.Before(w.CreatedAt) {
		return false
	}
	kinds := w.Kinds
	if len(kinds) == 0 {
		kinds = raftfsm.WebhookDefaultKinds()
	}
	for _, k := range kinds {
		if k == raftfsm.WebhookAllKinds || (k != "" && strings.HasPrefix(e.Kind, k)) {
			return true
		}
	}
	return false
}

// GenericPayload is the body of a generic webhook: the event as it is in the
// state (seq, at, kind, severity, node, service, instance, deploy, message)
// plus the cluster's name.
type GenericPayload struct {
	Cluster string `json:"cluster"`
	raftfsm.Event
}

// SlackPayload is the body of a Slack incoming webhook.
type SlackPayload struct {
	Text string `json:"text"`
}

// DiscordPayload is the body of a Discord webhook. AllowedMentions is empty
// so an event message can never ping @everyone or a role.
type DiscordPayload struct {
	Content         string          `json:"content"`
	AllowedMentions allowedMentions `json:"allowed_mentions"`
}

type allowedMentions struct {
	Parse []string `json:"parse"`
}

// discordMaxContent is Discord's limit on a message's content, in characters.
const discordMaxContent = 2000

// slackMaxText keeps a Slack message readable; Slack itself truncates at 40,000.
const slackMaxText = 3000

// Payload renders event e of cluster for a webhook of format (generic,
// slack or discord).
func Payload(format, cluster string, e raftfsm.Event) ([]byte, error) {
	switch format {
	case raftfsm.WebhookGeneric:
		return json.Marshal(GenericPayload{Cluster: cluster, Event: e})
	case raftfsm.WebhookSlack:
		return json.Marshal(SlackPayload{Text: slackEscape(truncate(Line(cluster, e), slackMaxText))})
	case raftfsm.WebhookDiscord:
		return json.Marshal(DiscordPayload{Content: truncate(Line(cluster, e), discordMaxContent), AllowedMentions: allowedMentions{Parse: []string{}}})
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownFormat, format)
	}
}

// Line is the short readable form of an event used by the chat formats:
// a severity mark, the cluster, the kind, where it happened and the message,
// for example "🔴 [prod] deploy.failed shop/prod/web: deploy of ... failed: ...".
func Line(cluster string, e raftfsm.Event) string {
	var b strings.Builder
	switch e.Severity {
	case raftfsm.SeverityError:
		b.WriteString("🔴 ")
	case raftfsm.SeverityWarn:
		b.WriteString("⚠️ ")
	default:
		b.WriteString("ℹ️ ")
	}
	if cluster != "" {
		b.WriteString("[" + cluster + "] ")
	}
	b.WriteString(e.Kind)
	if where := subject(e); where != "" {
		b.WriteString(" " + where)
	}
	b.WriteString(": ")
	b.WriteString(strings.Join(strings.Fields(e.Message), " "))
	return b.String()
}

// subject names what the event is about: the service (without the
// workspace id, which says nothing to a reader), else the node.
func subject(e raftfsm.Event) string {
	if e.Service != "" {
		parts := strings.Split(e.Service, "/")
		if len(parts) == 4 {
			parts = parts[1:]
		}
		s := strings.Join(parts, "/")
		if e.Node != "" {
			s += " on " + e.Node
		}
		return s
	}
	return e.Node
}

// slackEscape escapes the three characters Slack's mrkdwn gives meaning to.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// truncate cuts s to at most n characters (runes), marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
