// Package proctest starts and inspects real child processes for proctrack's
// tests: a child's pid, its stdin and stdout, waiting until it runs a given
// binary, and skips that name what the environment lacks.
package proctest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Child is a running process a test started.
type Child struct {
	Cmd   *exec.Cmd
	Stdin io.WriteCloser
	Out   *bufio.Reader
	PID   int
}

// Start runs cmd with pipes on stdin and stdout and registers Stop as a
// cleanup of t.
func Start(t testing.TB, cmd *exec.Cmd) *Child {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	c := &Child{Cmd: cmd, Stdin: stdin, Out: bufio.NewReader(out), PID: cmd.Process.Pid}
	t.Cleanup(c.Stop)
	return c
}

// WaitLine waits for the child to print want as a line.
func (c *Child) WaitLine(t testing.TB, want string) {
	t.Helper()
	line, err := c.Out.ReadString('\n')
	if err != nil || line != want+"\n" {
		t.Fatalf("child %v printed %q (%v), want %q", c.Cmd.Args, line, err, want)
	}
}

// Stop kills the child and reaps it; it may be called more than once.
func (c *Child) Stop() {
	if c.Cmd.ProcessState != nil {
		return
	}
	_ = c.Stdin.Close()
	_ = c.Cmd.Process.Signal(syscall.SIGKILL)
	_ = c.Cmd.Wait()
}

// WaitComm waits until pid's comm is the base name of path (cut to the
// kernel's 15 bytes): the exec of a wrapper (sh, chroot, setpriv) happened.
func WaitComm(t testing.TB, pid int, path string) {
	t.Helper()
	want := filepath.Base(path)
	if len(want) > 15 {
		want = want[:15]
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if strings.TrimSuffix(string(comm), "\n") == want {
			return
		}
	}
	t.Fatalf("pid %d never ran %s", pid, want)
}

// ForcePID starts the command mk returns so that it gets pid, a pid whose
// process has exited and been reaped, by writing pid-1 to
// /proc/sys/kernel/ns_last_pid just before each fork (root only). Another
// fork on the machine can take the pid first, so it tries up to 50 times;
// it skips t when the pid cannot be had.
func ForcePID(t testing.TB, pid int, mk func() *exec.Cmd) *Child {
	t.Helper()
	RequireRoot(t, "forces a pid through /proc/sys/kernel/ns_last_pid")
	for try := 0; try < 50; try++ {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Skipf("cannot set ns_last_pid: %v", err)
		}
		c := Start(t, mk())
		if c.PID == pid {
			return c
		}
		c.Stop()
	}
	t.Skipf("could not get pid %d back after 50 tries (a busy machine)", pid)
	return nil
}

// BigEnv returns environment variables ("PT_BIG<i>=...") of about size
// bytes in all, each value unique to tag and under the kernel's 128 KiB
// limit per string. A process's arguments and environment together may take
// a quarter of its stack limit (RLIMIT_STACK): 2 MiB under the usual 8 MiB.
func BigEnv(tag string, size int) []string {
	const chunk = 60 << 10
	var env []string
	for i := 0; size > 0; i++ {
		n := min(chunk, size)
		head := "PT_BIG" + strconv.Itoa(i) + "=" + tag + "-" + strconv.Itoa(i) + "-"
		env = append(env, head+strings.Repeat("x", max(n-len(head), 0)))
		size -= n
	}
	return env
}

// RequireRoot skips t unless it runs as root; why says what needs it.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CI runs as root): " + why)
	}
}

// RequireTool skips t when a command is not installed, and returns its path.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (.ci/setup installs it)", name)
	}
	return p
}

// CoreutilsSum returns the digest md5sum, sha1sum or sha256sum prints for
// path.
func CoreutilsSum(t testing.TB, tool, path string) string {
	t.Helper()
	RequireTool(t, tool)
	out, err := exec.Command(tool, path).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", tool, path, err)
	}
	return strings.Fields(string(out))[0]
}

// RunWithoutCaps re-runs the test binary (running no test, so its TestMain
// acts on env) under setpriv with the capabilities in drop (setpriv's
// --bounding-set syntax, e.g. "-bpf,-sys_admin") removed, and returns what
// it printed, trimmed. It skips t without root or setpriv.
func RunWithoutCaps(t testing.TB, drop string, env ...string) string {
	t.Helper()
	RequireRoot(t, "dropping capabilities")
	setpriv := RequireTool(t, "setpriv")
	cmd := exec.Command(setpriv, "--inh-caps=-all", "--bounding-set="+drop, "--", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child without %s: %v %s", drop, err, out)
	}
	return strings.TrimSpace(string(out))
}

// probeEnv makes a test binary whose TestMain calls RunProbe act as the
// proc connector probe instead of running tests.
const probeEnv = "PROCTRACK_PROBE_PROC_CONNECTOR"

// RunProbe acts as the proc connector probe and exits when the process was
// started as one by JoinsProcConnector; otherwise it returns at once. Call it
// first in TestMain.
func RunProbe() {
	if os.Getenv(probeEnv) == "" {
		return
	}
	fmt.Println(joinProcConnector())
	os.Exit(0)
}

// joinProcConnector asks the kernel, with nothing of proctrack's code, to
// let this process join the proc connector's multicast group: a
// NETLINK_CONNECTOR socket and NETLINK_ADD_MEMBERSHIP of CN_IDX_PROC. It
// returns "joined" or "refused: <errno>".
func joinProcConnector() string {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_CONNECTOR)
	if err != nil {
		return "refused: socket: " + err.Error()
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return "refused: bind: " + err.Error()
	}
	const cnIdxProc = 1
	if err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, cnIdxProc); err != nil {
		return "refused: " + err.Error()
	}
	return "joined"
}

// JoinsProcConnector reports whether the kernel lets the test binary, run
// under wrap (a command line such as setpriv's that ends in "--") and with
// attr, join the proc connector's multicast group. It is the kernel's own
// answer, probed independently of the code under test: whether joining
// needs CAP_NET_ADMIN is a detail that differs between machines of the
// same kernel version. The package's TestMain must call RunProbe.
func JoinsProcConnector(t testing.TB, wrap []string, attr *syscall.SysProcAttr) bool {
	t.Helper()
	args := append(append([]string(nil), wrap...), os.Args[0], "-test.run=^$")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), probeEnv+"=1")
	cmd.SysProcAttr = attr
	out, err := cmd.Output()
	line := strings.TrimSpace(string(out))
	if err != nil || line != "joined" && !strings.HasPrefix(line, "refused: ") {
		t.Fatalf("proc connector probe %v: %v %q", wrap, err, line)
	}
	t.Logf("proc connector probe %v: %s", wrap, line)
	return line == "joined"
}

// CheckCycles runs cycle n times (cycle(i), i from 0) and fails t when
// more goroutines run or more file descriptors are open afterwards than
// before. A first cycle runs before the counts are taken, so that what
// starts once per process (a package's lazily opened socket) is not
// counted; goroutines get five seconds to return.
func CheckCycles(t testing.TB, n int, cycle func(i int)) {
	t.Helper()
	cycle(0)
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	for i := 0; i < n; i++ {
		cycle(i)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > goroutines {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after %d cycles, %d before:\n%s", g, n, goroutines, buf[:runtime.Stack(buf, true)])
	}
	if f := openFDs(t); f > fds {
		t.Errorf("%d open file descriptors after %d cycles, %d before", f, n, fds)
	}
	t.Logf("%d cycles: %d goroutines and %d file descriptors before them", n, goroutines, fds)
}

// openFDs counts this process's open file descriptors.
func openFDs(t testing.TB) int {
	t.Helper()
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(des)
}

// SyncBuffer is a bytes.Buffer safe for one writer and one reader at once:
// the output of a program a test runs while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// SparseFile creates a file of size bytes under t's temporary directory
// that holds head and then nothing but a hole, and returns its path: a
// large file that costs no disk and no time to write.
func SparseFile(t testing.TB, head string, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "big.yaml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(head); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return path
}
