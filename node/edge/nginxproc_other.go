//go:build !unix

package edge

import (
	"errors"
	"syscall"
)

// Without Unix signals an nginx master cannot be driven: NewNginx refuses
// at once, and the agent uses the built-in proxy.

// nginxSupported says whether this system can drive an nginx master.
const nginxSupported = false

func processAlive(int) bool            { return false }
func isNginxMaster(int, string) bool   { return false }
func childrenOf(int) []int             { return nil }
func reap(int)                         {}
func signal(int, syscall.Signal) error { return errors.ErrUnsupported }
func procStat(int) (byte, int, bool)   { return 0, 0, false }
func processTitle(int) string          { return "" }

const (
	sigReload = syscall.SIGHUP
	sigQuit   = syscall.SIGQUIT
	sigTerm   = syscall.SIGTERM
	sigKill   = syscall.SIGKILL
)
