package ebpf

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/bpf"
	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/procmon/process"
)

// trueReal is where /bin/true really is (merged /usr: /usr/bin/true).
func trueReal(t testing.TB) string {
	t.Helper()
	p, err := filepath.EvalSymlinks("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExecStorm runs 5000 fork+exec+wait of /bin/true from a shell loop and
// checks that every one is reported: fork, exec (path, exact arguments,
// identity) and exit, with one identity throughout.
func TestExecStorm(t *testing.T) { testExecStorm(t, 5000) }

func testExecStorm(t *testing.T, n int) {
	src, rec := startSource(t, Config{})
	truePath := trueReal(t)

	script := `i=0; while [ $i -lt ` + strconv.Itoa(n) + ` ]; do /bin/true tag-$i; i=$((i+1)); done`
	cmd := exec.Command("sh", "-c", script)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	shell := cmd.Process.Pid
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start)
	if rec.WaitFor(process.EventExit, shell, nil, 30*time.Second) == nil {
		t.Fatalf("no exit event of the shell %d", shell)
	}

	type seen struct {
		fork, exec, exit *process.Event
	}
	byPID := map[int]*seen{}
	tags := map[string]int{} // tag -> pid
	rec.WaitUntil(30*time.Second, func(evs []*process.Event) bool {
		clear(byPID)
		clear(tags)
		for _, ev := range evs {
			switch ev.Kind {
			case process.EventFork:
				if ev.PPID == shell {
					s := byPID[ev.PID]
					if s == nil {
						s = &seen{}
						byPID[ev.PID] = s
					}
					s.fork = ev
				}
			case process.EventExec:
				if ev.PPID == shell && len(ev.Process.Args) == 2 && strings.HasPrefix(ev.Process.Args[1], "tag-") {
					tags[ev.Process.Args[1]] = ev.PID
					if s := byPID[ev.PID]; s != nil {
						s.exec = ev
					}
				}
			case process.EventExit:
				if s := byPID[ev.PID]; s != nil {
					s.exit = ev
				}
			}
		}
		for _, s := range byPID {
			if s.exit == nil {
				return false
			}
		}
		return len(tags) == n
	})

	missing := 0
	for i := range n {
		pid, ok := tags["tag-"+strconv.Itoa(i)]
		if !ok {
			if missing++; missing <= 5 {
				t.Errorf("no exec event of tag-%d", i)
			}
			continue
		}
		s := byPID[pid]
		if s == nil || s.fork == nil || s.exit == nil {
			t.Errorf("tag-%d (pid %d): fork or exit event missing", i, pid)
			continue
		}
		p := s.exec.Process
		if p.Path != truePath || !slices.Equal(p.Args, []string{"/bin/true", "tag-" + strconv.Itoa(i)}) {
			t.Errorf("tag-%d: path %q args %q", i, p.Path, p.Args)
		}
		if p.ID != pid || p.PPID != shell || p.Comm != "true" || p.Incomplete || p.Starttime == 0 {
			t.Errorf("tag-%d: process %+v", i, p)
		}
		if k := p.Key(); k != s.fork.Process.Key() || k != s.exit.Process.Key() {
			t.Errorf("tag-%d: keys fork %v exec %v exit %v", i, s.fork.Process.Key(), k, s.exit.Process.Key())
		}
		if s.exit.ExitCode != 0 {
			t.Errorf("tag-%d: exit code %d", i, s.exit.ExitCode)
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d execs not reported", missing, n)
	}
	st, c := src.Stats(), src.Counters()
	t.Logf("%d execs in %v (%.0f/s); source: %+v; counters: %+v", n, wall.Round(time.Millisecond),
		float64(n)/wall.Seconds(), st, c)
	if st.Lost != 0 {
		t.Errorf("lost %d records", st.Lost)
	}
}

// TestIdentityMatchesProc checks the start ticks, Key and StartedAt of a
// long-lived process against /proc.
func TestIdentityMatchesProc(t *testing.T) {
	_, rec := startSource(t, Config{})
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	ev := rec.WaitFor(process.EventExec, pid, nil, 10*time.Second)
	if ev == nil {
		t.Fatal("no exec event")
	}
	fork := rec.WaitFor(process.EventFork, pid, nil, 10*time.Second)
	if fork == nil {
		t.Fatal("no fork event")
	}
	want := process.NewProcess(pid, "")
	if ev.Process.Starttime != want.Starttime || ev.Process.Key() != want.Key() || fork.Process.Key() != want.Key() {
		t.Errorf("start ticks %d (fork %d), /proc says %d", ev.Process.Starttime, fork.Process.Starttime, want.Starttime)
	}
	if !ev.Process.StartedAt.Equal(want.StartedAt) {
		t.Errorf("StartedAt %v, /proc gives %v", ev.Process.StartedAt, want.StartedAt)
	}
	if ev.Process.PPID != os.Getpid() || ev.PPID != os.Getpid() || fork.PPID != os.Getpid() {
		t.Errorf("ppid %d/%d/%d, want %d", ev.Process.PPID, ev.PPID, fork.PPID, os.Getpid())
	}
	if d := time.Since(ev.Time); d < 0 || d > 10*time.Second {
		t.Errorf("event time %v is %v from now", ev.Time, d)
	}
	full := process.ReadProcess(pid)
	if full == nil {
		t.Fatal("ReadProcess failed")
	}
	p := ev.Process
	if p.Path != full.Path || !slices.Equal(p.Args, full.Args) || p.CWD != full.CWD || p.Comm != full.Comm {
		t.Errorf("image %q %q %q %q, /proc: %q %q %q %q", p.Path, p.Args, p.CWD, p.Comm, full.Path, full.Args, full.CWD, full.Comm)
	}
	if p.NS != full.NS {
		t.Errorf("namespaces %+v, /proc: %+v", p.NS, full.NS)
	}
	if !sameCreds(p.Creds, full.Creds) {
		t.Errorf("creds\n got %+v\nwant %+v", p.Creds, full.Creds)
	}
	if p.ExeDev != full.ExeDev || p.ExeInode != full.ExeInode {
		t.Errorf("exe dev/inode %d/%d, stat: %d/%d", p.ExeDev, p.ExeInode, full.ExeDev, full.ExeInode)
	}
	if full.Cgroup != "" && p.Cgroup != "" && p.Cgroup != full.Cgroup {
		t.Errorf("cgroup %q, /proc: %q", p.Cgroup, full.Cgroup)
	}
}

// TestSetprivCreds checks the credentials of a process started with other
// ids against /proc/<pid>/status.
func TestSetprivCreds(t *testing.T) {
	setpriv := proctest.RequireTool(t, "setpriv")
	_, rec := startSource(t, Config{})
	cmd := exec.Command(setpriv, "--reuid=1000", "--regid=1000", "--groups=1000,1001", "--inh-caps=-all", "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	ev := rec.WaitFor(process.EventExec, pid, func(ev *process.Event) bool { return ev.Process.Comm == "sleep" }, 10*time.Second)
	if ev == nil {
		t.Fatal("no exec event of sleep")
	}
	got := ev.Process.Creds
	if got.UID != 1000 || got.EUID != 1000 || got.SUID != 1000 || got.FSUID != 1000 || got.GID != 1000 ||
		got.EGID != 1000 || !slices.Equal(got.Groups, []uint32{1000, 1001}) || ev.Process.UID != 1000 {
		t.Errorf("creds %+v", got)
	}
	full := process.ReadProcess(pid)
	if full == nil {
		t.Fatal("ReadProcess failed")
	}
	if want := full.Creds; !sameCreds(got, want) {
		t.Errorf("creds\n got %+v\nwant %+v", got, want)
	}
}

// sameCreds compares credentials field by field.
func sameCreds(got, want process.Credentials) bool {
	return got.UID == want.UID && got.EUID == want.EUID && got.SUID == want.SUID && got.FSUID == want.FSUID &&
		got.GID == want.GID && got.EGID == want.EGID && got.SGID == want.SGID && got.FSGID == want.FSGID &&
		slices.Equal(got.Groups, want.Groups) && got.CapInheritable == want.CapInheritable &&
		got.CapPermitted == want.CapPermitted && got.CapEffective == want.CapEffective &&
		got.CapBounding == want.CapBounding && got.CapAmbient == want.CapAmbient &&
		got.NoNewPrivs == want.NoNewPrivs && got.Seccomp == want.Seccomp && got.UserNS == want.UserNS
}

// TestFailedExec checks that an execve that fails makes no exec event.
func TestFailedExec(t *testing.T) {
	_, rec := startSource(t, Config{})
	dir := t.TempDir()
	file := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(file, []byte("#!/bin/sh\nexit 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// dash execs the last command of -c without a fork: end with a builtin.
	cmd := exec.Command("sh", "-c", file+"; /bin/true after-failed-exec; exit 0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sh: %v %s", err, out)
	}
	shell := cmd.Process.Pid
	// The exec after the failed one marks the point the events are in.
	if !rec.WaitUntil(10*time.Second, func(evs []*process.Event) bool {
		for _, ev := range evs {
			if ev.Kind == process.EventExec && ev.PPID == shell && slices.Contains(ev.Process.Args, "after-failed-exec") {
				return true
			}
		}
		return false
	}) {
		t.Fatal("no exec event of the marker")
	}
	forks := 0
	for _, ev := range rec.All(process.EventFork, 0) {
		if ev.PPID == shell {
			forks++
		}
	}
	for _, ev := range rec.All(process.EventExec, 0) {
		if ev.PPID == shell && !slices.Contains(ev.Process.Args, "after-failed-exec") || strings.HasPrefix(ev.Process.Path, dir) {
			t.Errorf("exec event for a failed execve: %+v", ev.Process)
		}
	}
	if forks != 2 {
		t.Errorf("%d forks of the shell, want 2 (the failed exec's child and the marker's)", forks)
	}
}

// TestArgsTruncated checks an argument list over the kernel's 4 KiB copy:
// cut and flagged Incomplete without /proc completion, whole with it.
func TestArgsTruncated(t *testing.T) {
	long := strings.Repeat("x", 1500)
	// Not just "sleep 5": a shell may exec its last command, and the
	// completion must find the shell's arguments in /proc.
	args := []string{"-c", "sleep 5; exit 0", "sh", long + "1", long + "2", long + "3", "last"}
	want := append([]string{"sh"}, args...)

	t.Run("cut", func(t *testing.T) {
		src, rec := startSource(t, Config{NoProcCompletion: true})
		cmd := exec.Command("sh", args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		ev := rec.WaitFor(process.EventExec, cmd.Process.Pid, nil, 10*time.Second)
		if ev == nil {
			t.Fatal("no exec event")
		}
		p := ev.Process
		joined := strings.Join(p.Args, "\x00")
		if !p.Incomplete || len(joined) != 4096 || !strings.HasPrefix(strings.Join(want, "\x00"), joined) {
			t.Errorf("incomplete %v, %d bytes of args %.60q...", p.Incomplete, len(joined), joined)
		}
		if p.Path == "" || p.Starttime == 0 {
			t.Errorf("the rest was lost: %+v", p)
		}
		if c := src.Counters(); c.ArgsCut == 0 || c.Incomplete == 0 {
			t.Errorf("counters %+v", c)
		}
	})
	t.Run("completed", func(t *testing.T) {
		src, rec := startSource(t, Config{})
		cmd := exec.Command("sh", args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		ev := rec.WaitFor(process.EventExec, cmd.Process.Pid, nil, 10*time.Second)
		if ev == nil {
			t.Fatal("no exec event")
		}
		if p := ev.Process; p.Incomplete || !slices.Equal(p.Args, want) {
			t.Errorf("incomplete %v, %d args", p.Incomplete, len(p.Args))
		}
		if c := src.Counters(); c.ArgsCut == 0 || c.Completed == 0 {
			t.Errorf("counters %+v", c)
		}
	})
}

// TestDeepPath checks a path deeper than the kernel walk's 64 components:
// completed from /proc, or cut and Incomplete without it.
func TestDeepPath(t *testing.T) {
	dir := t.TempDir()
	deep := dir
	for range 70 {
		deep = filepath.Join(deep, "d")
	}
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(deep, "sleep")
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, complete := range []bool{true, false} {
		t.Run("complete="+strconv.FormatBool(complete), func(t *testing.T) {
			src, rec := startSource(t, Config{NoProcCompletion: !complete})
			cmd := exec.Command(bin, "5")
			cmd.Dir = deep
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			ev := rec.WaitFor(process.EventExec, cmd.Process.Pid, nil, 10*time.Second)
			if ev == nil {
				t.Fatal("no exec event")
			}
			p := ev.Process
			if complete && (p.Path != bin || p.Incomplete || p.CWD != deep) {
				t.Errorf("path %q cwd %q incomplete %v", p.Path, p.CWD, p.Incomplete)
			}
			if !complete && (p.Path != "" || !p.Incomplete) {
				t.Errorf("path %q incomplete %v", p.Path, p.Incomplete)
			}
			if src.Counters().PathCut == 0 {
				t.Errorf("counters %+v", src.Counters())
			}
		})
	}
}

// TestExitCodeAndThreads checks the exit status, and that a multi-threaded
// process makes one fork and one exit event and none for its threads.
func TestExitCodeAndThreads(t *testing.T) {
	_, rec := startSource(t, Config{})
	cmd := exec.Command("sh", "-c", "exit 3")
	_ = cmd.Run()
	ev := rec.WaitFor(process.EventExit, cmd.Process.Pid, nil, 10*time.Second)
	if ev == nil || ev.ExitCode != 3<<8 || ev.Process.Starttime == 0 {
		t.Errorf("exit event %+v", ev)
	}

	h := helper("threads")
	out, err := h.Output()
	if err != nil {
		t.Fatal(err)
	}
	pid := h.Process.Pid
	tids := strings.Fields(string(out))
	if len(tids) < 5 {
		t.Fatalf("threads: %q", out)
	}
	if rec.WaitFor(process.EventExit, pid, nil, 10*time.Second) == nil {
		t.Fatal("no exit event")
	}
	time.Sleep(100 * time.Millisecond) // a second exit would be late by less
	if n := len(rec.All(process.EventExit, pid)); n != 1 {
		t.Errorf("%d exit events for one process", n)
	}
	for _, tid := range tids {
		id, _ := strconv.Atoi(tid)
		if id == pid {
			continue
		}
		if evs := append(rec.All(process.EventFork, id), rec.All(process.EventExit, id)...); len(evs) != 0 {
			t.Errorf("thread %d reported as a process: %v", id, evs[0].Kind)
		}
	}
	if n := len(rec.All(process.EventFork, pid)); n != 1 {
		t.Errorf("%d fork events for one process", n)
	}
}

// TestExitOncePerThreadGroup runs many multi-threaded processes and checks
// that each makes exactly one exit event: where sched_process_exit does not
// pass group_dead, every thread of an exit_group that reaches the
// tracepoint after signal->live dropped to zero sees zero.
func TestExitOncePerThreadGroup(t *testing.T) {
	_, rec := startSource(t, Config{})
	var pids []int
	for range 50 {
		h := helper("threads")
		if _, err := h.Output(); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, h.Process.Pid)
	}
	for _, pid := range pids {
		if rec.WaitFor(process.EventExit, pid, nil, 10*time.Second) == nil {
			t.Fatalf("no exit event of %d", pid)
		}
	}
	time.Sleep(100 * time.Millisecond) // a second exit would be late by less
	for _, pid := range pids {
		if n := len(rec.All(process.EventExit, pid)); n != 1 {
			t.Errorf("pid %d: %d exit events", pid, n)
		}
	}
}

// TestKernelThread checks that a kernel thread's fork is reported as one.
func TestKernelThread(t *testing.T) {
	_, rec := startSource(t, Config{})
	// Writing to drop_caches does not fork kthreads; a kworker appears by
	// itself now and then. Wait a little for any fork of kthreadd (pid 2).
	ev := func() *process.Event {
		var found *process.Event
		rec.WaitUntil(2*time.Second, func(evs []*process.Event) bool {
			for _, ev := range evs {
				if ev.Kind == process.EventFork && ev.PPID == 2 {
					found = ev
					return true
				}
			}
			return false
		})
		return found
	}()
	if ev == nil {
		t.Skip("no kernel thread was created meanwhile")
	}
	if p := ev.Process; !p.KernelThread || p.Path != process.KernelConnection || p.Args != nil {
		t.Errorf("kernel thread %+v", p)
	}
}

// TestOtherMountNamespace checks RealPath for a process in another mount
// namespace: its Path reached through /proc/<pid>/root.
func TestOtherMountNamespace(t *testing.T) {
	unshare := proctest.RequireTool(t, "unshare")
	_, rec := startSource(t, Config{})
	cmd := exec.Command(unshare, "--mount", "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	ev := rec.WaitFor(process.EventExec, pid, func(ev *process.Event) bool { return ev.Process.Comm == "sleep" }, 10*time.Second)
	if ev == nil {
		t.Fatal("no exec event of sleep")
	}
	p := ev.Process
	if want := "/proc/" + strconv.Itoa(pid) + "/root" + p.Path; p.RealPath != want {
		t.Errorf("path %q real path %q, want %q", p.Path, p.RealPath, want)
	}
	if _, err := os.Stat(p.RealPath); err != nil {
		t.Error(err)
	}
}

// TestBatchDelay checks that events still arrive when the kernel does not
// wake the reader for each record.
func TestBatchDelay(t *testing.T) {
	_, rec := startSource(t, Config{BatchDelay: 20 * time.Millisecond})
	cmd := exec.Command("/bin/true", "batched")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if rec.WaitFor(process.EventExit, cmd.Process.Pid, nil, 5*time.Second) == nil {
		t.Fatal("no exit event")
	}
	if ev := rec.WaitFor(process.EventExec, cmd.Process.Pid, nil, 0); ev == nil || ev.Process.Args[1] != "batched" {
		t.Errorf("exec event %+v", ev)
	}
	t.Logf("exit event %v after the process ended", time.Since(start).Round(time.Millisecond))
}

// TestWakeupGap: within WakeupGap of the last wakeup the kernel does not
// wake the reader (the BPF global quiet_until_ns, set by the first record
// to WakeupGap later, is not written again; the reader's own writes, see
// TestReaderSnoozes, are turned off here), and the records that did not
// wake it are delivered all the same by the reader's own looks at the ring
// buffer. WakeupGap < 0 never takes the gap's path.
func TestWakeupGap(t *testing.T) {
	readerSnooze = func(*ebpf.Variable, time.Duration) {}
	t.Cleanup(func() { readerSnooze = snooze })
	for _, tc := range []struct {
		name    string
		gap     time.Duration
		skipped bool // wakeups skipped after the first
	}{
		{"hour", time.Hour, true},
		{"every-record", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, rec := startSource(t, Config{WakeupGap: tc.gap})
			last := src.obj.coll.Variables[bpf.ProcmonVarQuietUntilNs]
			if last == nil {
				t.Fatal("no quiet_until_ns variable")
			}
			read := func() uint64 {
				var v uint64
				if err := last.Get(&v); err != nil {
					t.Fatal(err)
				}
				return v
			}
			run := func(arg string) {
				cmd := exec.Command("/bin/true", arg)
				if err := cmd.Run(); err != nil {
					t.Fatal(err)
				}
				if rec.WaitFor(process.EventExit, cmd.Process.Pid, nil, 5*time.Second) == nil {
					t.Fatalf("no exit event for %s", arg)
				}
				if ev := rec.WaitFor(process.EventExec, cmd.Process.Pid, nil, 0); ev == nil || ev.Process.Args[1] != arg {
					t.Fatalf("exec event of %s: %+v", arg, ev)
				}
			}
			run("first")
			first := read()
			for i := range 3 {
				run("burst-" + strconv.Itoa(i))
			}
			switch now := read(); {
			case tc.skipped && (first == 0 || now != first):
				t.Errorf("quiet until %d after the first record, %d after the burst: want the same, non-zero", first, now)
			case !tc.skipped && (first != 0 || now != 0):
				t.Errorf("quiet until %d, %d: the gap's path was taken with WakeupGap %v", first, now, tc.gap)
			}
		})
	}
}

// stampSink is a recorder that notes when (CLOCK_MONOTONIC) it last
// received an event.
type stampSink struct {
	*recorder
	last atomic.Int64
}

func (s *stampSink) Event(ev *process.Event) {
	s.last.Store(monoNow())
	s.recorder.Event(ev)
}

func monoNow() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// TestReaderSnoozes: once the reader has read the ring buffer empty after
// records, it sets quiet_until_ns to the end of the sleep it starts, so
// that records submitted meanwhile do not wake it (it looks again then).
// With a gap of an hour the kernel writes the variable only for the first
// record, an hour ahead; every later value is the reader's: at least the
// time the last event reached the sink, and at most a poll interval ahead
// of now. Without it, a record after the gap since the kernel's last
// wakeup woke the reader even while it polled: two wakeups
// (inter-processor interrupts in the process) per short-lived process.
func TestReaderSnoozes(t *testing.T) {
	proctest.RequireRoot(t, "loading BPF programs")
	sink := &stampSink{recorder: newRecorder()}
	src := New(Config{WakeupGap: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err := src.Start(t.Context(), sink); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	quiet := src.obj.coll.Variables[bpf.ProcmonVarQuietUntilNs]
	if quiet == nil || quiet.ReadOnly() {
		t.Skip("quiet_until_ns is not writable from userspace here (needs BPF_F_MMAPABLE, Linux 5.5)")
	}
	cmd := exec.Command("/bin/true", "snooze")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if sink.WaitFor(process.EventExit, cmd.Process.Pid, nil, 5*time.Second) == nil {
		t.Fatal("no exit event")
	}
	var w uint64
	deadline := time.Now().Add(2 * time.Second)
	for {
		l := sink.last.Load()
		if err := quiet.Get(&w); err != nil {
			t.Fatal(err)
		}
		if int64(w) >= l && int64(w) <= monoNow()+pollInterval.Nanoseconds() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("quiet_until_ns %d: before the last delivery at %d, or more than %v after now (%d): the reader does not snooze", w, l, pollInterval, monoNow())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestQuietUntilHoldsWakeups: the kernel does not wake the reader for a
// record submitted before quiet_until_ns, however far ahead the reader set
// it (so the reader may sleep longer than WakeupGap through a burst), and
// it does once that time has passed, setting it WakeupGap ahead. The
// programs once compared the time since the last wakeup with the gap,
// which a time set ahead made a huge unsigned difference: they woke the
// reader.
func TestQuietUntilHoldsWakeups(t *testing.T) {
	readerSnooze = func(*ebpf.Variable, time.Duration) {}
	t.Cleanup(func() { readerSnooze = snooze })
	const gap = 50 * time.Millisecond
	src, rec := startSource(t, Config{WakeupGap: gap})
	quiet := src.obj.coll.Variables[bpf.ProcmonVarQuietUntilNs]
	if quiet == nil || quiet.ReadOnly() {
		t.Skip("quiet_until_ns is not writable from userspace here (needs BPF_F_MMAPABLE, Linux 5.5)")
	}
	get := func() uint64 {
		var v uint64
		if err := quiet.Get(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	run := func(arg string) {
		cmd := exec.Command("/bin/true", arg)
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		if rec.WaitFor(process.EventExit, cmd.Process.Pid, nil, 5*time.Second) == nil {
			t.Fatalf("no exit event for %s", arg)
		}
	}
	snooze(quiet, time.Hour)
	held := get()
	run("held")
	if now := get(); now != held {
		t.Errorf("quiet_until_ns %d, set to %d an hour ahead before the exec: the kernel woke the reader", now, held)
	}
	before := monoNow()
	if err := quiet.Set(uint64(0)); err != nil {
		t.Fatal(err)
	}
	run("woken")
	if now := get(); int64(now) < before+gap.Nanoseconds() || int64(now) > monoNow()+gap.Nanoseconds() {
		t.Errorf("quiet_until_ns %d after an exec with the quiet time over: want a wakeup's %v ahead of a time between %d and now %d", now, gap, before, monoNow())
	}
}

// TestReaderSleepGrows: through a burst of execs the reader's sleeps
// between looks at the ring buffer grow from WakeupGap, doubling while
// looks find records (the sleeps it snoozes the kernel for): by default up
// to burstGaps gaps until the burst has lasted longBurstAfter gaps, then up
// to longBurstGaps gaps while records come at stormRate or more (a shell
// loop of /bin/true: over 1,000 a second here), never past burstGaps gaps
// for a slower trickle (one exec every 2 ms or so, a burst that lasts
// over longBurstAfter gaps: a lone exec among such a background came up
// to 128 ms late); with Config.BurstSleep up to it
// throughout. Each
// sleep is one gap (the first after a wakeup) or twice the one before, at
// most the cap of that moment, or half the one before (never under a gap)
// after a look that read more than a quarter of the ring buffer: with a
// 16 KiB ring buffer the sleeps never reach the long cap. With a sleep of
// one gap throughout, a storm cost the reader 1,000 looks a second; with 16
// gaps throughout, about 60 looks per 1,000 execs, each a few hundred µs of
// the monitor's CPU.
func TestReaderSleepGrows(t *testing.T) {
	const gap = time.Millisecond
	for _, tc := range []struct {
		name    string
		cfg     Config
		pause   time.Duration // between execs (0: a shell loop, as fast as it goes)
		caps    burstCaps
		longest time.Duration // the longest sleep (0: under caps.long, and some halved)
	}{
		{"default", Config{WakeupGap: gap}, 0, burstCaps{burstGaps * gap, longBurstGaps * gap, longBurstAfter * gap}, longBurstGaps * gap},
		{"trickle", Config{WakeupGap: gap}, 2 * time.Millisecond, burstCaps{burstGaps * gap, burstGaps * gap, 0}, burstGaps * gap},
		{"BurstSleep", Config{WakeupGap: gap, BurstSleep: 4 * gap}, 0, burstCaps{4 * gap, 4 * gap, 0}, 4 * gap},
		{"crowded", Config{WakeupGap: gap, RingBufferSize: 16 << 10}, 0, burstCaps{burstGaps * gap, longBurstGaps * gap, longBurstAfter * gap}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type sleep struct {
				at time.Time
				d  time.Duration
			}
			var (
				mu     sync.Mutex
				sleeps []sleep
			)
			readerSnooze = func(v *ebpf.Variable, d time.Duration) {
				mu.Lock()
				sleeps = append(sleeps, sleep{time.Now(), d})
				mu.Unlock()
				snooze(v, d)
			}
			t.Cleanup(func() { readerSnooze = snooze })
			src, rec := startSource(t, tc.cfg)
			// A burst long enough to reach the long cap: 64 gaps at 16,
			// then 32, 64 and 128.
			var last int
			if tc.pause == 0 {
				cmd := exec.Command("/bin/sh", "-c", "while :; do /bin/true; done")
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(600 * time.Millisecond)
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				last = cmd.Process.Pid
			}
			for begin := time.Now(); tc.pause > 0 && time.Since(begin) < 600*time.Millisecond; time.Sleep(tc.pause) {
				cmd := exec.Command("/bin/true")
				if err := cmd.Run(); err != nil {
					t.Fatal(err)
				}
				last = cmd.Process.Pid
			}
			if tc.longest == 0 {
				time.Sleep(300 * time.Millisecond) // records are lost: wait, not for the last
			} else if rec.WaitFor(process.EventExit, last, nil, 5*time.Second) == nil {
				t.Fatal("no exit event for the burst's last process")
			}
			src.Close() // no more sleeps
			mu.Lock()
			defer mu.Unlock()
			if len(sleeps) == 0 {
				t.Fatal("the reader never slept between looks")
			}
			var longest, oldest time.Duration // the longest sleep, the oldest burst
			halved := 0
			var begin time.Time // the burst's first sleep
			for i, s := range sleeps {
				longest = max(longest, s.d)
				if s.d == gap {
					begin = s.at // a new burst (or its first doubling)
				}
				// The reader took the burst's age a moment before this
				// (a gap of slack for the difference).
				age := s.at.Sub(begin)
				oldest = max(oldest, age)
				if age+gap < tc.caps.after && s.d > tc.caps.short {
					t.Errorf("sleep %d: %v in a burst %v old, want at most %v before %v", i, s.d, age, tc.caps.short, tc.caps.after)
				}
				if s.d == gap || i == 0 {
					continue
				}
				prev := sleeps[i-1].d
				if s.d == prev/2 {
					halved++
					continue
				}
				if s.d != min(2*prev, tc.caps.short) && s.d != min(2*prev, tc.caps.long) {
					t.Fatalf("sleep %d: %v after %v: want %v, twice the last, at most %v (%v once the burst is %v old), or half the last", i, s.d, prev, gap, tc.caps.short, tc.caps.long, tc.caps.after)
				}
			}
			t.Logf("%d sleeps, longest %v, %d halved, oldest burst %v", len(sleeps), longest, halved, oldest)
			switch {
			case tc.pause > 0 && oldest < longBurstAfter*gap:
				t.Errorf("the trickle's bursts lasted at most %v: want one over %v (looks that kept finding records)", oldest, longBurstAfter*gap)
			case tc.pause > 0 && longest > tc.longest:
				t.Errorf("longest sleep %v through a trickle of execs, want at most %v", longest, tc.longest)
			case tc.pause > 0:
				// Checked above: the trickle's sleeps are all short.
			case tc.longest == 0 && (halved == 0 || longest >= tc.caps.long):
				t.Errorf("16 KiB ring buffer: %d sleeps halved, longest %v: want some halved, none reaching %v", halved, longest, tc.caps.long)
			case tc.longest != 0 && halved > 0:
				t.Errorf("%d sleeps halved, with looks that read little of the ring buffer", halved)
			case tc.longest != 0 && longest != tc.longest:
				t.Errorf("longest sleep %v through a 600 ms burst of execs, want %v", longest, tc.longest)
			}
		})
	}
}

// TestLookAgain: the reader's sleep before its next look at the ring
// buffer: one gap after a wakeup, doubled by each look that finds records up
// to the cap (burstCaps.at: burstGaps gaps, longBurstGaps once the burst
// has lasted longBurstAfter; never over the poll interval), none (wait for
// a wakeup) once a look finds nothing, and none when the kernel wakes the
// reader for every record (gap <= 0).
func TestLookAgain(t *testing.T) {
	const gap = time.Millisecond
	var got []time.Duration
	var cfg Config
	caps := cfg.burstSleep(gap)
	var age time.Duration // the burst's age at each look
	for sleep := time.Duration(0); len(got) < 14; {
		sleep = lookAgain(sleep, true, gap, caps.at(age))
		got = append(got, sleep)
		age += sleep
	}
	// 1, 2, 4, ... gaps, then burstGaps gaps (16) from the fifth look on,
	// until the burst is longBurstAfter gaps (64) old; then doubling again
	// up to longBurstGaps (128).
	want := []time.Duration{gap, 2 * gap, 4 * gap, 8 * gap, 16 * gap, 16 * gap, 16 * gap, 16 * gap,
		32 * gap, 64 * gap, 128 * gap, 128 * gap, 128 * gap, 128 * gap}
	if !slices.Equal(got, want) {
		t.Errorf("sleeps while looks find records: %v, want %v", got, want)
	}
	// A look that read over a quarter of the ring buffer halves the sleep,
	// never under a gap, however long the burst.
	if got := lookAgain(128*gap, true, gap, sleepCap(caps, time.Hour, 128*gap, true, true)); got != 64*gap {
		t.Errorf("after a crowded look: %v, want %v", got, 64*gap)
	}
	if got := lookAgain(gap, true, gap, sleepCap(caps, 0, gap, true, true)); got != gap {
		t.Errorf("after a crowded look: %v, want %v", got, gap)
	}
	// Records slower than stormRate keep the short cap however long the
	// burst, and bring a long sleep back to it.
	if got := lookAgain(16*gap, true, gap, sleepCap(caps, time.Hour, 16*gap, false, false)); got != 16*gap {
		t.Errorf("a trickle of records: %v, want %v", got, 16*gap)
	}
	if got := lookAgain(128*gap, true, gap, sleepCap(caps, time.Hour, 128*gap, false, false)); got != 16*gap {
		t.Errorf("a storm turned trickle: %v, want %v", got, 16*gap)
	}
	if got := lookAgain(16*gap, true, gap, sleepCap(caps, time.Hour, 16*gap, true, false)); got != 32*gap {
		t.Errorf("a storm: %v, want %v", got, 32*gap)
	}
	burst := caps.short
	for _, tc := range []struct {
		last, gap, burst time.Duration
		read             bool
		want             time.Duration
	}{
		{8 * gap, gap, burst, false, 0}, // a look found nothing
		{0, gap, burst, false, 0},       // woken (or timed out) for nothing
		{0, -1, burst, true, 0},         // every record wakes the reader
		{0, 0, burst, true, 0},          // likewise
		{150 * time.Millisecond, 100 * time.Millisecond, (&Config{}).burstSleep(100 * time.Millisecond).short, true, pollInterval}, // never over the poll interval
		{150 * time.Millisecond, 10 * time.Millisecond, (&Config{}).burstSleep(10 * time.Millisecond).at(time.Second), true, pollInterval},
		// Config.BurstSleep: up to it, however long the burst, never under
		// a gap, never over the poll interval.
		{64 * gap, gap, (&Config{BurstSleep: 100 * time.Millisecond}).burstSleep(gap).at(time.Hour), true, 100 * time.Millisecond},
		{128 * gap, gap, (&Config{BurstSleep: time.Second}).burstSleep(gap).at(0), true, pollInterval},
		{gap, 4 * gap, (&Config{BurstSleep: gap}).burstSleep(4 * gap).at(0), true, 4 * gap},
	} {
		if got := lookAgain(tc.last, tc.read, tc.gap, tc.burst); got != tc.want {
			t.Errorf("lookAgain(%v, %v, %v, %v) = %v, want %v", tc.last, tc.read, tc.gap, tc.burst, got, tc.want)
		}
	}
}
