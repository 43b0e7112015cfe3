package procmon

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/internal/vmtest"
	"github.com/proctrack/proctrack/methods"
	methodebpf "github.com/proctrack/proctrack/methods/ebpf"
	"github.com/proctrack/proctrack/rules"
)

// TestBombiniConfigs parses Bombini's shipped ProcMon configurations and
// every example of its ProcMon and rules documentation (testdata/bombini,
// see its README for the sources): each parses, or is refused for a reason
// Bombini shares. The examples of rules.md that configure Bombini's other
// detectors (FileMon's file_open, NetMon's socket_connect, and the
// illustrative `procmon:` block, whose scope names uid, no ProcMon scope
// attribute) are not ProcMon configurations: proctrack, which has no file
// or network hooks, refuses their keys rather than ignore their rules.
func TestBombiniConfigs(t *testing.T) {
	refused := map[string]string{
		"rules_file_open.yaml":         `unknown key "file_open"`,
		"rules_lists.yaml":             `unknown key "file_open"`,
		"rules_sandbox_file_open.yaml": `unknown key "file_open"`,
		"rules_list_uids.yaml":         `unknown key "socket_connect"`,
		"rules_sandbox_socket.yaml":    `unknown key "socket_connect"`,
		"rules_macros.yaml":            `unknown key "procmon"`,
	}
	files, err := filepath.Glob("testdata/bombini/*.yaml")
	if err != nil || len(files) < 15 {
		t.Fatalf("testdata: %d files, %v", len(files), err)
	}
	for _, path := range files {
		name := filepath.Base(path)
		f, err := LoadFileConfig(path)
		if want, ok := refused[name]; ok {
			if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v, want an error with %s", name, err, want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if n := f.Rules().Len(); n == 0 && strings.HasPrefix(name, "doc_") && name != "doc_ima_gc.yaml" {
			t.Errorf("%s: no rule compiled", name)
		}
	}
}

// TestBombiniExecSandbox checks what Bombini's sched_process_exec example
// becomes: an enabled hook whose rule is a deny-list (the hook only
// enforces; Bombini's default without a sandbox block), its rule matching
// as Bombini's BPF program does (arguments after argv[0], any position),
// and a monitor that needs eBPF: asked for netlink, Start refuses with
// ErrSandbox and the reason.
func TestBombiniExecSandbox(t *testing.T) {
	cfg, err := LoadConfig("testdata/bombini/exec_sandbox.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.sandbox()[rules.HookSchedProcessExec]; got != methodebpf.SandboxDenyList {
		t.Errorf("mode %v, want deny-list", got)
	}
	rs := cfg.Rules.Rules(rules.HookSchedProcessExec)
	if len(rs) != 1 || rs[0].Name() != "ExecveSandboxTestRule" {
		t.Fatalf("rules %v", rs)
	}
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"-rf", "/etc/passwd"}, true},
		{[]string{"/etc/passwd", "-r"}, true},
		{[]string{"-f", "/etc/passwd"}, false},
	} {
		if got := rs[0].Match(&rules.Input{Binary: "/usr/bin/rm", Args: c.args}); got != c.want {
			t.Errorf("rm %q: %v", c.args, got)
		}
	}
	if rs[0].Match(&rules.Input{Binary: "/usr/bin/unlink", Args: []string{"-rf", "/etc/passwd"}}) {
		t.Error("out of scope, matched")
	}

	cfg.Method = MethodNetlink
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = m.Start(t.Context())
	if err == nil {
		m.Close()
		t.Fatal("sched_process_exec started on netlink")
	}
	if !errors.Is(err, ErrSandbox) || !strings.Contains(err.Error(), "sched_process_exec needs the eBPF method") {
		t.Errorf("error %v", err)
	}
}

// TestExecSandboxNoEbpf: where the eBPF method cannot start (here a
// stand-in for it that reports no BTF), a monitor with sched_process_exec
// refuses to start with ErrSandbox and the method's reason, and falls back
// to nothing.
func TestExecSandboxNoEbpf(t *testing.T) {
	withSource(t, MethodEbpf, &fakeSource{name: MethodEbpf, startErr: fmt.Errorf("%w: no kernel BTF", methods.ErrUnavailable)})
	cfg, err := LoadConfig("testdata/bombini/exec_sandbox.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	err = m.Start(t.Context())
	if !errors.Is(err, ErrSandbox) || !errors.Is(err, methods.ErrUnavailable) || !strings.Contains(err.Error(), "no kernel BTF") {
		t.Errorf("Start: %v", err)
	}
	if m.Method() != "" {
		t.Errorf("running %q", m.Method())
	}
}

// TestExecSandboxModes checks the sandbox block of sched_process_exec:
// absent, a deny-list (Bombini's default); deny_list: false, an
// allow-list; enabled: false, refused (the hook only enforces, and Bombini
// does not read enabled there); no rules, nothing to enforce.
func TestExecSandboxModes(t *testing.T) {
	const rule = "  rules:\n    - rule: R\n      event: arg0 == \"-rf\"\n"
	for _, c := range []struct {
		doc  string
		mode methodebpf.SandboxMode
		err  string
	}{
		{"sched_process_exec:\n  enabled: true\n" + rule, methodebpf.SandboxDenyList, ""},
		{"sched_process_exec:\n  enabled: true\n  sandbox: {enabled: true}\n" + rule, methodebpf.SandboxAllowList, ""},
		{"sched_process_exec:\n  enabled: true\n  sandbox: {enabled: true, deny_list: true}\n" + rule, methodebpf.SandboxDenyList, ""},
		{"sched_process_exec:\n  enabled: false\n" + rule, methodebpf.SandboxOff, ""},
		{"sched_process_exec:\n  enabled: true\n", methodebpf.SandboxOff, ""},
		{"sched_process_exec:\n  enabled: true\n  sandbox: {enabled: false}\n" + rule, 0, "the hook only enforces"},
		{"sched_process_exec:\n  enabled: true\n  rules:\n    - rule: R\n      event: uid == 0\n", 0, `hook sched_process_exec has no attribute "uid"`},
	} {
		cfg, err := ParseConfig([]byte(c.doc))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want %q", c.doc, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.doc, err)
			continue
		}
		if got := cfg.sandbox()[rules.HookSchedProcessExec]; got != c.mode {
			t.Errorf("%q: mode %v, want %v", c.doc, got, c.mode)
		}
		if on := slices.Contains(cfg.sandboxed(), rules.HookSchedProcessExec); on != (c.mode != methodebpf.SandboxOff) {
			t.Errorf("%q: sandboxed %v", c.doc, cfg.sandboxed())
		}
	}
}

// TestExecSandboxMonitor runs Bombini's exec-sandbox rule through a
// monitor on the eBPF method (this host: its tracepoint tier, without BPF
// LSM): `rm -rf <path>` is killed, `rm -f <path>` runs, and the killed exec
// is delivered with VerdictKilled and the rule's name, its process cached
// with the new image. The "rm" is a copy of this test binary, running no
// test, the path a name in a temporary directory. TestVMExecSandbox runs
// it in the 6.12 guest (LSM tier) and the 6.1 guest (tracepoint tier).
func TestExecSandboxMonitor(t *testing.T) {
	proctest.RequireRoot(t, "loading BPF programs")
	dir := t.TempDir()
	rm := filepath.Join(dir, "rm")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rm, data, 0o755); err != nil {
		t.Fatal(err)
	}
	passwd := filepath.Join(dir, "etc", "passwd")
	cfg, err := ParseConfig([]byte("method: ebpf\nsched_process_exec:\n  enabled: true\n  rules:\n  - rule: NoRm\n" +
		"    scope: binary_name == \"rm\"\n    event: arg0 in [\"-r\", \"-rf\"] AND arg1 in [\"" + passwd + "\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	m, c := startMonitor(t, cfg)
	t.Logf("status: %+v", m.Status())

	run := func(args ...string) (int, error) {
		// this test binary running no test: it exits 0, removing nothing
		cmd := exec.Command(rm, append([]string{"-test.run=^$", "--"}, args...)...)
		err := cmd.Run()
		return cmd.Process.Pid, err
	}
	pid, err := run("-rf", passwd)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("rm -rf %s: %v, want killed", passwd, err)
	}
	if _, err := run("-f", passwd); err != nil {
		t.Errorf("rm -f %s: %v", passwd, err)
	}
	var ev Event
	waitFor(t, 5*time.Second, func() bool {
		var ok bool
		ev, ok = c.execs()[pid]
		return ok
	})
	if ev.Verdict != VerdictKilled || !slices.Equal(ev.Matched, []string{"NoRm"}) {
		t.Errorf("killed exec: verdict %v, matched %q", ev.Verdict, ev.Matched)
	}
	if p := ev.Process; p == nil || p.Path != rm {
		t.Errorf("killed exec's process %+v", p)
	}
}

// TestVMExecSandbox runs TestExecSandboxMonitor in the test VMs (it skips
// elsewhere): sched_process_exec kills on the 6.12 guest's LSM tier and on
// the 6.1 guest's tracepoint tier alike.
//
//	go run ./internal/vmtest/cmd/vmtest -pkg ./procmon -run '^TestVM'
func TestVMExecSandbox(t *testing.T) {
	vmtest.RequireVM(t, "./procmon")
	TestExecSandboxMonitor(t)
}
