package exits

import (
	"os"
	"testing"

	"github.com/proctrack/proctrack/internal/vmtest"
)

// TestVMExits runs the counter's kernel tests inside the qemu guests of
// internal/vmtest (it skips elsewhere): the sched_process_exit program and
// its mmap'ed array on Debian's 6.12 and 6.1 kernels, x86_64 and arm64.
//
//	go run ./internal/vmtest/cmd/vmtest -pkg ./internal/exits -run '^TestVM'
func TestVMExits(t *testing.T) {
	if os.Getenv(vmtest.InVMEnv) != "1" {
		t.Skip("runs in the test VM: go run ./internal/vmtest/cmd/vmtest -pkg ./internal/exits -run '^TestVM'")
	}
	t.Run("ExitChangesGen", TestExitChangesGen)
	t.Run("ReusedPIDChangesGen", TestReusedPIDChangesGen)
	t.Run("ConfirmRefuses", TestConfirmRefuses)
	t.Run("Shared", TestShared)
}
