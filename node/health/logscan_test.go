package health

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

func TestDefaultPatternLines(t *testing.T) {
	s, err := NewLogScanner("")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		line string
		want bool
	}{
		// level words at line start
		{"ERROR something broke", true},
		{"error: cannot open /data", true},
		{"Error: ENOENT: no such file", true},
		{"FATAL: database system is shutting down", true},
		{"CRITICAL:root:disk full", true},
		{"ERROR:root:bad thing", true},
		{"PANIC unexpected state", true},
		{"ERR invalid token", true},
		{"  ERROR indented", true},
		{"[ERROR] failed to connect", true},
		{"[error] upstream timed out", true},
		{"(FATAL) bad", true},
		{"<error> bad", true},
		{"ERROR[01-02|03:04:05.000] log15 style", true},
		{"app.ERROR: Monolog style", true},
		// after a timestamp
		{"2026-01-02T03:04:05.123456789Z ERROR docker timestamps prefix", true},
		{"2026-01-02T03:04:05Z [ERROR] x", true},
		{"2026-01-02T03:04:05+02:00 FATAL x", true},
		{"2026-01-02 03:04:05,123 ERROR python asctime", true},
		{"2026/01/02 03:04:05 [error] 29#29: *1 connect() failed (111)", true},
		{"2026/01/02 03:04:05 ERROR go log with level", true},
		{"[2026-01-02 03:04:05] production.ERROR: Monolog", true},
		{"2026-01-02 03:04:05.123 UTC [1] FATAL:  password authentication failed", true},
		{"2026-01-02T03:04:05.123456Z 0 [ERROR] [MY-010119] [Server] Aborting", true},
		{"2026-01-02T03:04:05.1Z\tERROR\tzap console", true},
		// level fields
		{"level=error msg=\"db down\"", true},
		{"time=2026-01-02T03:04:05.000Z level=ERROR msg=boom", true},
		{`ts=2026-01-02T03:04:05Z caller=main.go:12 level=error msg="x"`, true},
		{`time="2026-01-02T03:04:05Z" level=fatal msg="logrus text"`, true},
		{"lvl=eror msg=geth", true},
		{"severity: critical disk", true},
		// crashes and exceptions
		{"panic: runtime error: index out of range [3] with length 3", true},
		{"fatal error: all goroutines are asleep - deadlock!", true},
		{"Traceback (most recent call last):", true},
		{"Exception in thread \"main\" java.lang.NullPointerException", true},
		{"java.lang.IllegalStateException: closed", true},
		{"System.InvalidOperationException: bad op", true},
		{"Unhandled exception. System.Exception: boom", true},
		{"ValueError: invalid literal for int()", true},
		{"TypeError: Cannot read properties of undefined", true},
		{"java.lang.OutOfMemoryError: Java heap space", true},
		{"E, [2026-01-02T03:04:05.123456 #1] ERROR -- : ruby logger", true},
		{"F, [2026-01-02T03:04:05.123456 #1] FATAL -- : ruby logger", true},
		{"E0102 03:04:05.123456       1 main.go:12] klog error", true},
		{"\x1b[31mERROR\x1b[0m coloured", true},
		{"ERROR with crlf\r\n", true},
		// JSON lines
		{`{"level":"error","msg":"db down"}`, true},
		{`{"level":"ERROR","msg":"upper"}`, true},
		{`{"severity":"CRITICAL","message":"gcp"}`, true},
		{`{"lvl":"fatal","msg":"x"}`, true},
		{`{"time":"2026-01-02T03:04:05Z","level":"dpanic","msg":"zap"}`, true},
		{`{"level":50,"msg":"pino error"}`, true},
		{`{"level":60,"msg":"pino fatal"}`, true},
		{`{"log.level":"error","message":"ecs"}`, true},
		{`{"@l":"Error","@m":"serilog"}`, true},
		{`2026-01-02T03:04:05.5Z {"level":"error","msg":"with docker stamp"}`, true},
		{"{\"level\":\"error\"}  \t", true},

		// not error lines
		{"INFO request done error count=0", false},
		{"INFO 2026-01-02 error rate 0%", false},
		{"2026-01-02T03:04:05Z INFO no error here", false},
		{"DEBUG error handler registered", false},
		{"WARN: error budget at 80%", false},
		{"Processed 0 errors", false},
		{"ERRORS: 0", false},
		{"errors=0 warnings=2", false},
		{"error_count=0", false},
		{"errorless run", false},
		{"Terror is a word", false},
		{"Panicking is never the answer", false},
		{"Exceptional results: 3", false},
		{"exception handler installed", false},
		{"lastError: nil", false},
		{"No exception occurred", false},
		{"level=info msg=\"error rate 0\"", false},
		{"time=2026-01-02T03:04:05.000Z level=INFO msg=\"error retried\"", false},
		{`ts=1 caller=x level=warn msg="error"`, false},
		{`{"level":"info","msg":"error while retrying, retried"}`, false},
		{`{"level":"warn","error":"timeout"}`, false},
		{`{"level":30,"msg":"pino info"}`, false},
		{`{"msg":"x","ctx":{"level":"error"}}`, false},
		{`{"msg":"saw \"level\":\"error\" in input"}`, false},
		{`{"level":"error"`, false}, // broken JSON
		{"    at com.example.Foo.bar(Foo.java:12)", false},
		{"GET /error 200 1.2ms", false},
		{"127.0.0.1 - - [02/Jan/2026:03:04:05 +0000] \"GET /error HTTP/1.1\" 500 12", false},
		{"Starting server on :8080", false},
		{"", false},
	} {
		if got := s.IsErrorLine([]byte(tc.line)); got != tc.want {
			t.Errorf("IsErrorLine(%q) = %v, want %v", tc.line, got, tc.want)
		}
	}
}

func TestScanCountsAndFirst(t *testing.T) {
	s, _ := NewLogScanner("")
	log := "INFO starting\n" +
		"  ERROR   first failure  \n" +
		"INFO error count=0\n" +
		"panic: second\n" +
		"goroutine 1 [running]:\n" +
		"FATAL last line without newline"
	n, first, err := s.Scan(strings.NewReader(log), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || first != "ERROR   first failure" {
		t.Fatalf("got %d, %q", n, first)
	}
	n, first, err = s.Scan(strings.NewReader("INFO fine\nINFO still fine\n"), 1<<20)
	if err != nil || n != 0 || first != "" {
		t.Fatalf("clean log: got %d, %q, %v", n, first, err)
	}
	n, _, err = s.Scan(strings.NewReader(""), 1<<20)
	if err != nil || n != 0 {
		t.Fatalf("empty log: %d, %v", n, err)
	}
}

func TestScanNeverReadsBeyondCap(t *testing.T) {
	s, _ := NewLogScanner("")
	big := strings.Repeat("INFO filler line\n", 10000) + "ERROR after the cap\n"
	for _, limit := range []int64{1, 17, 100, 4096, 65536, 100000} {
		cr := &countingReader{r: strings.NewReader(big)}
		n, _, err := s.Scan(cr, limit)
		if err != nil {
			t.Fatal(err)
		}
		if cr.n > limit {
			t.Errorf("cap %d: read %d bytes", limit, cr.n)
		}
		if n != 0 {
			t.Errorf("cap %d: found %d error lines beyond the cap", limit, n)
		}
	}
}

func TestScanLineCutByCapIsNotJudged(t *testing.T) {
	s, _ := NewLogScanner("")
	for _, tc := range []struct{ log, cutAfter string }{
		{"INFO a\nExceptional results: 3\n", "INFO a\nException"},
		{"INFO a\nerrorless run\n", "INFO a\nerror"},
		{"INFO a\nPanicking is never the answer\n", "INFO a\nPanic"},
	} {
		// the whole log has no error line ...
		if n, _, _ := s.Scan(strings.NewReader(tc.log), 1<<20); n != 0 {
			t.Fatalf("%q: whole log matched", tc.log)
		}
		// ... and cut where its prefix would match, still none
		n, first, err := s.Scan(strings.NewReader(tc.log), int64(len(tc.cutAfter)))
		if err != nil || n != 0 {
			t.Errorf("%q cut after %d bytes: %d matches (%q), %v", tc.log, len(tc.cutAfter), n, first, err)
		}
	}
	// A last line without newline is judged when the source ends before the cap.
	if n, _, _ := s.Scan(strings.NewReader("INFO a\nERROR end"), 1<<20); n != 1 {
		t.Fatalf("unterminated last line not judged: %d", n)
	}
}

func TestScanLongLines(t *testing.T) {
	s, _ := NewLogScanner("")
	long := strings.Repeat("x", 200<<10)
	// a huge harmless line does not hide the error line after it
	n, first, err := s.Scan(strings.NewReader("INFO "+long+"\nERROR after long\n"), 1<<20)
	if err != nil || n != 1 || first != "ERROR after long" {
		t.Fatalf("got %d %q %v", n, first, err)
	}
	// a huge error line is found and quoted short, on a rune boundary
	n, first, err = s.Scan(strings.NewReader("ERROR "+strings.Repeat("é", 100<<10)+"\nINFO x\n"), 1<<20)
	if err != nil || n != 1 {
		t.Fatalf("got %d %v", n, err)
	}
	if len(first) > MaxReasonBytes || !utf8.ValidString(first) || !strings.HasPrefix(first, "ERROR é") || !strings.HasSuffix(first, "…") {
		t.Fatalf("reason %q (%d bytes)", first, len(first))
	}
	// a huge line with "ERROR" beyond MaxLineBytes does not match
	n, _, _ = s.Scan(strings.NewReader("INFO "+long+" ERROR\n"), 1<<20)
	if n != 0 {
		t.Fatalf("matched a level word deep in a line")
	}
	// many long lines in a row
	n, _, err = s.Scan(strings.NewReader(strings.Repeat(long+"\n", 4)+"FATAL x\n"), 1<<20)
	if err != nil || n != 1 {
		t.Fatalf("after several long lines: %d %v", n, err)
	}
}

func TestScanReasonCleaned(t *testing.T) {
	s, _ := NewLogScanner("")
	_, first, _ := s.Scan(strings.NewReader("\t\x1b[1;31mERROR\x1b[0m bad\tthing \xff\r\n"), 1<<20)
	if first != "ERROR bad thing \uFFFD" {
		t.Fatalf("reason %q", first)
	}
}

func TestScanReadError(t *testing.T) {
	s, _ := NewLogScanner("")
	boom := errors.New("docker went away")
	r := io.MultiReader(strings.NewReader("ERROR one\nINFO two\n"), iotest.ErrReader(boom))
	n, first, err := s.Scan(r, 1<<20)
	if !errors.Is(err, boom) || n != 1 || first != "ERROR one" {
		t.Fatalf("got %d %q %v", n, first, err)
	}
	// one byte at a time gives the same answer
	n, first, err = s.Scan(iotest.OneByteReader(strings.NewReader("INFO x\nERROR y\n")), 1<<20)
	if err != nil || n != 1 || first != "ERROR y" {
		t.Fatalf("one byte reader: %d %q %v", n, first, err)
	}
}

func TestScanBadInput(t *testing.T) {
	s, _ := NewLogScanner("")
	for _, cap := range []int64{0, -1} {
		if _, _, err := s.Scan(strings.NewReader("ERROR x\n"), cap); !errors.Is(err, ErrInvalid) {
			t.Errorf("cap %d: got %v", cap, err)
		}
	}
	_, err := NewLogScanner("(unclosed")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "(unclosed") {
		t.Fatalf("bad pattern: %v", err)
	}
}

func TestCustomPattern(t *testing.T) {
	s, err := NewLogScanner(`^WARN\b`)
	if err != nil {
		t.Fatal(err)
	}
	n, first, _ := s.Scan(strings.NewReader("ERROR not by this pattern\nWARN disk 90%\n{\"level\":\"error\"}\n"), 1<<20)
	// JSON levels count whatever the pattern
	if n != 2 || first != "WARN disk 90%" {
		t.Fatalf("got %d %q", n, first)
	}
}

// splitLines is the reference for Scan: the lines of data as Scan judges
// them when no cap is hit.
func splitLines(data []byte) [][]byte {
	var out [][]byte
	for _, l := range bytes.SplitAfter(data, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		out = append(out, l[:min(len(l), MaxLineBytes)])
	}
	return out
}

func FuzzScan(f *testing.F) {
	f.Add([]byte("INFO ok\nERROR bad\n"), uint32(1<<20))
	f.Add([]byte("{\"level\":\"error\"}\n\x1b[31mFATAL\x1b[0m"), uint32(10))
	f.Add([]byte("2026-01-02T03:04:05Z panic: x\r\nTraceback\n"), uint32(3))
	f.Add([]byte("\xff\xfe\n\n\n"), uint32(0))
	f.Add(bytes.Repeat([]byte("é"), 300), uint32(1000))
	f.Add([]byte("E0102 03:04:05.1 1 x.go:1] m\nf, [x] FATAL y\n"), uint32(100))
	f.Add([]byte("ts=1 a=\"b c\" level=CRIT m\n{\"@L\":\"fatal\"}\n"), uint32(100))
	s, err := NewLogScanner("")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, limit uint32) {
		cr := &countingReader{r: bytes.NewReader(data)}
		n, first, err := s.Scan(cr, int64(limit))
		if limit == 0 {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("zero cap: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		if cr.n > int64(limit) {
			t.Fatalf("read %d bytes with cap %d", cr.n, limit)
		}
		if (n == 0) != (first == "") && !(n > 0 && strings.TrimSpace(first) == "") {
			t.Fatalf("%d matches but first %q", n, first)
		}
		if len(first) > MaxReasonBytes || !utf8.ValidString(first) {
			t.Fatalf("reason %q", first)
		}
		if n > bytes.Count(data, []byte("\n"))+1 {
			t.Fatalf("%d matches in %d lines", n, bytes.Count(data, []byte("\n"))+1)
		}
		// without a cap, Scan agrees with judging line by line
		n, _, err = s.Scan(bytes.NewReader(data), int64(len(data))+1)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		for _, l := range splitLines(data) {
			if s.IsErrorLine(l) {
				want++
			}
			// the keyword pre-filter never hides a match of the pattern
			head := bytes.TrimRight(l, "\r\n")
			head = ansiEscape.ReplaceAll(head, nil)
			head = head[:min(len(head), DefaultPatternHead)]
			if s.re.Match(head) && !mayMatchDefault(head) {
				t.Fatalf("pre-filter rejects %q, which the pattern matches", head)
			}
		}
		if n != want {
			t.Fatalf("Scan found %d, line by line %d", n, want)
		}
	})
}

// benchLog is about 1 MiB of a typical mixed log.
func benchLog() []byte {
	var b bytes.Buffer
	lines := []string{
		"2026-01-02T03:04:05.123456789Z INFO request method=GET path=/api/items status=200 dur=1.2ms\n",
		"2026-01-02T03:04:05.223456789Z {\"level\":\"info\",\"msg\":\"cache hit\",\"key\":\"user:42\"}\n",
		"2026-01-02T03:04:05.323456789Z time=2026-01-02T03:04:05Z level=INFO msg=\"job done\" n=3\n",
		"2026-01-02T03:04:05.423456789Z DEBUG error handler ready\n",
	}
	for b.Len() < 1<<20-200 {
		b.WriteString(lines[b.Len()%len(lines)])
	}
	b.WriteString("2026-01-02T03:04:05.523456789Z ERROR boom\n")
	return b.Bytes()
}

func BenchmarkScan(b *testing.B) {
	s, _ := NewLogScanner("")
	data := benchLog()
	lines := bytes.Count(data, []byte("\n"))
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		n, _, err := s.Scan(bytes.NewReader(data), 1<<20)
		if err != nil || n != 1 {
			b.Fatalf("%d %v", n, err)
		}
	}
	perScan := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(perScan*1e3, "ms/MiB")
	b.ReportMetric(float64(lines)/perScan, "lines/s")
}

func BenchmarkScanLongLines(b *testing.B) {
	s, _ := NewLogScanner("")
	data := bytes.Repeat(append(bytes.Repeat([]byte("x"), 100<<10), '\n'), 10)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := s.Scan(bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)*1e3, "ms/MiB")
}
