package metrics

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLabelNormalisation(t *testing.T) {
	for _, c := range []struct {
		fn        func(string) string
		in, want  string
		condition string
	}{
		{phaseLabel, "health 2/3", "health", "phase with a count"},
		{phaseLabel, "ready", "ready", "known phase"},
		{phaseLabel, "", "unknown", "no phase yet"},
		{phaseLabel, "Ready", "unknown", "phases are lower case"},
		{healthLabel, "HEALTHY", "healthy", "status case"},
		{healthLabel, "sick", "other", "unknown status"},
		{healLabel, "heal.reschedule", "reschedule", "event kind"},
		{healLabel, "heal.", "other", "empty kind"},
		{containerHealthLabel, "", "unknown", "never checked"},
		{methodLabel, "PATCH", "PATCH", "known method"},
		{methodLabel, "get", "other", "methods are case-sensitive"},
	} {
		if got := c.fn(c.in); got != c.want {
			t.Errorf("%s: %q -> %q, want %q", c.condition, c.in, got, c.want)
		}
	}
}

func TestCleanLabel(t *testing.T) {
	for _, c := range []struct {
		in  string
		max int
	}{
		{"plain", 10},
		{"\xff\xfe bad", 64},
		{strings.Repeat("é", 100), 7}, // cut inside a rune
		{strings.Repeat("x", 1000), 64},
		{"", 5},
	} {
		got := cleanLabel(c.in, c.max)
		if !utf8.ValidString(got) || len(got) > c.max {
			t.Errorf("cleanLabel(%q, %d) = %q: want valid UTF-8 of at most %d bytes", c.in, c.max, got, c.max)
		}
		if utf8.ValidString(c.in) && len(c.in) <= c.max && got != c.in {
			t.Errorf("cleanLabel changed a good value %q to %q", c.in, got)
		}
	}
}
