package sockfds

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/proctrack/proctrack/internal/proctest"
)

const probeEnv = "PROCTRACK_SOCKFDS_PROBE"

func TestMain(m *testing.M) {
	if os.Getenv(probeEnv) != "" {
		l, err := Open()
		if l != nil {
			_ = l.Close()
		}
		fmt.Printf("unavailable=%v err=%v\n", errors.Is(err, ErrUnavailable), err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func open(t testing.TB) *Lister {
	t.Helper()
	proctest.RequireRoot(t, "loading the socket iterator")
	l, err := Open()
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// procSockets reads pid's socket descriptors from /proc: fd -> inode.
func procSockets(t *testing.T, pid int) map[int32]uint64 {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]uint64{}
	for _, de := range des {
		link, err := os.Readlink(dir + "/" + de.Name())
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		ino, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"), 10, 64)
		fd, _ := strconv.Atoi(de.Name())
		out[int32(fd)] = ino
	}
	return out
}

// TestMatchesProc: the iterator lists exactly the socket descriptors
// /proc shows for this process and for a child holding one.
func TestMatchesProc(t *testing.T) {
	l := open(t)
	var conns []any
	for range 3 {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		defer c.Close()
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "60")
	cmd.ExtraFiles = []*os.File{f}
	child := proctest.Start(t, cmd)
	f.Close()
	defer child.Stop()

	got := map[int32]map[int32]uint64{}
	err = l.Each(func(s SockFD) {
		if got[s.PID] == nil {
			got[s.PID] = map[int32]uint64{}
		}
		if s.TID != s.PID {
			t.Errorf("pid %d listed under thread %d (its threads share its table)", s.PID, s.TID)
		}
		got[s.PID][s.FD] = s.Inode
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{os.Getpid(), child.PID} {
		want := procSockets(t, pid)
		if len(want) == 0 || fmt.Sprint(want) != fmt.Sprint(got[int32(pid)]) {
			t.Errorf("pid %d: iterator %v, /proc %v", pid, got[int32(pid)], want)
		}
	}
	if got[int32(child.PID)][3] == 0 {
		t.Errorf("the child's fd 3 (the listener) is missing: %v", got[int32(child.PID)])
	}
	_ = conns
}

// TestUnavailableWithoutCaps: without CAP_BPF, CAP_PERFMON and
// CAP_SYS_ADMIN, Open's error matches ErrUnavailable.
func TestUnavailableWithoutCaps(t *testing.T) {
	out := proctest.RunWithoutCaps(t, "-bpf,-perfmon,-sys_admin", probeEnv+"=1")
	t.Log(out)
	if !strings.HasPrefix(out, "unavailable=true ") {
		t.Errorf("without privileges: %q", out)
	}
}

// TestCycles: 50 Open/Each/Close (each load takes tens of ms) leak no descriptor or goroutine, and
// Each after Close is an error.
func TestCycles(t *testing.T) {
	proctest.RequireRoot(t, "loading the socket iterator")
	c, err := net.ListenPacket("udp4", "127.0.0.1:0") // at least one socket to list
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	proctest.CheckCycles(t, 50, func(int) {
		l, err := Open()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		if err := l.Each(func(SockFD) { n++ }); err != nil || n == 0 {
			t.Fatalf("Each: %d sockets, %v", n, err)
		}
		_ = l.Close()
		if err := l.Each(func(SockFD) {}); err == nil {
			t.Fatal("Each after Close: nil error")
		}
		_ = l.Close()
	})
}

// TestShared: Listers share one program; closing one leaves the other
// working.
func TestShared(t *testing.T) {
	a, b := open(t), open(t)
	if a.sh != b.sh {
		t.Error("two programs loaded")
	}
	_ = a.Close()
	if err := a.Each(func(SockFD) {}); err == nil {
		t.Error("Each after Close: nil error")
	}
	if err := b.Each(func(SockFD) {}); err != nil {
		t.Errorf("the other Lister: %v", err)
	}
}

// BenchmarkEach: one listing of every socket descriptor on the machine.
func BenchmarkEach(b *testing.B) {
	l := open(b)
	n := 0
	for b.Loop() {
		n = 0
		if err := l.Each(func(SockFD) { n++ }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n), "sockets")
}
