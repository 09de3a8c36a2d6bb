package logring

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range bytes.Split(bytes.TrimRight(s.b.Bytes(), "\n"), []byte("\n")) {
		if len(l) > 0 {
			out = append(out, string(l))
		}
	}
	return out
}

// recv waits at most timeout for one entry from ch.
func recv(t testing.TB, ch <-chan Entry, timeout time.Duration) (Entry, bool) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case e, ok := <-ch:
		return e, ok
	case <-timer.C:
		t.Fatalf("no entry within %v", timeout)
		return Entry{}, false
	}
}
