package runtime

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// maxExecOutput bounds what Exec keeps of a command's output: enough for
// a health check's reason, never a flood into memory.
const maxExecOutput = 4 << 10

// ExecResult is how a command run inside a container ended.
type ExecResult struct {
	ExitCode int
	// Output is the first maxExecOutput bytes of stdout and stderr.
	Output string
}

// Exec runs cmd inside a running container (Docker exec, as the
// container's own user) and waits for it to end or ctx to end. It is how a
// Compose healthcheck's CMD or CMD-SHELL test is run.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string) (ExecResult, error) {
	if id == "" || len(cmd) == 0 {
		return ExecResult{}, invalidf("exec: a container id and a command are needed")
	}
	created, err := r.cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return ExecResult{}, containerErr("exec in", id, err)
	}
	att, err := r.cli.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec in container %s: attach: %w", id, err)
	}
	defer att.Close()
	var out limitedBuffer
	done := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(&out, &out, att.Reader)
		done <- err
	}()
	select {
	case <-ctx.Done():
		att.Close()
		<-done
		return ExecResult{}, fmt.Errorf("exec in container %s: %w", id, ctx.Err())
	case err := <-done:
		if err != nil && err != io.EOF {
			return ExecResult{}, fmt.Errorf("exec in container %s: read output: %w", id, err)
		}
	}
	st, err := r.cli.ContainerExecInspect(ctx, created.ID)
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec in container %s: inspect: %w", id, err)
	}
	return ExecResult{ExitCode: st.ExitCode, Output: out.String()}, nil
}

// limitedBuffer keeps the first maxExecOutput bytes written to it and
// discards the rest (reporting them written, so the copy goes on).
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxExecOutput - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
