package vmtest

import (
	"os"
	"testing"
)

// InVM reports whether this process runs in a VM of this package's (the
// environment has InVMEnv set to "1").
func InVM() bool { return os.Getenv(InVMEnv) == "1" }

// RequireVM skips t unless it runs in the VM, saying how to run the VM
// tests of pkg (a package pattern such as ./methods/ebpf).
func RequireVM(t testing.TB, pkg string) {
	t.Helper()
	if !InVM() {
		t.Skip("runs in the test VM: go run ./internal/vmtest/cmd/vmtest -pkg " + pkg + " -run '^TestVM'")
	}
}
