package cache

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proctrack/proctrack/procmon/process"
)

// child is a process a test starts and inspects.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	pid   int
}

// start runs cmd and waits until its comm is that of want (the exec of a
// wrapper happened) when want is not "".
func start(t testing.TB, cmd *exec.Cmd, want string) *child {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, out: bufio.NewReader(out), pid: cmd.Process.Pid}
	t.Cleanup(c.stop)
	if want != "" {
		waitComm(t, c.pid, want)
	}
	return c
}

func waitComm(t testing.TB, pid int, want string) {
	t.Helper()
	want = filepath.Base(want)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if strings.TrimSpace(string(comm)) == want {
			return
		}
	}
	t.Fatalf("pid %d never ran %s", pid, want)
}

func (c *child) stop() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.stdin.Close()
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
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
	if os.Geteuid() != 0 {
		t.Skip("needs root (CI runs as root): forces pid reuse through ns_last_pid or reads other users' binaries")
	}
}

// coreutilsSum runs md5sum, sha1sum or sha256sum on path.
func coreutilsSum(t testing.TB, tool, path string) string {
	t.Helper()
	out, err := exec.Command(tool, path).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", tool, path, err)
	}
	return strings.Fields(string(out))[0]
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
