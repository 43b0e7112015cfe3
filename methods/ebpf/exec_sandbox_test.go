package ebpf

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proctrack/proctrack/procmon/process"
	"github.com/proctrack/proctrack/rules"
)

// testLogger returns a logger writing to the test's log (the source's
// warnings, such as a kill that could not be sent, explain a failure).
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// runCopy runs copied (a copy of the test binary in the noop helper mode)
// with args and returns its pid and whether SIGKILL ended it; it fails
// the test on any other end but a clean exit.
func runCopy(t *testing.T, copied string, args ...string) (pid int, killed bool) {
	t.Helper()
	cmd := exec.Command(copied, append([]string{"-test.run=^$"}, args...)...)
	cmd.Env = append(os.Environ(), helperEnv+"=noop")
	err := cmd.Run()
	pid = cmd.Process.Pid
	var ee *exec.ExitError
	switch {
	case err == nil:
		return pid, false
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return pid, true
		}
	}
	t.Fatalf("%s %q: %v", filepath.Base(copied), args, err)
	return pid, false
}

// TestExecSandboxKills is issue 14's test: a sched_process_exec rule in
// Bombini's form (scope binary_name == "rm", event arg0 in ["-r", "-rf"]
// AND arg1 in [<path>]) kills `rm -rf <path>`-shaped execs in the kernel,
// at the exec tracepoint, on whichever tier runs (this host: the
// tracepoint tier, where BPF LSM does not load), while rm with other
// arguments, and other binaries with the same arguments, run. The "rm" is
// a copy of this test binary doing nothing, the path a name under a
// temporary directory. The killed exec is reported with its verdict and
// the rule; as an allow-list, the rule kills what it does not match.
func TestExecSandboxKills(t *testing.T) {
	self, rm := copySelf(t, "rm")
	passwd := filepath.Join(filepath.Dir(rm), "etc", "passwd")
	set := ruleSet(t, rules.Spec{Hook: HookSchedProcessExec, Name: "NoRmPasswd",
		Scope: `binary_name == "rm"`, Event: `arg0 in ["-r", "-rf"] AND arg1 in ["` + passwd + `"]`})
	src, rec := startSource(t, Config{Hooks: map[string]bool{}, Rules: set, Logger: testLogger(t),
		Sandbox: map[string]SandboxMode{HookSchedProcessExec: SandboxDenyList}})
	t.Logf("tier %s: %s", src.Tier(), src.Status())

	for _, c := range []struct {
		bin    string
		args   []string
		killed bool
	}{
		{rm, []string{"-rf", passwd}, true},
		{rm, []string{passwd, "-r"}, true}, // any position, as in Bombini
		{rm, []string{"-f", passwd}, false},
		{rm, []string{"-rf", passwd + "2"}, false},
		{rm, []string{"-rf"}, false},
		{self, []string{"-rf", passwd}, false}, // another binary: out of scope
	} {
		pid, killed := runCopy(t, c.bin, c.args...)
		if killed != c.killed {
			t.Errorf("%s %q: killed %v, want %v", filepath.Base(c.bin), c.args, killed, c.killed)
		}
		ev := rec.WaitFor(process.EventExec, pid, nil, 3*time.Second)
		if ev == nil {
			t.Errorf("%s %q: no exec event", filepath.Base(c.bin), c.args)
			continue
		}
		switch {
		case c.killed && (ev.Verdict != process.VerdictKilled || !slices.Equal(ev.Matched, []string{"NoRmPasswd"})):
			t.Errorf("%s %q: exec events of pid %d: %s", filepath.Base(c.bin), c.args, pid, execsOf(rec, pid))
		}
		switch {
		case c.killed && (ev.Verdict != process.VerdictKilled || !slices.Equal(ev.Matched, []string{"NoRmPasswd"})):
			t.Errorf("%s %q: verdict %v, matched %q; want killed by NoRmPasswd", filepath.Base(c.bin), c.args, ev.Verdict, ev.Matched)
		case !c.killed && (ev.Verdict != process.VerdictAllowed || len(ev.Matched) != 0):
			t.Errorf("%s %q: verdict %v, matched %q; want allowed, no rule", filepath.Base(c.bin), c.args, ev.Verdict, ev.Matched)
		}
		if ev.Process == nil || ev.Process.Path != c.bin || !slices.Contains(ev.Process.Args, c.args[0]) {
			t.Errorf("%s %q: the event's process %+v", filepath.Base(c.bin), c.args, ev.Process)
		}
	}
}

// TestExecSandboxAllowList: as an allow-list (deny_list: false), a rule
// covering rm (its scope) lets rm run with the arguments its event names
// and kills it with any other; binaries outside every scope run.
func TestExecSandboxAllowList(t *testing.T) {
	self, rm := copySelf(t, "rm")
	set := ruleSet(t, rules.Spec{Hook: HookSchedProcessExec, Name: "RmOnlyForce",
		Scope: `binary_name == "rm"`, Event: `arg0 == "-f"`})
	src, rec := startSource(t, Config{Hooks: map[string]bool{}, Rules: set, Logger: testLogger(t),
		Sandbox: map[string]SandboxMode{HookSchedProcessExec: SandboxAllowList}})
	for _, c := range []struct {
		bin    string
		arg    string
		killed bool
	}{
		{rm, "-f", false},
		{rm, "-rf", true},
		{self, "-rf", false},
	} {
		pid, killed := runCopy(t, c.bin, c.arg)
		if killed != c.killed {
			t.Errorf("%s %s: killed %v, want %v", filepath.Base(c.bin), c.arg, killed, c.killed)
		}
		if !c.killed {
			continue
		}
		ev := rec.WaitFor(process.EventExec, pid, nil, 3*time.Second)
		if ev == nil || ev.Verdict != process.VerdictKilled || !slices.Equal(ev.Matched, []string{"RmOnlyForce"}) {
			t.Errorf("%s %s (pid %d): event %+v; source errors %d; exec events of the pid: %s",
				filepath.Base(c.bin), c.arg, pid, ev, src.Stats().Errors, execsOf(rec, pid))
		}
	}
}

// TestExecSandboxLongList: a GTFOBins-sized list and more (thousands of
// values, far past the old limit of 64) compiles into the kernel's tables
// and is matched with one lookup per argument.
func TestExecSandboxLongList(t *testing.T) {
	_, rm := copySelf(t, "rm")
	var vals []string
	for i := range 3000 {
		vals = append(vals, `"--opt`+strings.Repeat("x", i%7)+string(rune('a'+i%26))+strconv.Itoa(i)+`"`)
	}
	vals = append(vals, `"--killme"`)
	set := ruleSet(t, rules.Spec{Hook: HookSchedProcessExec, Name: "Long",
		Event: `arg0 in [` + strings.Join(vals, ", ") + `]`})
	_, _ = startSource(t, Config{Hooks: map[string]bool{}, Rules: set, Logger: testLogger(t),
		Sandbox: map[string]SandboxMode{HookSchedProcessExec: SandboxDenyList}})
	if _, killed := runCopy(t, rm, "a", "b", "--killme"); !killed {
		t.Error("the last of 3001 values did not kill")
	}
	if _, killed := runCopy(t, rm, "--killme2"); killed {
		t.Error("an argument in no list was killed")
	}
}

// TestExecSandboxParentScope: the parent_binary_* scope of a
// sched_process_exec rule reads the parent's executable path, which the
// tracepoint tier keeps at exec and fork (seeded from /proc at Start: this
// test process is the parent); a rule scoped to another parent does not
// apply.
func TestExecSandboxParentScope(t *testing.T) {
	self, rm := copySelf(t, "rm")
	set := ruleSet(t,
		rules.Spec{Hook: HookSchedProcessExec, Name: "FromTest",
			Scope: `parent_binary_name == "` + filepath.Base(self) + `"`, Event: `arg0 == "--killme"`},
		rules.Spec{Hook: HookSchedProcessExec, Name: "FromSshd",
			Scope: `parent_binary_name == "sshd"`, Event: `arg0 == "--killme2"`})
	_, rec := startSource(t, Config{Hooks: map[string]bool{}, Rules: set, Logger: testLogger(t),
		Sandbox: map[string]SandboxMode{HookSchedProcessExec: SandboxDenyList}})
	pid, killed := runCopy(t, rm, "--killme")
	if !killed {
		t.Error("rm --killme, child of the test binary: not killed")
	} else if ev := rec.WaitFor(process.EventExec, pid, nil, 3*time.Second); ev == nil || !slices.Equal(ev.Matched, []string{"FromTest"}) {
		t.Errorf("event %+v", ev)
	}
	if _, killed := runCopy(t, rm, "--killme2"); killed {
		t.Error("rm --killme2 killed by a rule scoped to the children of sshd")
	}
}

// execsOf describes the exec events of pid (verdict, rules, arguments).
func execsOf(rec *recorder, pid int) string {
	var out []string
	for _, ev := range rec.All(process.EventExec, pid) {
		out = append(out, fmt.Sprintf("[%v %q %q]", ev.Verdict, ev.Matched, ev.Process.Args))
	}
	return strings.Join(out, " ")
}
