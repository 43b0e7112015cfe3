package ebpf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/internal/sinktest"
	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/procmon/process"
)

// helperEnv selects a helper mode of the test binary (see runHelper).
const helperEnv = "PROCTRACK_EBPF_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

// runHelper runs one helper mode and returns the exit status:
//
//	start    start a Source; print "unavailable: <err>", "error: <err>" or
//	         "started <tier>"
//	setuid   setresuid(1000, 1000, 1000)
//	capset   drop CAP_NET_RAW from the effective set
//	prctl    prctl(PR_SET_NO_NEW_PRIVS, 1)
//	ptrace   start `sleep 5`, PTRACE_ATTACH it, wait, PTRACE_DETACH, kill it;
//	         print its pid
//	threads  start 4 more OS threads, print the thread ids, exit 0
//	noop     exit 0
//	setgid   setresgid(1000, 1000, 1000)
//	userns   run the noop helper in a new user namespace (clone)
//	exec     execve(argument 1): a failure prints "error: <err>"
func runHelper(mode string) int {
	switch mode {
	case "start":
		src := New(Config{})
		err := src.Start(context.Background(), nopSink{})
		switch {
		case errors.Is(err, methods.ErrUnavailable):
			fmt.Println("unavailable: " + err.Error())
		case err != nil:
			fmt.Println("error: " + err.Error())
		default:
			fmt.Println("started " + src.Tier())
			_ = src.Close()
		}
		return 0
	case "setuid":
		return check(syscall.Setresuid(1000, 1000, 1000))
	case "capset":
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			return check(err)
		}
		data[0].Effective &^= 1 << unix.CAP_NET_RAW
		return check(unix.Capset(&hdr, &data[0]))
	case "prctl":
		return check(unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
	case "ptrace":
		return ptraceHelper()
	case "threads":
		var wg sync.WaitGroup
		ready := make(chan struct{})
		for range 4 {
			wg.Add(1)
			go func() {
				runtime.LockOSThread() // a thread of its own, kept to the end
				wg.Done()
				<-ready
			}()
		}
		wg.Wait()
		tasks, _ := os.ReadDir("/proc/self/task")
		var ids []string
		for _, t := range tasks {
			ids = append(ids, t.Name())
		}
		fmt.Println(strings.Join(ids, " "))
		return 0
	case "noop":
		return 0
	case "setgid":
		return check(syscall.Setresgid(1000, 1000, 1000))
	case "userns":
		cmd := helper("noop")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
		return check(cmd.Run())
	case "exec":
		args := flagArgs()
		if len(args) == 0 {
			return check(errors.New("exec: no path"))
		}
		env := []string{helperEnv + "=noop"}
		for _, e := range os.Environ() {
			if !strings.HasPrefix(e, helperEnv+"=") {
				env = append(env, e)
			}
		}
		return check(syscall.Exec(args[0], args, env))
	}
	fmt.Println("unknown helper mode " + mode)
	return 2
}

// flagArgs returns the helper's arguments after the test flags.
func flagArgs() []string {
	var out []string
	for _, a := range os.Args[1:] {
		if !strings.HasPrefix(a, "-test.") {
			out = append(out, a)
		}
	}
	return out
}

func check(err error) int {
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	return 0
}

// ptraceHelper attaches to a sleeping child and detaches again.
func ptraceHelper() int {
	runtime.LockOSThread() // ptrace requests must come from the attaching thread
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		return check(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	fmt.Println(pid)
	if err := syscall.PtraceAttach(pid); err != nil {
		return check(err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, syscall.WALL, nil); err != nil {
		return check(err)
	}
	return check(syscall.PtraceDetach(pid))
}

// helper returns a command that runs the test binary in a helper mode.
func helper(mode string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$"}, args...)...)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.Stderr = os.Stderr
	return cmd
}

// recorder is the shared test sink.
type recorder = sinktest.Recorder

func newRecorder() *recorder { return sinktest.NewRecorder() }

// nopSink discards everything.
type nopSink struct{}

func (nopSink) Event(*process.Event) {}
func (nopSink) Lost(uint64, string)  {}

// startSource starts a Source with cfg and a recorder, and closes it at the
// end of the test.
func startSource(t testing.TB, cfg Config) (*Source, *recorder) {
	t.Helper()
	proctest.RequireRoot(t, "loading BPF programs")
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	src := New(cfg)
	rec := newRecorder()
	if err := src.Start(context.Background(), rec); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := src.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return src, rec
}

// startTicks reads /proc/<pid>/stat's start ticks.
func startTicks(t testing.TB, pid int) uint64 {
	t.Helper()
	k, err := process.CurrentKey(pid)
	if err != nil {
		t.Fatalf("pid %d: %v", pid, err)
	}
	return k.StartTicks
}
