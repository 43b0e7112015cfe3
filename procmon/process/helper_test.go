package process

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/proctrack/proctrack/internal/proctest"
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
	case strings.HasPrefix(mode, "exec="):
		// Exec the binary named, with the arguments given, after a line
		// on stdin.
		fmt.Println("ready")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			os.Exit(1)
		}
		err := syscall.Exec(strings.TrimPrefix(mode, "exec="), os.Args[1:], os.Environ())
		fmt.Println("exec:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// startChild starts cmd and, when waitReady is true, waits until it printed
// "ready". Callers of a wrapper (sh, chroot, setpriv) wait for the final
// binary with proctest.WaitComm.
func startChild(t testing.TB, cmd *exec.Cmd, waitReady bool) *proctest.Child {
	t.Helper()
	c := proctest.Start(t, cmd)
	if waitReady {
		c.WaitLine(t, "ready")
	}
	return c
}

// helperCmd returns a command that runs this test binary as a helper.
func helperCmd(mode string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "PROCTRACK_HELPER="+mode)
	return cmd
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
