package mesh

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"strings"
)

// newMemberlistLogger adapts memberlist's *log.Logger output ("[LEVEL]
// memberlist: message") to slog, with component=memberlist. This is the one
// place memberlist's logging is adapted.
func newMemberlistLogger(logger *slog.Logger) *log.Logger {
	return log.New(&logWriter{logger: logger.With("component", "memberlist")}, "", 0)
}

// logPrefixes maps memberlist's level prefixes to slog levels.
var logPrefixes = []struct {
	prefix string
	level  slog.Level
}{
	{"[DEBUG]", slog.LevelDebug}, {"[INFO]", slog.LevelInfo}, {"[WARN]", slog.LevelWarn},
	{"[ERR]", slog.LevelError}, {"[ERROR]", slog.LevelError},
}

// logWriter receives one formatted memberlist log line per Write.
type logWriter struct{ logger *slog.Logger }

// Write logs p at the level its "[LEVEL]" prefix names, a few known-noisy
// lines demoted to debug.
func (w *logWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\n"))
	level := slog.LevelInfo
	for _, p := range logPrefixes {
		if strings.HasPrefix(line, p.prefix) {
			level = p.level
			line = strings.TrimSpace(strings.TrimPrefix(line, p.prefix))
			break
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	if strings.Contains(line, stateReadMarker) || strings.HasPrefix(line, "ignoring alive message for") {
		// State reads are refused on purpose; refused members are already
		// logged by the alive delegate, once a minute per member.
		level = slog.LevelDebug
	}
	if w.logger.Enabled(context.Background(), level) {
		w.logger.Log(context.Background(), level, line)
	}
	return len(p), nil
}
