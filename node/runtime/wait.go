package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
)

// exitWatch is the exit of an AutoRemove container, watched from before its
// start: once Docker has removed it, nothing else knows its exit code.
type exitWatch struct {
	done     chan struct{} // closed when code/err are set
	code     int
	err      error
	finished time.Time
	cancel   context.CancelFunc
}

// watchExit registers a wait on the container's next exit; the daemon has
// it once ContainerWait returns.
func (r *Runtime) watchExit(id string) error {
	ctx, cancel := context.WithCancel(r.base)
	resC, errC := r.cli.ContainerWait(ctx, id, container.WaitConditionNextExit)
	select {
	case err := <-errC: // the request itself failed
		cancel()
		return err
	default:
	}
	w := &exitWatch{done: make(chan struct{}), cancel: cancel}
	r.mu.Lock()
	r.pruneExitsLocked()
	r.exits[id] = w
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cancel()
		select {
		case res := <-resC:
			w.code = int(res.StatusCode)
			if res.Error != nil && res.Error.Message != "" {
				w.err = fmt.Errorf("wait container %.12s: %s", id, res.Error.Message)
			}
		case err := <-errC:
			w.err = fmt.Errorf("wait container %.12s: %w", id, err)
		}
		r.mu.Lock()
		w.finished = time.Now()
		r.mu.Unlock()
		close(w.done)
	}()
	return nil
}

// forgetExit drops a watch whose container never started.
func (r *Runtime) forgetExit(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w, ok := r.exits[id]; ok {
		w.cancel()
		delete(r.exits, id)
	}
}

// pruneExitsLocked forgets exit codes nobody asked for within ExitResultTTL.
func (r *Runtime) pruneExitsLocked() {
	for id, w := range r.exits {
		if !w.finished.IsZero() && time.Since(w.finished) > r.cfg.ExitResultTTL {
			delete(r.exits, id)
		}
	}
}

// Wait blocks until the container is not running and returns its exit code.
// For an AutoRemove container created by this Runtime the code is known even
// after Docker removed it. Other missing containers give ErrContainerNotFound.
func (r *Runtime) Wait(ctx context.Context, id string) (int, error) {
	if id == "" {
		return 0, invalidf("wait container: empty id")
	}
	r.mu.Lock()
	w := r.exits[id]
	r.mu.Unlock()
	if w != nil {
		select {
		case <-w.done:
		case <-ctx.Done():
			return 0, fmt.Errorf("wait container %.12s: %w", id, ctx.Err())
		}
		r.mu.Lock()
		delete(r.exits, id)
		r.mu.Unlock()
		return w.code, w.err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the client's reader goroutine if we leave early
	resC, errC := r.cli.ContainerWait(wctx, id, container.WaitConditionNotRunning)
	select {
	case res := <-resC:
		if res.Error != nil && res.Error.Message != "" {
			return int(res.StatusCode), fmt.Errorf("wait container %s: %s", id, res.Error.Message)
		}
		return int(res.StatusCode), nil
	case err := <-errC:
		if cerrdefs.IsNotFound(err) {
			return 0, fmt.Errorf("wait container %s: %w (%v)", id, ErrContainerNotFound, err)
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Errorf("wait container %s: %w", id, ctx.Err())
		}
		return 0, fmt.Errorf("wait container %s: %w", id, err)
	}
}
