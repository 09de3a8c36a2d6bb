// Command diskhelper runs beside a chaos agent, in a container that mounts
// the agent's data-dir volume (a small tmpfs) and keeps it mounted while the
// agent restarts. The chaos suite execs it to fill and free that disk.
//
//	diskhelper hold          block until SIGTERM (keeps the volume mounted)
//	diskhelper fill PATH     write PATH until the disk is full (ENOSPC)
//	diskhelper free PATH     remove PATH
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "diskhelper:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: diskhelper hold | fill PATH | free PATH")
	}
	switch args[0] {
	case "hold":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		<-ctx.Done()
		return nil
	case "fill":
		if len(args) != 2 {
			return errors.New("fill needs a path")
		}
		n, err := fill(args[1])
		fmt.Printf("wrote %d bytes\n", n)
		return err
	case "free":
		if len(args) != 2 {
			return errors.New("free needs a path")
		}
		if err := os.Remove(args[1]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// fill appends zeros to path until the file system refuses (ENOSPC), which
// is success; any other error is returned.
func fill(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	var total int64
	for chunk := len(buf); chunk > 0; {
		n, err := f.Write(buf[:chunk])
		total += int64(n)
		if errors.Is(err, syscall.ENOSPC) {
			chunk /= 2 // fill the last partial blocks too
			continue
		}
		if err != nil {
			return total, err
		}
	}
	return total, f.Sync()
}
