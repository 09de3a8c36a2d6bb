package health

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"
)

// DefaultLogPattern marks the error lines of the usual log formats. It is
// matched against each line (ANSI colours removed), anchored at its start:
//
//   - an optional timestamp: RFC 3339 as Docker's Timestamps prefix writes it,
//     "2006-01-02 15:04:05,000", "2006/01/02 15:04:05" (nginx, Go's log),
//     optionally in brackets and with a zone, then optionally a process or
//     thread id ("[1]", "0");
//   - then a level word ERROR, ERR, EROR, FATAL, CRITICAL, CRIT, PANIC or
//     EMERG (any case, a whole word), optionally after "[", "(", "<", a
//     "channel." prefix (Monolog) or a "level=" / "lvl=" / "severity=" field
//     preceded by at most six logfmt fields (`time=... level=ERROR`);
//   - or `panic:`, `Traceback`, `Unhandled exception`, an exception class
//     (`Exception in thread`, `java.lang.IllegalStateException: ...`), an
//     error class with a colon (`ValueError: ...`, `TypeError: ...`), a Ruby
//     Logger line (`E, [...] ERROR -- `) or a klog line (`E0102 15:04:05`).
//
// A level word later in the line does not count: `INFO ... error count=0`
// is not an error line. Only the first DefaultPatternHead bytes of a line
// are matched against it, and only when they contain one of its keywords
// (a cheap test that skips the regular expression for most lines). JSON
// lines are judged by their level field instead (see LogScanner).
const DefaultLogPattern = `(?i)^\s*` +
	// timestamp, optional zone, optional pid or thread id
	`(?:\[?\d{4}[-/]\d{2}[-/]\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:\s?(?:Z|UTC|[+-]\d{2}:?\d{2}))?\]?\s+(?:\[?\d+\]?:?\s+)?)?` +
	`(?:` +
	// bare level word: ERROR ..., [ERROR] ..., app.ERROR: ...
	`[\[(<]?\s*(?:[\w-]+\.)?(?:error|err|eror|fatal|critical|crit|panic|emerg)\b` +
	// level field, after a few logfmt fields: time=... level=error
	`|(?:[\w.@-]+=(?:"[^"]*"|\S*)\s+){0,6}(?:level|lvl|severity)\s*[=:]\s*"?(?:error|err|eror|fatal|critical|crit|panic|emerg)\b` +
	`|panic:` +
	`|(?-i:Traceback)\b` +
	`|unhandled\s+exception\b` +
	`|(?-i:(?:[\w$]+\.)*(?:[A-Z][\w$]*)?Exception)\b` +
	`|(?-i:(?:[\w$]+\.)*[A-Z][\w$]*Error):` +
	`|[EF],\s*\[[^\]]*\]\s+(?:error|fatal)\b` +
	`|[EF]\d{4}\s+\d{2}:\d{2}:\d{2}` +
	`)`

// MaxLineBytes is how much of one log line is judged; the rest of a longer
// line is skipped, so a huge line costs no memory.
const MaxLineBytes = 64 << 10

// DefaultPatternHead is how much of a line DefaultLogPattern looks at:
// everything it matches sits at the line start.
const DefaultPatternHead = 1 << 10

// MaxReasonBytes caps the error line quoted in a degraded result's reason.
const MaxReasonBytes = 200

var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]`)

// LogScanner finds error lines in a container's log. A line is an error
// line when it matches the scanner's pattern, or when it is a JSON object
// whose top-level level field (level, lvl, severity, loglevel, log.level,
// levelname or @l) is error, err, eror, fatal, critical, crit, panic, dpanic,
// emerg, emergency or alert, or a number from 50 (pino and bunyan: 50 error,
// 60 fatal). A LogScanner is safe for concurrent use.
type LogScanner struct {
	re        *regexp.Regexp
	isDefault bool // the default pattern: keyword pre-filter, line head only
}

// NewLogScanner compiles pattern (RE2 syntax; "" means DefaultLogPattern).
func NewLogScanner(pattern string) (*LogScanner, error) {
	if pattern == "" {
		pattern = DefaultLogPattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("%w: log pattern %q: %w", ErrInvalid, pattern, err)
	}
	return &LogScanner{re: re, isDefault: pattern == DefaultLogPattern}, nil
}

// Scan reads at most maxBytes from r and counts its error lines; first is
// the first of them, trimmed and capped at MaxReasonBytes. A last line
// without a newline when the cap is reached is taken as cut and not judged.
// Lines longer than MaxLineBytes are judged on their first MaxLineBytes.
// A read error ends the scan: what was found so far is returned with it.
func (s *LogScanner) Scan(r io.Reader, maxBytes int64) (matches int, first string, err error) {
	if maxBytes <= 0 {
		return 0, "", fmt.Errorf("%w: log scan cap %d bytes: must be positive", ErrInvalid, maxBytes)
	}
	lr := &io.LimitedReader{R: r, N: maxBytes}
	br := bufio.NewReaderSize(lr, 16<<10)
	line := make([]byte, 0, 1024)
	judge := func() {
		if s.IsErrorLine(line) {
			if matches == 0 {
				first = reasonLine(line)
			}
			matches++
		}
		line = line[:0]
	}
	for {
		chunk, rerr := br.ReadSlice('\n')
		if room := MaxLineBytes - len(line); room > 0 {
			line = append(line, chunk[:min(room, len(chunk))]...)
		}
		switch {
		case rerr == nil:
			judge()
		case errors.Is(rerr, bufio.ErrBufferFull):
			// the line goes on; keep reading it
		case errors.Is(rerr, io.EOF):
			if len(line) > 0 && lr.N > 0 {
				judge() // the source ended: a whole last line
			}
			return matches, first, nil
		default:
			return matches, first, fmt.Errorf("read log: %w", rerr)
		}
	}
}

// IsErrorLine reports whether one log line (with or without its line end)
// is an error line.
func (s *LogScanner) IsErrorLine(line []byte) bool {
	line = bytes.TrimRight(line, "\r\n")
	if bytes.IndexByte(line, 0x1b) >= 0 {
		line = ansiEscape.ReplaceAll(line, nil)
	}
	if jsonErrorLevel(line) {
		return true
	}
	if !s.isDefault {
		return s.re.Match(line)
	}
	head := line[:min(len(line), DefaultPatternHead)]
	return mayMatchDefault(head) && s.re.Match(head)
}

// mayMatchDefault reports whether head holds something DefaultLogPattern
// needs: one of its keywords (any case) or a klog level letter and date
// (`E0102`) near the start. Every match of the pattern passes this test.
func mayMatchDefault(head []byte) bool {
	for i := 0; i < len(head); i++ {
		rest := head[i:]
		switch head[i] | 0x20 { // ASCII lower case
		case 'e':
			if hasPrefixFold(rest, "err") || hasPrefixFold(rest, "eror") || hasPrefixFold(rest, "emerg") || hasPrefixFold(rest, "exception") {
				return true
			}
			if isKlogStamp(head, i) {
				return true
			}
		case 'f':
			if hasPrefixFold(rest, "fatal") || isKlogStamp(head, i) {
				return true
			}
		case 'c':
			if hasPrefixFold(rest, "crit") {
				return true
			}
		case 'p':
			if hasPrefixFold(rest, "panic") {
				return true
			}
		case 't':
			if hasPrefixFold(rest, "traceback") {
				return true
			}
		}
	}
	return false
}

// hasPrefixFold reports whether b starts with the lower-case ASCII word w,
// in any case.
func hasPrefixFold(b []byte, w string) bool {
	if len(b) < len(w) {
		return false
	}
	for i := 0; i < len(w); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c |= 0x20
		}
		if c != w[i] {
			return false
		}
	}
	return true
}

// isKlogStamp reports whether head[i:] looks like klog's "E0102" within the
// first 64 bytes of the line.
func isKlogStamp(head []byte, i int) bool {
	if i > 64 || i+5 > len(head) {
		return false
	}
	for _, c := range head[i+1 : i+5] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// jsonErrorLevel reports whether line is a JSON object (after an optional
// Docker timestamp) with an error level.
func jsonErrorLevel(line []byte) bool {
	line = bytes.TrimSpace(line)
	if len(line) > 0 && line[0] >= '0' && line[0] <= '9' {
		// a Docker timestamp prefix: skip its token
		if sp := bytes.IndexAny(line[:min(len(line), 40)], " \t"); sp > 0 {
			line = bytes.TrimLeft(line[sp:], " \t")
		}
	}
	if len(line) < 2 || line[0] != '{' || line[len(line)-1] != '}' || !containsLevelKey(line) {
		return false
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(line, &fields) != nil {
		return false
	}
	for k, v := range fields {
		switch strings.ToLower(k) {
		case "level", "lvl", "severity", "loglevel", "log.level", "levelname", "@l":
		default:
			continue
		}
		var word string
		if json.Unmarshal(v, &word) == nil {
			switch strings.ToLower(strings.TrimSpace(word)) {
			case "error", "err", "eror", "fatal", "critical", "crit", "panic", "dpanic", "emerg", "emergency", "alert":
				return true
			}
			continue
		}
		var n float64
		if json.Unmarshal(v, &n) == nil && n >= 50 && n <= 100 {
			return true
		}
	}
	return false
}

// containsLevelKey reports whether line mentions a level key, quoted, in
// any case: a cheap test before decoding it.
func containsLevelKey(line []byte) bool {
	for i := 0; i+3 < len(line); i++ {
		if line[i] != '"' {
			continue
		}
		rest := line[i+1:]
		if hasPrefixFold(rest, "level") || hasPrefixFold(rest, "lvl") || hasPrefixFold(rest, "severity") ||
			hasPrefixFold(rest, "loglevel") || hasPrefixFold(rest, "log.level") || hasPrefixFold(rest, "@l\"") {
			return true
		}
	}
	return false
}

// reasonLine makes a log line fit for a reason: colours and surrounding
// space removed, valid UTF-8, at most MaxReasonBytes.
func reasonLine(line []byte) string {
	if bytes.IndexByte(line, 0x1b) >= 0 {
		line = ansiEscape.ReplaceAll(line, nil)
	}
	s := strings.ToValidUTF8(strings.TrimSpace(string(line)), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) <= MaxReasonBytes {
		return s
	}
	cut := MaxReasonBytes - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
