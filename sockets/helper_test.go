package sockets

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
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

const helperEnv = "SOCKETS_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		helperMain()
		os.Exit(0)
	}
	code := m.Run()
	stopFleet()
	os.Exit(code)
}

// keep holds the helper's Go sockets so they are not collected.
var keep []any

// helperMain is a child process driven by commands on stdin, one reply
// line each on stdout.
func helperMain() {
	in := bufio.NewScanner(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	reply := func(format string, a ...any) {
		fmt.Fprintf(out, format+"\n", a...)
		out.Flush()
	}
	reply("ready %d", os.Getpid())
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "batch": // batch <tcp4 listeners> <udp4> <tcp6> <udp6> <tcp4 pairs> <devnull>
			n := make([]int, 6)
			for i := range n {
				n[i], _ = strconv.Atoi(f[i+1])
			}
			for i := 0; i < n[0]; i++ {
				l, err := net.Listen("tcp4", "127.0.0.1:0")
				must(err)
				keep = append(keep, l)
			}
			for i := 0; i < n[1]; i++ {
				c, err := net.ListenPacket("udp4", "127.0.0.1:0")
				must(err)
				keep = append(keep, c)
			}
			for i := 0; i < n[2]; i++ {
				l, err := net.Listen("tcp6", "[::1]:0")
				must(err)
				keep = append(keep, l)
			}
			for i := 0; i < n[3]; i++ {
				c, err := net.ListenPacket("udp6", "[::1]:0")
				must(err)
				keep = append(keep, c)
			}
			if n[4] > 0 {
				l, err := net.Listen("tcp4", "127.0.0.1:0")
				must(err)
				keep = append(keep, l)
				for i := 0; i < n[4]; i++ {
					c, err := net.Dial("tcp4", l.Addr().String())
					must(err)
					a, err := l.Accept()
					must(err)
					keep = append(keep, c, a)
				}
			}
			for i := 0; i < n[5]; i++ {
				fd, err := os.Open(os.DevNull)
				must(err)
				keep = append(keep, fd)
			}
			reply("ok")
		case "udpfd": // a raw-syscall UDP socket on 127.0.0.1: "fd port"
			fd, port := udpSocket()
			reply("%d %d", fd, port)
		case "replace": // replace <fd>: a new UDP socket on the same fd number: "port"
			old, _ := strconv.Atoi(f[1])
			fd, port := udpSocket()
			must(unix.Dup2(fd, old))
			must(unix.Close(fd))
			reply("%d", port)
		case "udpconn": // udpconn <addrport>: a connected UDP socket: "local"
			c, err := net.Dial("udp", f[1])
			must(err)
			keep = append(keep, c)
			reply("%s", c.LocalAddr())
		case "unshare": // a thread with its own fd table holding a UDP socket: "tid port"
			ch := make(chan string)
			var thread func()
			thread = func() {
				runtime.LockOSThread() // never unlocked: the thread dies with the process
				if unix.Gettid() == unix.Getpid() {
					// The leader's fd table is /proc/<pid>/fd: keep it
					// occupied and use another thread.
					go thread()
					select {}
				}
				must(unix.Unshare(unix.CLONE_FILES))
				fd, port := udpSocket()
				_ = fd
				ch <- fmt.Sprintf("%d %d", unix.Gettid(), port)
				select {}
			}
			go thread()
			reply("%s", <-ch)
		default:
			reply("unknown %q", f[0])
		}
	}
}

func udpSocket() (fd, port int) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	must(err)
	must(unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	sa, err := unix.Getsockname(fd)
	must(err)
	return fd, sa.(*unix.SockaddrInet4).Port
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
}

// helper is a running helper process.
type helper struct {
	t   testing.TB
	cmd *exec.Cmd
	in  *bufio.Writer
	out *bufio.Scanner
	pid int
}

// startHelper starts a helper; extra files become its fds 3, 4, ...
func startHelper(t testing.TB, extra ...*os.File) *helper {
	t.Helper()
	h := spawnHelper(t, extra...)
	t.Cleanup(h.kill)
	return h
}

// spawnHelper starts a helper the caller kills.
func spawnHelper(t testing.TB, extra ...*os.File) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.ExtraFiles = extra
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{t: t, cmd: cmd, in: bufio.NewWriter(stdin), out: bufio.NewScanner(stdout), pid: cmd.Process.Pid}
	if line := h.read(); !strings.HasPrefix(line, "ready ") {
		t.Fatalf("helper said %q", line)
	}
	return h
}

func (h *helper) read() string {
	if !h.out.Scan() {
		h.t.Fatalf("helper %d: no reply: %v", h.pid, h.out.Err())
	}
	return h.out.Text()
}

// do sends a command and returns the reply's fields.
func (h *helper) do(format string, a ...any) []string {
	h.t.Helper()
	fmt.Fprintf(h.in, format+"\n", a...)
	if err := h.in.Flush(); err != nil {
		h.t.Fatal(err)
	}
	return strings.Fields(h.read())
}

var killMu sync.Mutex

func (h *helper) kill() {
	killMu.Lock()
	defer killMu.Unlock()
	if h.cmd.ProcessState == nil {
		_ = h.cmd.Process.Kill()
		_ = h.cmd.Wait()
	}
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// procTruth scans /proc/*/fd and /proc/*/task/*/fd: socket inode -> the
// set of pids (thread group ids) holding it.
func procTruth(t testing.TB) map[uint64]map[int]bool {
	t.Helper()
	truth := make(map[uint64]map[int]bool)
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		fdDirs, _ := filepath.Glob(d + "/task/[0-9]*/fd")
		fdDirs = append(fdDirs, d+"/fd")
		for _, fd := range fdDirs {
			ents, _ := os.ReadDir(fd)
			for _, e := range ents {
				l, err := os.Readlink(fd + "/" + e.Name())
				if err != nil {
					continue
				}
				if ino, ok := parseSocketLink([]byte(l)); ok {
					if truth[ino] == nil {
						truth[ino] = make(map[int]bool)
					}
					truth[ino][pid] = true
				}
			}
		}
	}
	return truth
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("reading other processes' fd tables needs root")
	}
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func waitGone(t testing.TB, pid int) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pid %d still exists", pid)
}
