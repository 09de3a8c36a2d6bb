//go:build unix

package edge

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// The nginx master is not our child (it daemonizes), so it is watched
// through its pid and, on Linux, /proc. Without /proc (macOS) the checks
// fall back to kill(pid, 0).

// nginxSupported says whether this system can drive an nginx master.
const nginxSupported = true

// procStat returns a process's state letter and parent pid from
// /proc/PID/stat; ok is false when /proc has no such process or no /proc.
func procStat(pid int) (state byte, ppid int, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, false
	}
	// "pid (comm) S ppid ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], ppid, true
}

// haveProc reports whether this system has a Linux-style /proc.
func haveProc() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}

// processAlive reports whether pid is a running process (a zombie that no
// one reaped counts as dead).
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if state, _, ok := procStat(pid); ok {
		return state != 'Z' && state != 'X'
	}
	return !haveProc()
}

// isNginxMaster reports whether pid is a live nginx master started with
// mainConf. Without /proc it trusts the pid file.
func isNginxMaster(pid int, mainConf string) bool {
	if !processAlive(pid) {
		return false
	}
	s := processTitle(pid)
	if s == "" {
		return !haveProc()
	}
	// nginx rewrites its argv to "nginx: master process <original args>".
	return strings.Contains(s, "nginx: master process") && strings.Contains(s, mainConf)
}

// processTitle returns a process's command line as ps shows it (nginx
// rewrites it to say what the process is doing), or "".
func processTitle(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
}

// childrenOf lists the live child processes of pid (the master's workers).
// Without /proc it returns none.
func childrenOf(pid int) []int {
	// The kernel lists a thread's children in one small file (the master
	// is single-threaded): far cheaper than reading every process's stat,
	// which on a busy machine took tens of milliseconds per call.
	if b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "task", strconv.Itoa(pid), "children")); err == nil {
		var out []int
		for _, f := range strings.Fields(string(b)) {
			c, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			if state, ppid, ok := procStat(c); ok && ppid == pid && state != 'Z' && state != 'X' {
				out = append(out, c)
			}
		}
		return out
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, ppid, ok := procStat(c); ok && ppid == pid && state != 'Z' && state != 'X' {
			out = append(out, c)
		}
	}
	return out
}

// signal sends sig to pid.
func signal(pid int, sig syscall.Signal) error {
	return syscall.Kill(pid, sig)
}

// reap collects pid's exit status if it is our child (a test process that
// made itself a subreaper adopts the daemonized master); otherwise it does
// nothing.
func reap(pid int) {
	var ws syscall.WaitStatus
	_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
}

// Signals used on the master: graceful reload, graceful quit, terminate.
const (
	sigReload = syscall.SIGHUP
	sigQuit   = syscall.SIGQUIT
	sigTerm   = syscall.SIGTERM
	sigKill   = syscall.SIGKILL
)
