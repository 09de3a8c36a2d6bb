package raftfsm

// The events aggregate: the event log and the webhooks that are told of it.

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

func applyAppendEvent(s *State, c *AppendEvent) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	e := c.Event
	if e.Kind == "" || len(e.Kind) > 64 {
		return nil, invalidf("event kind %q", e.Kind)
	}
	if e.Message == "" || len(e.Message) > 2000 {
		return nil, invalidf("event message: want 1 to 2000 characters")
	}
	switch e.Severity {
	case "", SeverityInfo, SeverityWarn, SeverityError:
	default:
		return nil, invalidf("event severity %q", e.Severity)
	}
	e.At = c.At
	s.Events.add(e)
	return s.Events.NextSeq, nil
}

func applyPutWebhook(s *State, c *PutWebhook) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	w := c.Webhook
	if w.ID == "" || len(w.ID) > 64 || strings.ContainsAny(w.ID, "/ ") {
		return nil, invalidf("webhook id %q", w.ID)
	}
	if err := validateURL("webhook url", w.URL); err != nil {
		return nil, err
	}
	return putWebhook(s, c.At, w)
}

func applyPutSealedWebhook(s *State, c *PutSealedWebhook) (any, error) {
	if err := requireTime(c.At); err != nil {
		return nil, err
	}
	w := c.Webhook
	if w.ID == "" || len(w.ID) > 64 || strings.ContainsAny(w.ID, "/ ") {
		return nil, invalidf("webhook id %q", w.ID)
	}
	if err := w.validateSealed(); err != nil {
		return nil, err
	}
	return putWebhook(s, c.At, w)
}

func putWebhook(s *State, at time.Time, w Webhook) (any, error) {
	switch w.Format {
	case WebhookGeneric, WebhookSlack, WebhookDiscord:
	default:
		return nil, invalidf("webhook format %q: want generic, slack or discord", w.Format)
	}
	if old, ok := s.Webhooks[w.ID]; ok {
		w.CreatedAt = old.CreatedAt
	} else {
		w.CreatedAt = at
	}
	w.Kinds = slices.Clone(w.Kinds)
	s.Webhooks[w.ID] = &w
	return nil, nil
}

func applyDeleteWebhook(s *State, c *DeleteWebhook) (any, error) {
	if _, ok := s.Webhooks[c.ID]; !ok {
		return nil, fmt.Errorf("webhook %s: %w", c.ID, ErrNotFound)
	}
	delete(s.Webhooks, c.ID)
	return nil, nil
}

func applyAdvanceNotified(s *State, c *AdvanceNotified) (any, error) {
	if c.Seq > s.Events.NextSeq {
		return nil, invalidf("notified seq %d is beyond the last event %d", c.Seq, s.Events.NextSeq)
	}
	if c.Seq > s.Settings.NotifiedSeq {
		s.Settings.NotifiedSeq = c.Seq
	}
	return nil, nil
}
