package process

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the child process the tests inspect: with
// PROCTRACK_HELPER set it does what the variable says, prints "ready" and
// waits for stdin to close.
func TestMain(m *testing.M) {
	if mode := os.Getenv("PROCTRACK_HELPER"); mode != "" {
		helper(mode)
		return
	}
	os.Exit(m.Run())
}

func helper(mode string) {
	switch {
	case strings.HasPrefix(mode, "comm="):
		name := strings.TrimPrefix(mode, "comm=")
		// /proc/self is the thread-group leader, so this names the process
		// whichever OS thread runs this goroutine.
		if err := os.WriteFile("/proc/self/comm", []byte(name), 0); err != nil {
			fmt.Println("set comm:", err)
			os.Exit(1)
		}
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// child is a running process a test inspects; Stop ends it.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	pid   int
}

// startChild starts cmd, waits until it printed "ready" when waitReady is
// true, and registers its cleanup. Callers of a wrapper (sh, chroot,
// setpriv) wait for the final binary with waitExec.
func startChild(t testing.TB, cmd *exec.Cmd, waitReady bool) *child {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	c := &child{cmd: cmd, stdin: stdin, pid: cmd.Process.Pid}
	t.Cleanup(c.Stop)
	if waitReady {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "ready\n" {
			t.Fatalf("child %v: %q %v", cmd.Args, line, err)
		}
	}
	return c
}

// waitExec waits until pid runs a binary whose name is that of path (so the
// exec of a wrapper such as chroot or setpriv has happened).
func waitExec(t testing.TB, pid int, path string) {
	t.Helper()
	want := filepath.Base(path)
	if len(want) > 15 {
		want = want[:15] // TASK_COMM_LEN - 1
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(comm)) == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("pid %d never ran %s", pid, want)
}

// Stop ends the child and reaps it.
func (c *child) Stop() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.stdin.Close()
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
}

// helperCmd returns a command that runs this test binary as a helper.
func helperCmd(mode string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "PROCTRACK_HELPER="+mode)
	return cmd
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CI runs as root): the test changes credentials, chroots or reads other users' /proc")
	}
}

func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (.ci/setup installs it)", name)
	}
	return p
}

// statusField returns the value of a /proc/<pid>/status line, read
// independently of the package's parser.
func statusField(t testing.TB, pid int, key string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in status of %d", key, pid)
	return ""
}
