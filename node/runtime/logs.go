package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// LogOptions selects the part of a container's log to read.
type LogOptions struct {
	// Since skips lines written before it (zero: from the start).
	Since time.Time
	// Tail keeps only the last Tail lines (0: all).
	Tail int
	// Follow keeps streaming new lines until ctx ends or the container stops.
	Follow bool
	// Timestamps prefixes each line with its RFC 3339 time.
	Timestamps bool
	// MaxBytes stops after this many bytes (0: no cap). The cut may fall
	// inside a line.
	MaxBytes int64
}

// errLogCap ends the copy once MaxBytes were written.
var errLogCap = errors.New("log byte cap reached")

// capWriter passes on at most left bytes, then fails with errLogCap.
type capWriter struct {
	w    io.Writer
	left int64
}

func (c *capWriter) Write(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errLogCap
	}
	cut := false
	if int64(len(p)) > c.left {
		p, cut = p[:c.left], true
	}
	n, err := c.w.Write(p)
	c.left -= int64(n)
	if err == nil && cut {
		err = errLogCap
	}
	return n, err
}

// Logs writes a container's stdout and stderr, demultiplexed and
// interleaved as Docker stored them, to w. TTY containers (never created
// by this package) are copied as they come. With Follow, Logs returns nil
// when ctx ends.
func (r *Runtime) Logs(ctx context.Context, id string, opts LogOptions, w io.Writer) error {
	if id == "" {
		return invalidf("logs: empty container id")
	}
	if opts.Tail < 0 || opts.MaxBytes < 0 {
		return invalidf("logs of %s: tail and max bytes must not be negative", id)
	}
	cj, err := r.cli.ContainerInspect(ctx, id)
	if err != nil {
		return containerErr("logs of", id, err)
	}
	lo := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: opts.Follow, Timestamps: opts.Timestamps, Tail: "all"}
	if opts.Tail > 0 {
		lo.Tail = strconv.Itoa(opts.Tail)
	}
	if !opts.Since.IsZero() {
		lo.Since = fmt.Sprintf("%d.%09d", opts.Since.Unix(), opts.Since.Nanosecond())
	}
	rc, err := r.cli.ContainerLogs(ctx, id, lo)
	if err != nil {
		return containerErr("logs of", id, err)
	}
	defer rc.Close()
	if opts.MaxBytes > 0 {
		w = &capWriter{w: w, left: opts.MaxBytes}
	}
	if cj.Config != nil && cj.Config.Tty {
		_, err = io.Copy(w, rc)
	} else {
		_, err = stdcopy.StdCopy(w, w, rc)
	}
	switch {
	case err == nil, errors.Is(err, errLogCap):
		return nil
	case opts.Follow && ctx.Err() != nil:
		return nil
	default:
		return fmt.Errorf("logs of container %s: %w", id, err)
	}
}
