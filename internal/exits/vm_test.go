package exits

import (
	"testing"

	"github.com/proctrack/proctrack/internal/vmtest"
)

// TestVMExits runs the counter's kernel tests inside the qemu guests of
// internal/vmtest (it skips elsewhere): the sched_process_exit program and
// its mmap'ed array on Debian's 6.12 and 6.1 kernels, x86_64 and arm64.
//
//	go run ./internal/vmtest/cmd/vmtest -pkg ./internal/exits -run '^TestVM'
func TestVMExits(t *testing.T) {
	vmtest.RequireVM(t, "./internal/exits")
	t.Run("ExitChangesGen", TestExitChangesGen)
	t.Run("ReusedPIDChangesGen", TestReusedPIDChangesGen)
	t.Run("ConfirmRefuses", TestConfirmRefuses)
	t.Run("Shared", TestShared)
}
