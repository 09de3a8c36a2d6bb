package edge

import (
	"os"
	"syscall"
	"testing"
)

// prSetChildSubreaper is prctl's PR_SET_CHILD_SUBREAPER.
const prSetChildSubreaper = 36

// TestMain makes the test process a child subreaper: the nginx masters the
// tests start daemonize, are re-parented to this process instead of init
// (which may not reap them in a container), and Stop reaps them, so no
// nginx process, not even a zombie, outlives the tests.
func TestMain(m *testing.M) {
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	os.Exit(m.Run())
}
