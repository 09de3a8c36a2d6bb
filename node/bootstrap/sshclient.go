package bootstrap

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSHTarget is where a builder droplet's SSH server listens and who logs in.
type SSHTarget struct {
	// Addr is host:port.
	Addr string
	// User is the login; commands run under sudo when it is not root.
	User string
}

// sshClient is one SSH connection to the builder.
type sshClient struct {
	c    *ssh.Client
	user string
}

// dialSSH connects to target, pinning its host key as pin, retrying until
// ctx ends: a fresh droplet refuses connections until sshd is up, and
// refuses our key until cloud-init has installed it. A changed host key is
// final.
func dialSSH(ctx context.Context, target SSHTarget, signer ssh.Signer, hosts *HostKeys, pin string, cfg Config) (*sshClient, error) {
	conf := &ssh.ClientConfig{
		User:              target.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   hosts.Callback(pin),
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		Timeout:           cfg.SSHDialTimeout,
	}
	var last error
	for attempt := 1; ; attempt++ {
		c, err := dialOnce(ctx, target.Addr, conf, cfg.SSHDialTimeout)
		if err == nil {
			return &sshClient{c: c, user: target.User}, nil
		}
		if errors.Is(err, ErrHostKeyChanged) {
			return nil, err
		}
		if last == nil || ctx.Err() == nil {
			last = err // an attempt cut short by the deadline says less than the one before
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("ssh %s@%s: gave up after %d attempts: %w (last: %v)", target.User, target.Addr, attempt, ctx.Err(), last)
		case <-time.After(cfg.SSHRetryInterval):
		}
	}
}

func dialOnce(ctx context.Context, addr string, conf *ssh.ClientConfig, timeout time.Duration) (*ssh.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// The handshake has no context: a deadline on the connection bounds it,
	// and closing the connection when ctx ends cuts it short.
	dl, _ := ctx.Deadline()
	_ = conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, conf)
	if !stop() || err != nil {
		_ = conn.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(cc, chans, reqs), nil
}

// Close closes the connection.
func (s *sshClient) Close() error { return s.c.Close() }

// sudo prefixes cmd for a non-root login.
func (s *sshClient) sudo(cmd string) string {
	if s.user == "root" {
		return cmd
	}
	return "sudo -n " + cmd
}

// run runs cmd remotely with stdin, sending each line of its output (both
// streams) to line. It returns when the command exits or ctx ends (the
// session is then closed, which ends the command).
func (s *sshClient) run(ctx context.Context, cmd string, stdin io.Reader, line func(string)) error {
	sess, err := s.c.NewSession()
	if err != nil {
		return fmt.Errorf("ssh session: %w", err)
	}
	defer sess.Close()
	pr, pw := io.Pipe()
	sess.Stdout, sess.Stderr = pw, pw
	if stdin != nil {
		sess.Stdin = stdin
	}
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			if line != nil {
				line(sc.Text())
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	if err := sess.Start(cmd); err != nil {
		_ = pw.Close()
		<-lines
		return fmt.Errorf("ssh: start %q: %w", cmd, err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGKILL)
		_ = sess.Close()
		<-done
		err = fmt.Errorf("%w: the command was cut off", ctx.Err())
	}
	_ = pw.Close()
	<-lines
	if err != nil {
		return fmt.Errorf("ssh: %q: %w", cmd, err)
	}
	return nil
}

// output runs cmd and returns its output (both streams), trimmed.
func (s *sshClient) output(ctx context.Context, cmd string) (string, error) {
	var b strings.Builder
	err := s.run(ctx, cmd, nil, func(l string) { b.WriteString(l + "\n") })
	return strings.TrimSpace(b.String()), err
}

// upload writes r to path on the server (relative paths are in the login's
// home) with mode, through a temporary name, then checks its SHA-256.
func (s *sshClient) upload(ctx context.Context, r io.Reader, path string, mode uint32) error {
	h := sha256.New()
	tmp := path + ".part"
	cmd := fmt.Sprintf("mkdir -p %s && cat > %s && chmod %o %s && mv -f %s %s",
		shellQuote(dirOf(path)), shellQuote(tmp), mode, shellQuote(tmp), shellQuote(tmp), shellQuote(path))
	if err := s.run(ctx, cmd, io.TeeReader(r, h), nil); err != nil {
		return fmt.Errorf("upload %s: %w", path, err)
	}
	want := hex.EncodeToString(h.Sum(nil))
	out, err := s.output(ctx, "sha256sum "+shellQuote(path))
	if err != nil {
		return fmt.Errorf("upload %s: checksum: %w", path, err)
	}
	if got, _, _ := strings.Cut(out, " "); got != want {
		return fmt.Errorf("upload %s: the copy has SHA-256 %q, the original %s", path, got, want)
	}
	return nil
}

func dirOf(path string) string {
	if i := strings.LastIndex(path, "/"); i > 0 {
		return path[:i]
	}
	return "."
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
