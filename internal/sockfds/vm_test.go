package sockfds

import (
	"testing"

	"github.com/proctrack/proctrack/internal/vmtest"
)

// TestVMSockfds runs the iterator's kernel tests inside the qemu guests of
// internal/vmtest (it skips elsewhere): the iter/task_file program on
// Debian's 6.12 and 6.1 kernels, x86_64 and arm64.
//
//	go run ./internal/vmtest/cmd/vmtest -pkg ./internal/sockfds -run '^TestVM'
func TestVMSockfds(t *testing.T) {
	vmtest.RequireVM(t, "./internal/sockfds")
	t.Run("MatchesProc", TestMatchesProc)
	t.Run("Shared", TestShared)
}
