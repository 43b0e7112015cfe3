package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
	"github.com/elastic/go-libaudit/v2/rule"
	"github.com/elastic/go-libaudit/v2/rule/flags"
	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/procmon/process"
)

func TestName(t *testing.T) {
	if got := New(Config{}).Name(); got != process.MethodAudit {
		t.Fatalf("Name() = %q", got)
	}
}

// TestExecStorm runs 5,000 short execs, two at a time, and expects every
// one reported with its path and exact arguments.
func TestExecStorm(t *testing.T) {
	guardAudit(t)
	tp := truePath(t)
	n := 5000
	if testing.Short() {
		n = 500
	}
	const budget = 30 * time.Second // for the execs; the rest waits for events
	prefix := fmt.Sprintf("storm-%d-", time.Now().UnixNano())

	var mu sync.Mutex
	got := make(map[string]*process.Event, n)
	dups := 0
	sink := &recSink{keep: func(ev *process.Event) bool {
		if ev.Kind != process.EventExec || ev.Process == nil || len(ev.Process.Args) == 0 {
			return false
		}
		arg := ev.Process.Args[len(ev.Process.Args)-1]
		if !strings.HasPrefix(arg, prefix) {
			return false
		}
		mu.Lock()
		if got[arg] != nil {
			dups++
		}
		got[arg] = ev
		mu.Unlock()
		return false
	}}
	src := startSource(t, Config{}, sink)

	start := time.Now()
	var next, ran atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < budget {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := exec.Command("/bin/true", prefix+strconv.FormatInt(i, 10)).Run(); err != nil {
					t.Errorf("exec %d: %v", i, err)
					return
				}
				ran.Add(1)
			}
		}()
	}
	wg.Wait()
	execTime := time.Since(start)
	ranN := int(ran.Load())
	if ranN < n {
		t.Logf("only %d of %d execs fit in %v", ranN, n, budget)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		c := len(got)
		mu.Unlock()
		if c >= ranN || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	all := time.Since(start)
	t.Logf("%d execs in %v (%.0f execs/s); all events after %v; stats %+v; status %+v",
		ranN, execTime.Round(time.Millisecond), float64(ranN)/execTime.Seconds(), all.Round(time.Millisecond), src.Stats(), src.Status())

	mu.Lock()
	defer mu.Unlock()
	var missing []int
	for i := range ranN {
		arg := prefix + strconv.Itoa(i)
		ev := got[arg]
		if ev == nil {
			missing = append(missing, i)
			continue
		}
		p := ev.Process
		if p.Path != tp || !slices.Equal(p.Args, []string{"/bin/true", arg}) || ev.PID <= 0 || p.ID != ev.PID ||
			ev.Method != process.MethodAudit || ev.Syscall == nil || ev.Syscall.Name != "execve" {
			t.Errorf("exec %d: pid %d path %q args %q syscall %+v", i, ev.PID, p.Path, p.Args, ev.Syscall)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d execs not reported (first: %v); lost %d, reasons %v",
			len(missing), ranN, missing[:min(10, len(missing))], sink.lost, sink.losses)
	}
	if dups > 0 {
		t.Errorf("%d execs reported twice", dups)
	}
}

// TestExecArgs checks that arguments come back exactly: spaces, quotes,
// non-ASCII and invalid UTF-8, empty ones, arguments long enough to be
// split into pieces, and argument lists spread over several records.
func TestExecArgs(t *testing.T) {
	guardAudit(t)
	tp := truePath(t)
	sink := &recSink{keep: func(ev *process.Event) bool { return ev.Kind == process.EventExec }}
	startSource(t, Config{}, sink)

	many := make([]string, 3000)
	for i := range many {
		many[i] = "arg-" + strconv.Itoa(i)
	}
	long := strings.Repeat("0123456789 abcdef ", 2000) // 36,000 bytes with spaces: hex, in pieces
	cases := map[string][]string{
		"spaces":    {"hello world", "  leading and trailing  "},
		"non-ascii": {"café ünïcödé", "bytes \xff\xfe\x01\x7f end", "tab\there\nnewline"},
		"quotes":    {`double"quote`, `single'quote`, `"`},
		"empty":     {"", "x", ""},
		"long":      {long, strings.Repeat("y", 9000)},
		"many":      many,
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			pid := run(t, "/bin/true", args...)
			ev := sink.wait(t, 10*time.Second, "exec of pid "+strconv.Itoa(pid), func(ev *process.Event) bool { return ev.PID == pid })
			want := append([]string{"/bin/true"}, args...)
			if !slices.Equal(ev.Process.Args, want) {
				if len(ev.Process.Args) != len(want) {
					t.Fatalf("got %d args, want %d", len(ev.Process.Args), len(want))
				}
				for i := range want {
					if ev.Process.Args[i] != want[i] {
						t.Errorf("arg %d: got %q (%d bytes), want %q (%d bytes)", i,
							trunc(ev.Process.Args[i]), len(ev.Process.Args[i]), trunc(want[i]), len(want[i]))
					}
				}
			}
			if ev.Process.Path != tp {
				t.Errorf("path %q, want %q", ev.Process.Path, tp)
			}
		})
	}
}

func trunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// TestExecDetails checks what else an exec event carries: parent, cwd,
// comm, credentials, the syscall, and that everything comes from the
// records (the process is gone before the event is looked at).
func TestExecDetails(t *testing.T) {
	guardAudit(t)
	tp := truePath(t)
	sink := &recSink{}
	startSource(t, Config{}, sink)
	dir := t.TempDir()
	cmd := exec.Command("/bin/true", "details")
	cmd.Dir = dir
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	ev := sink.wait(t, 10*time.Second, "exec", func(ev *process.Event) bool { return ev.PID == pid && ev.Kind == process.EventExec })
	p := ev.Process
	if p.PPID != os.Getpid() || p.CWD != dir || p.Comm != "true" || p.Path != tp || p.UID != os.Geteuid() {
		t.Errorf("ppid %d cwd %q comm %q path %q uid %d", p.PPID, p.CWD, p.Comm, p.Path, p.UID)
	}
	if p.Creds.EUID != uint32(os.Geteuid()) || p.Creds.GID != uint32(os.Getgid()) {
		t.Errorf("creds %+v", p.Creds)
	}
	if ev.Syscall.Arch == "" || ev.Syscall.Number == 0 || ev.Syscall.Result != 0 || len(ev.Syscall.Args) != 4 {
		t.Errorf("syscall %+v", ev.Syscall)
	}
	if d := time.Since(ev.Time); d < 0 || d > time.Minute {
		t.Errorf("event time %v", ev.Time)
	}
	exit := sink.wait(t, 10*time.Second, "exit", func(ev *process.Event) bool { return ev.PID == pid && ev.Kind == process.EventExit })
	if exit.ExitCode != 0 || exit.Syscall.Name != "exit_group" {
		t.Errorf("exit code %d, syscall %+v", exit.ExitCode, exit.Syscall)
	}
	// A non-zero status.
	cmd = exec.Command("sh", "-c", "exit 3")
	_ = cmd.Run()
	pid = cmd.Process.Pid
	exit = sink.wait(t, 10*time.Second, "exit 3", func(ev *process.Event) bool { return ev.PID == pid && ev.Kind == process.EventExit })
	if exit.ExitCode != 3<<8 {
		t.Errorf("exit code %#x, want the wait status %#x", exit.ExitCode, 3<<8)
	}
}

// TestCredentialEvents runs the tools that change credentials, namespaces
// and tracing, and checks the events.
func TestCredentialEvents(t *testing.T) {
	guardAudit(t)
	setpriv := proctest.RequireTool(t, "setpriv")
	sink := &recSink{}
	src := startSource(t, Config{}, sink)
	const wait = 10 * time.Second
	of := func(pid int, kind process.EventKind) func(*process.Event) bool {
		return func(ev *process.Event) bool { return ev.PID == pid && ev.Kind == kind }
	}

	t.Run("uid-gid", func(t *testing.T) {
		pid := run(t, setpriv, "--reuid=1000", "--regid=1000", "--clear-groups", "/bin/true")
		ev := sink.wait(t, wait, "uid event", func(ev *process.Event) bool {
			return of(pid, process.EventUID)(ev) && ev.Creds != nil && ev.Creds.New.UID == 1000
		})
		if ev.Creds.New.EUID != 1000 || !strings.HasPrefix(ev.Syscall.Name, "setre") {
			t.Errorf("uid event: creds %+v syscall %+v", ev.Creds.New, ev.Syscall)
		}
		sink.wait(t, wait, "gid event", func(ev *process.Event) bool {
			return of(pid, process.EventGID)(ev) && ev.Creds != nil && ev.Creds.New.GID == 1000
		})
		sink.wait(t, wait, "setgroups", func(ev *process.Event) bool {
			return of(pid, process.EventGID)(ev) && ev.Syscall.Name == "setgroups"
		})
		// The exec that follows runs with the new ids.
		ex := sink.wait(t, wait, "exec of /bin/true", func(ev *process.Event) bool {
			return of(pid, process.EventExec)(ev) && ev.Process.Comm == "true"
		})
		if ex.Process.UID != 1000 || ex.Process.Creds.GID != 1000 {
			t.Errorf("exec after setpriv: uid %d creds %+v", ex.Process.UID, ex.Process.Creds)
		}
	})
	t.Run("capset", func(t *testing.T) {
		pid := run(t, setpriv, "--inh-caps=+net_raw", "/bin/true")
		const capNetRaw = 13
		ev := sink.wait(t, wait, "capset with CAP_NET_RAW inheritable", func(ev *process.Event) bool {
			return of(pid, process.EventCapset)(ev) && ev.Creds.New.CapInheritable.Has(capNetRaw)
		})
		if ev.Creds.New.CapPermitted == 0 || ev.Syscall.Name != "capset" {
			t.Errorf("capset: %+v %+v", ev.Creds.New, ev.Syscall)
		}
	})
	t.Run("prctl", func(t *testing.T) {
		pid := run(t, setpriv, "--no-new-privs", "/bin/true")
		ev := sink.wait(t, wait, "prctl(PR_SET_NO_NEW_PRIVS)", func(ev *process.Event) bool {
			return of(pid, process.EventPrctl)(ev) && ev.Syscall.Args[0] == 38
		})
		if ev.Syscall.Name != "prctl" || ev.Syscall.Args[1] != 1 {
			t.Errorf("prctl: %+v", ev.Syscall)
		}
		// setpriv reads the bounding set with PR_CAPBSET_READ: filtered out.
		if evs := sink.find(func(ev *process.Event) bool {
			return of(pid, process.EventPrctl)(ev) && ev.Syscall.Args[0] == 23
		}); len(evs) > 0 {
			t.Errorf("%d PR_CAPBSET_READ events, want none", len(evs))
		}
	})
	t.Run("unshare", func(t *testing.T) {
		unshare := proctest.RequireTool(t, "unshare")
		pid := run(t, unshare, "--user", "/bin/true")
		ev := sink.wait(t, wait, "userns event", of(pid, process.EventUserNS))
		if ev.Syscall.Name != "unshare" || ev.Syscall.Args[0]&0x10000000 == 0 {
			t.Errorf("unshare: %+v", ev.Syscall)
		}
	})
	t.Run("clone", func(t *testing.T) {
		// The clone is made by a helper started now: a process that was
		// running before audit was first enabled is never audited.
		hpid, out, err := helper(t, "clone-newuser")
		if err != nil {
			t.Fatalf("helper: %v\n%s", err, out)
		}
		child, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(out, "child")))
		if err != nil {
			t.Fatalf("helper output %q", out)
		}
		ev := sink.wait(t, wait, "userns event of clone", of(child, process.EventUserNS))
		if ev.PPID != hpid || ev.Syscall.Name != "clone" || ev.Process.ID != child || ev.Process.PPID != hpid {
			t.Errorf("clone: ppid %d (helper %d) process %d/%d syscall %+v", ev.PPID, hpid, ev.Process.ID, ev.Process.PPID, ev.Syscall)
		}
	})
	t.Run("ptrace", func(t *testing.T) {
		strace := proctest.RequireTool(t, "strace")
		pid := run(t, strace, "-o", "/dev/null", "/bin/true")
		// strace first seizes a test child that never execs, then the
		// child that runs /bin/true.
		var ev *process.Event
		sink.wait(t, wait, "ptrace seize of the child that execs /bin/true", func(e *process.Event) bool {
			if e.Kind != process.EventExec || e.Process.PPID != pid || e.Process.Comm != "true" {
				return false
			}
			evs := sink.find(func(p *process.Event) bool {
				return p.Kind == process.EventPtrace && p.Tracer == pid && p.PID == e.PID && p.Syscall.Args[0] == 0x4206
			})
			if len(evs) > 0 {
				ev = evs[0]
			}
			return ev != nil
		})
		if ev.Process == nil || ev.Process.ID != ev.PID || ev.Syscall.Name != "ptrace" {
			t.Errorf("ptrace: pid %d process %+v", ev.PID, ev.Process)
		}
	})
	t.Logf("stats %+v", src.Stats())
	if st := src.Stats(); st.Errors != 0 {
		t.Errorf("%d errors", st.Errors)
	}
}

// TestSeccomp runs children that install seccomp filters.
func TestSeccomp(t *testing.T) {
	guardAudit(t)
	logged, err := os.ReadFile("/proc/sys/kernel/seccomp/actions_logged")
	if err != nil {
		t.Skipf("no seccomp logging: %v", err)
	}
	actions := strings.Fields(string(logged))
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("the helper's filter is for amd64 and arm64")
	}
	sink := &recSink{keep: func(ev *process.Event) bool { return ev.Kind == process.EventSeccomp }}
	startSource(t, Config{}, sink)
	self, _ := os.Executable()
	wantArch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	const wait = 10 * time.Second

	t.Run("log", func(t *testing.T) {
		if !slices.Contains(actions, "log") {
			t.Skipf("actions_logged %q lacks log", actions)
		}
		pid, out, err := helper(t, "seccomp-log")
		if err != nil {
			t.Fatalf("helper: %v\n%s", err, out)
		}
		ev := sink.wait(t, wait, "seccomp log event", func(ev *process.Event) bool {
			return ev.PID == pid && ev.Syscall.Name == "getpid"
		})
		if ev.Syscall.Number != seccompLogSyscall || ev.Syscall.Arch != wantArch || ev.Syscall.SeccompAction != "log" {
			t.Errorf("syscall %+v", ev.Syscall)
		}
		if ev.Process == nil || ev.Process.ID != pid || ev.Process.Path != self || ev.Process.Comm == "" {
			t.Errorf("process %+v (want path %q)", ev.Process, self)
		}
	})
	t.Run("errno", func(t *testing.T) {
		if !slices.Contains(actions, "errno") {
			t.Skipf("actions_logged %q lacks errno", actions)
		}
		// Without SECCOMP_FILTER_FLAG_LOG the kernel does not log ERRNO.
		quiet, out, err := helper(t, "seccomp-errno")
		if err != nil || !strings.HasSuffix(strings.TrimSpace(out), " 1") { // errno EPERM
			t.Fatalf("helper: %v\n%s", err, out)
		}
		loud, out, err := helper(t, "seccomp-errno-log")
		if err != nil {
			t.Fatalf("helper: %v\n%s", err, out)
		}
		ev := sink.wait(t, wait, "seccomp errno event (FLAG_LOG)", func(ev *process.Event) bool { return ev.PID == loud })
		if ev.Syscall.Name != "getppid" || ev.Syscall.SeccompAction != "errno" {
			t.Errorf("syscall %+v", ev.Syscall)
		}
		// Records arrive in order: the first child's would be here by now.
		if evs := sink.find(func(ev *process.Event) bool { return ev.PID == quiet }); len(evs) > 0 {
			t.Errorf("an ERRNO filter without FLAG_LOG was logged: %+v", evs[0].Syscall)
		}
	})
	t.Run("kill", func(t *testing.T) {
		if !slices.Contains(actions, "kill_process") {
			t.Skipf("actions_logged %q lacks kill_process", actions)
		}
		pid, out, err := helper(t, "seccomp-kill")
		if err == nil {
			t.Fatalf("helper survived a KILL_PROCESS filter: %s", out)
		}
		ev := sink.wait(t, wait, "seccomp kill event", func(ev *process.Event) bool { return ev.PID == pid })
		if ev.Syscall.Name != "getuid" || ev.Syscall.SeccompAction != "kill_process" {
			t.Errorf("syscall %+v", ev.Syscall)
		}
	})
}

// TestRestore checks that Close leaves the audit status and the rule list
// as Start found them, and that the rules are there while it runs.
func TestRestore(t *testing.T) {
	c, before := guardAudit(t)
	src := New(Config{BacklogLimit: 4321, BacklogWaitTime: 1234, Logger: testLogger(t)})
	if err := src.Start(context.Background(), nopSink{}); err != nil {
		t.Fatal(err)
	}
	running := readState(t, c)
	st := src.Status()
	if running.pid != uint32(os.Getpid()) || running.enabled != 1 || running.backlogLimit != 4321 || running.backlogWait != 1234 {
		t.Errorf("while running: %v", running)
	}
	if st.Multicast || !st.Running || st.Rules != len(Rules()) {
		t.Errorf("status %+v (want %d rules)", st, len(Rules()))
	}
	ours := 0
	for _, r := range running.rules {
		if isOurs(ruleKeys(r)) {
			ours++
		}
	}
	if ours != st.Rules {
		t.Errorf("%d proctrack rules in the kernel, status says %d", ours, st.Rules)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if after := readState(t, c); !after.equal(before) {
		t.Errorf("after Close: %v, before Start: %v", after, before)
	}
	if src.Status().Running {
		t.Error("still running after Close")
	}
	if err := src.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := src.Start(context.Background(), nopSink{}); err == nil {
		t.Error("Start after Close succeeded")
	}
}

// TestLeftoverRules adds proctrack rules as a crashed run would leave them,
// and one of a live owner, and checks what Start deletes.
func TestLeftoverRules(t *testing.T) {
	c, before := guardAudit(t)
	add := func(text string) []byte {
		r, err := flags.Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		w, err := rule.Build(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddRule(w); err != nil {
			t.Fatalf("add %q: %v", text, err)
		}
		return w
	}
	pid1, err := process.CurrentKey(1)
	if err != nil {
		t.Fatal(err)
	}
	add("-a always,exit -F arch=b64 -S getpid -k proctrack")
	add("-a always,exit -F arch=b64 -S getppid -k proctrack -k proctrack-owner=999999999-1.1")
	live := add("-a always,exit -F arch=b64 -S getuid -k proctrack -k proctrack-owner=" + pid1.String() + ".1")
	foreign := add("-a always,exit -F arch=b64 -S getgid -k someone-else")

	src := startSource(t, Config{}, nopSink{})
	running := readState(t, c)
	var ours, leftovers int
	for _, r := range running.rules {
		keys := ruleKeys(r)
		switch {
		case !isOurs(keys):
		case slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, ownerKeyPrefix+selfKey().String()) }):
			ours++
		default:
			leftovers++
		}
	}
	if ours != src.Status().Rules || ours == 0 {
		t.Errorf("%d rules of ours in the kernel, status says %d", ours, src.Status().Rules)
	}
	if leftovers != 1 {
		t.Errorf("%d other proctrack rules left, want 1 (the live owner's)", leftovers)
	}
	has := func(w []byte) bool {
		return slices.ContainsFunc(running.rules, func(r []byte) bool { return string(r) == string(w) })
	}
	if !has(live) || !has(foreign) {
		t.Errorf("Start deleted a live owner's rule (%v) or a foreign one (%v)", !has(live), !has(foreign))
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	after := readState(t, c)
	if len(after.rules) != len(before.rules)+2 || !slices.ContainsFunc(after.rules, func(r []byte) bool { return string(r) == string(live) }) {
		t.Errorf("after Close: %d rules, want the %d from before plus the live owner's and the foreign one", len(after.rules), len(before.rules))
	}
}

// TestMulticast simulates an audit daemon owning the audit socket: the
// source must read the multicast group and leave the daemon in place.
func TestMulticast(t *testing.T) {
	c, _ := guardAudit(t)
	daemon, err := libaudit.NewAuditClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := daemon.SetPID(libaudit.WaitForReply); err != nil {
		t.Fatalf("daemon SetPID: %v", err)
	}
	t.Cleanup(func() { _ = daemon.Close() }) // unsets the pid
	daemonPID := readState(t, c).pid

	sink := &recSink{keep: func(ev *process.Event) bool { return ev.Kind == process.EventExec }}
	src := startSource(t, Config{}, sink)
	st := src.Status()
	if !st.Multicast || st.AuditPID != daemonPID {
		t.Fatalf("status %+v, want multicast with the daemon (%d) as audit pid", st, daemonPID)
	}
	pid := run(t, "/bin/true", "multicast")
	ev := sink.wait(t, 10*time.Second, "exec in multicast mode", func(ev *process.Event) bool { return ev.PID == pid })
	if !slices.Equal(ev.Process.Args, []string{"/bin/true", "multicast"}) {
		t.Errorf("args %q", ev.Process.Args)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if now := readState(t, c); now.pid != daemonPID {
		t.Errorf("audit pid %d after Close, want the daemon's %d", now.pid, daemonPID)
	}
}

// TestForcedMulticast runs the read-only mode with no daemon.
func TestForcedMulticast(t *testing.T) {
	c, before := guardAudit(t)
	sink := &recSink{keep: func(ev *process.Event) bool { return ev.Kind == process.EventExec }}
	src := startSource(t, Config{Multicast: true}, sink)
	if st := src.Status(); !st.Multicast || st.AuditPID != 0 {
		t.Fatalf("status %+v", st)
	}
	if now := readState(t, c); now.pid != before.pid || now.backlogLimit != before.backlogLimit {
		t.Errorf("multicast mode changed pid or backlog: %v", now)
	}
	pid := run(t, "/bin/true", "forced")
	sink.wait(t, 10*time.Second, "exec", func(ev *process.Event) bool { return ev.PID == pid })
}

// TestUnavailable runs the source in a child without the audit
// capabilities.
func TestUnavailable(t *testing.T) {
	guardAudit(t)
	setpriv := proctest.RequireTool(t, "setpriv")
	for _, tc := range []struct {
		mode, drop, want string
	}{
		{"unavailable", "-audit_control,-audit_read,-audit_write", "CAP_AUDIT_CONTROL"},
		{"unavailable-multicast", "-audit_read", "CAP_AUDIT_READ"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			_, out, err := helper(t, tc.mode, setpriv, "--inh-caps=-all", "--bounding-set="+tc.drop, "--")
			if err != nil {
				t.Fatalf("helper: %v\n%s", err, out)
			}
			if !strings.HasPrefix(out, "true|") || !strings.Contains(out, tc.want) {
				t.Errorf("helper printed %q: want an error matching ErrUnavailable naming %s", out, tc.want)
			}
		})
	}
}

// TestNoGoroutineLeak checks that Close, and the end of Start's context,
// leave no goroutine behind.
func TestNoGoroutineLeak(t *testing.T) {
	guardAudit(t)
	settle := func(want int) int {
		n := runtime.NumGoroutine()
		for deadline := time.Now().Add(5 * time.Second); n > want && time.Now().Before(deadline); n = runtime.NumGoroutine() {
			time.Sleep(10 * time.Millisecond)
		}
		return n
	}
	base := runtime.NumGoroutine()
	src := New(Config{Logger: testLogger(t)})
	if err := src.Start(context.Background(), nopSink{}); err != nil {
		t.Fatal(err)
	}
	run(t, "/bin/true")
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if n := settle(base); n > base {
		t.Errorf("%d goroutines after Close, %d before Start", n, base)
	}

	ctx, cancel := context.WithCancel(context.Background())
	src = New(Config{Logger: testLogger(t)})
	if err := src.Start(ctx, nopSink{}); err != nil {
		t.Fatal(err)
	}
	cancel()
	for deadline := time.Now().Add(5 * time.Second); src.Status().Running; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the source did not close when its context ended")
		}
	}
	if err := src.Close(); err != nil {
		t.Errorf("Close after the context ended: %v", err)
	}
	if n := settle(base); n > base {
		t.Errorf("%d goroutines after the context ended, %d before Start", n, base)
	}
}

// TestStartErrors covers misuse that needs no kernel.
func TestStartErrors(t *testing.T) {
	if err := New(Config{}).Start(context.Background(), nil); err == nil {
		t.Error("Start with a nil sink succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := New(Config{}).Start(ctx, nopSink{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with a cancelled context: %v", err)
	}
	s := New(Config{})
	if err := s.Close(); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
	if err := s.Start(context.Background(), nopSink{}); err == nil {
		t.Error("Start after Close succeeded")
	}
	var _ methods.Source = s
}

// TestRules checks that every rule builds.
func TestRules(t *testing.T) {
	rules, err := buildRules(ownerKeyPrefix + "1-2.3")
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != len(Rules()) || len(rules) != 2*len(ruleSpecs) {
		t.Fatalf("%d rules", len(rules))
	}
	for _, r := range rules {
		keys := ruleKeys(r.wire)
		if !slices.Equal(keys, []string{RuleKey, ownerKeyPrefix + "1-2.3"}) {
			t.Errorf("rule %q: keys %q", r.text, keys)
		}
	}
	if !isLeftover([]string{RuleKey}) || !isLeftover([]string{RuleKey, ownerKeyPrefix + "garbage"}) {
		t.Error("a rule without a valid owner is not a leftover")
	}
}

// TestWakeupGap: after records the reader sleeps Config.WakeupGap before
// it reads again, so an event that follows at once is delivered no sooner
// than the gap after the first; and Close cuts a long sleep short.
func TestWakeupGap(t *testing.T) {
	guardAudit(t)
	tp := truePath(t)
	const gap = 300 * time.Millisecond
	exits := func(pid int) func(*process.Event) bool {
		return func(ev *process.Event) bool { return ev.Kind == process.EventExit && ev.PID == pid }
	}
	run := func() int {
		cmd := exec.Command(tp)
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		return cmd.Process.Pid
	}
	sink := &recSink{}
	startSource(t, Config{WakeupGap: gap}, sink)
	sink.wait(t, 5*time.Second, "exit of the first process", exits(run()))
	seen := time.Now()
	sink.wait(t, 5*time.Second, "exit of the second process", exits(run()))
	if d := time.Since(seen); d < gap-50*time.Millisecond {
		t.Errorf("the second exit came %v after the first, within the %v gap", d, gap)
	}
}

// TestCloseCutsWakeupGap: Close returns at once while the reader sleeps a
// gap of an hour.
func TestCloseCutsWakeupGap(t *testing.T) {
	guardAudit(t)
	sink := &recSink{}
	s := New(Config{WakeupGap: time.Hour, Logger: testLogger(t)})
	if err := s.Start(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command(truePath(t)).Run(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the reader reads, then sleeps
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
}
