package cache

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/procmon/process"
)

// start runs cmd and, when want is not "", waits until it runs want.
func start(t testing.TB, cmd *exec.Cmd, want string) *proctest.Child {
	t.Helper()
	c := proctest.Start(t, cmd)
	if want != "" {
		proctest.WaitComm(t, c.PID, want)
	}
	return c
}

func find(t testing.TB, pid int) *process.Process {
	t.Helper()
	p := process.FindProcess(pid, false)
	if p == nil {
		t.Fatalf("pid %d not found", pid)
	}
	return p
}

func requireRoot(t testing.TB) {
	t.Helper()
	proctest.RequireRoot(t, "forces pid reuse through ns_last_pid or reads other users' binaries")
}

// synthetic returns a process that does not exist on this machine (pid above
// pid_max), for tests of the store's bookkeeping alone.
func synthetic(i int, path string, args ...string) *process.Process {
	p := process.NewProcessEmpty(5_000_000+i, filepath.Base(path))
	p.Starttime = int64(1000 + i)
	p.Path, p.RealPath = path, path
	p.Args = append([]string{path}, args...)
	return p
}
