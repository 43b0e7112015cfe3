package seccomp

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/proctrack/proctrack/internal/proctest"

	"github.com/proctrack/proctrack/internal/sysnum"
)

func TestParsePolicy(t *testing.T) {
	doc := `# seed 002's example
seccomp:
  default_action: allow
  syscalls:
    - action: errno
      names:
        - execve
        - execveat
        - fork
        - vfork
`
	p, err := ParsePolicy([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Enabled || p.DefaultAction != ActionAllow || len(p.Syscalls) != 1 || p.Syscalls[0].Action != ActionErrno ||
		strings.Join(p.Syscalls[0].Names, ",") != "execve,execveat,fork,vfork" || p.LogViolations {
		t.Fatalf("parsed %+v", p)
	}
	// Without the seccomp key, every action, enabled and log_violations.
	doc = "enabled: false\nlog_violations: true\ndefault_action: kill_process\nsyscalls:\n"
	for _, a := range Actions {
		doc += "  - {action: " + string(a) + ", names: [getppid]}\n"
	}
	p, err = ParsePolicy([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if p.Enabled || !p.LogViolations || p.DefaultAction != ActionKillProcess || len(p.Syscalls) != len(Actions) {
		t.Fatalf("parsed %+v", p)
	}
	if err := p.Install(); err != nil { // disabled: a no-op
		t.Fatalf("Install of a disabled policy: %v", err)
	}
	// JSON is YAML.
	if _, err := ParsePolicy([]byte(`{"default_action":"errno","syscalls":[{"action":"allow","names":["read"]}]}`)); err != nil {
		t.Fatal(err)
	}
	// YAML round trip.
	out, err := DefaultPolicy().YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePolicy(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if strings.Join(back.Syscalls[0].Names, ",") != strings.Join(DefaultPolicy().Syscalls[0].Names, ",") ||
		back.DefaultAction != ActionErrno || !back.LogViolations || !back.Enabled {
		t.Fatalf("round trip: %+v", back)
	}
}

// TestParsePolicyErrors: malformed policies are rejected with the entry
// and, from YAML, its place; nothing is installed (this process never
// installs a filter: Install is not even reached).
func TestParsePolicyErrors(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the expected messages name x86_64")
	}
	cases := []struct{ name, doc, want string }{
		{"unknown syscall", "seccomp:\n  default_action: allow\n  syscalls:\n    - action: errno\n      names: [execve]\n    - action: errno\n      names:\n        - fork\n        - vfork\n        - exeve\n",
			`seccomp policy: syscalls[1].names[2]: unknown syscall "exeve" for x86_64 (line 10, column 11)`},
		{"empty names", "default_action: allow\nsyscalls:\n  - action: errno\n    names: []\n",
			"seccomp policy: syscalls[0].names: empty (want at least one system call name) (line 4, column 12)"},
		{"null names", "default_action: allow\nsyscalls:\n  - action: errno\n    names:\n",
			"seccomp policy: syscalls[0].names: empty"},
		{"no names", "default_action: allow\nsyscalls:\n  - action: errno\n",
			"seccomp policy: syscalls[0]: names missing or empty (want at least one system call name) (line 3, column 5)"},
		{"missing default_action", "seccomp:\n  syscalls:\n    - action: errno\n      names: [execve]\n",
			"seccomp policy: default_action: missing (it is required)"},
		{"unknown default_action", "default_action: deny\nsyscalls:\n  - action: errno\n    names: [execve]\n",
			`seccomp policy: default_action: unknown action "deny" (want one of kill_process, kill_thread, trap, errno, trace, log, allow) (line 1, column 17)`},
		{"unknown action", "default_action: allow\nsyscalls:\n  - action: block\n    names: [execve]\n",
			`seccomp policy: syscalls[0].action: unknown action "block"`},
		{"missing action", "default_action: allow\nsyscalls:\n  - names: [execve]\n",
			"seccomp policy: syscalls[0]: action missing (it is required) (line 3, column 5)"},
		{"no groups", "default_action: allow\n", "seccomp policy: syscalls: no groups"},
		{"duplicate", "default_action: allow\nsyscalls:\n  - action: errno\n    names: [execve, fork, execve]\n",
			`seccomp policy: syscalls[0].names[2]: syscall "execve" repeats names[0] (line 4, column 27)`},
		{"unknown key", "default_action: allow\ndefault-action: errno\n", "seccomp policy: default-action: unknown key"},
		{"unknown group key", "default_action: allow\nsyscalls:\n  - action: errno\n    name: [execve]\n", "seccomp policy: syscalls[0].name: unknown key"},
		{"names not a list", "default_action: allow\nsyscalls:\n  - action: errno\n    names: execve\n",
			`seccomp policy: syscalls[0].names: want a list of system call names, got "execve" (line 4, column 12)`},
		{"name not a string", "default_action: allow\nsyscalls:\n  - action: errno\n    names: [[execve]]\n",
			"seccomp policy: syscalls[0].names[0]: want a string, got a list"},
		{"enabled not a bool", "enabled: maybe\ndefault_action: allow\n", `seccomp policy: enabled: want true or false, got "maybe" (line 1, column 10)`},
		{"syntax", "seccomp:\n  default_action: allow\n  syscalls:\n    - action: errno\n      names: [execve\n",
			"seccomp policy: YAML syntax: did not find expected ',' or ']' (line 5)"},
		// yaml.v3 says line 1: the line where the mapping began.
		{"mis-indented key", "seccomp:\n  default_action: allow\n  syscalls:\n    - action: errno\n      names: [execve]\n log_violations: true\n",
			"seccomp policy: YAML syntax: did not find expected key (line 6)"},
		{"syntax 2", "default_action: allow\n syscalls: x\n", "seccomp policy: YAML syntax: mapping values are not allowed in this context (line 2)"},
		{"empty", "", "seccomp policy: empty document"},
		{"comment only", "# nothing\n", "seccomp policy: empty document"},
		{"not a mapping", "- allow\n", "seccomp policy: want a mapping, got a list (line 1, column 1)"},
		{"seccomp not a mapping", "seccomp: allow\n", `seccomp policy: seccomp: want a mapping, got "allow"`},
		{"beside seccomp", "seccomp:\n  default_action: allow\nother: 1\n", "seccomp policy: other: unknown key beside seccomp (line 3, column 1)"},
		{"args", "default_action: allow\nsyscalls:\n  - action: errno\n    names_with_args: []\n", "seccomp policy: syscalls[0].names_with_args: argument conditions are not supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tc.doc))
			if err == nil {
				t.Fatalf("parsed %+v, want an error", p)
			}
			if p != nil {
				t.Errorf("returned a policy with the error")
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error\n  %v\nwant it to start with\n  %s", err, tc.want)
			}
			var pe *PolicyError
			if !errors.Is(err, ErrInvalidPolicy) || !errors.As(err, &pe) {
				t.Errorf("error %v does not match ErrInvalidPolicy / *PolicyError", err)
			}
		})
	}
}

// TestPolicyTooLarge: a policy over MaxPolicyBytes is refused before it
// is parsed, a file over it before it is read; errors quote excerpts of
// long values.
func TestPolicyTooLarge(t *testing.T) {
	path := proctest.SparseFile(t, "default_action: aaaa", 100<<20)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := LoadPolicy(path)
	runtime.ReadMemStats(&after)
	var pe *PolicyError
	if !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrInvalidPolicy) || !errors.As(err, &pe) {
		t.Fatalf("100 MB file: %.300v", err)
	}
	if want := path + ": seccomp policy: too large: 104857600 bytes; at most 4194304 (4 MiB)"; err.Error() != want {
		t.Errorf("got %.300s\nwant %s", err, want)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("LoadPolicy of a 100 MB file allocated %d bytes", alloc)
	}
	if _, err := ParsePolicy(make([]byte, MaxPolicyBytes+1)); !errors.Is(err, ErrTooLarge) || !errors.As(err, &pe) {
		t.Errorf("%d bytes: %.300v", MaxPolicyBytes+1, err)
	}
	ok := filepath.Join(t.TempDir(), "ok.yaml")
	if err := os.WriteFile(ok, []byte("default_action: allow\nsyscalls: [{action: errno, names: [execve]}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := LoadPolicy(ok); err != nil || p.DefaultAction != ActionAllow {
		t.Errorf("LoadPolicy: %+v, %v", p, err)
	}

	big := strings.Repeat("a", 16<<10)
	for _, doc := range []string{
		"default_action: " + big + "\nsyscalls: [{action: errno, names: [execve]}]\n",
		"default_action: allow\nsyscalls: [{action: " + big + ", names: [execve]}]\n",
		"default_action: allow\nsyscalls: [{action: errno, names: [" + big + "]}]\n",
		"default_action: allow\nsyscalls: [{action: errno, names: " + big + "}]\n",
		"default_action: allow\nsyscalls: [{action: errno, " + big + ": [execve]}]\n",
		big + ": allow\n",
		"enabled: " + big + "\n",
	} {
		_, err := ParsePolicy([]byte(doc))
		if err == nil || len(err.Error()) > 300 {
			t.Errorf("%.80q...: %.400v", doc, err)
		}
	}
}

// TestInstallValidatesFirst: a policy built in Go with a mistake is
// refused by Install before anything reaches the kernel.
func TestInstallValidatesFirst(t *testing.T) {
	for _, p := range []*Policy{
		{Enabled: true, Syscalls: []SyscallGroup{{Action: ActionAllow, Names: []string{"read"}}}},
		{Enabled: true, DefaultAction: ActionErrno, Syscalls: []SyscallGroup{{Action: ActionAllow, Names: []string{"read", "no_such_call"}}}},
		{Enabled: true, DefaultAction: ActionErrno, Syscalls: []SyscallGroup{{Action: ActionAllow}}},
	} {
		err := p.Install()
		if !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("Install(%+v) = %v, want ErrInvalidPolicy", p, err)
		}
	}
	if data, _ := readStatus("Seccomp:"); data != "0" {
		t.Fatalf("the test process has seccomp mode %q: a filter was installed", data)
	}
}

// TestValidateArch: names are checked against the architecture's table.
func TestValidateArch(t *testing.T) {
	p := &Policy{Enabled: true, DefaultAction: ActionErrno, Syscalls: []SyscallGroup{{Action: ActionAllow, Names: []string{"open", "arch_prctl"}}}}
	if err := p.ValidateArch("amd64"); err != nil {
		t.Error(err)
	}
	err := p.ValidateArch("arm64")
	if err == nil || err.Error() != `seccomp policy: syscalls[0].names[0]: unknown syscall "open" for aarch64` {
		t.Errorf("arm64: %v", err)
	}
	if err := p.ValidateArch("sparc"); err == nil {
		t.Error("sparc: no error")
	}
	// Names are the kernel's, from the generated tables (internal/sysnum):
	// arm64's number 79 is newfstatat, as audit and strace name it.
	p.Syscalls[0].Names = []string{"newfstatat"}
	for _, a := range []string{"amd64", "arm64", "aarch64"} {
		if err := p.ValidateArch(a); err != nil {
			t.Errorf("%s: %v", a, err)
		}
	}
	p.Syscalls[0].Names = []string{"fstatat"}
	if err := p.ValidateArch("arm64"); err == nil {
		t.Error("arm64 accepts fstatat, which the kernel calls newfstatat")
	}
}

// TestProgramNumbers checks that the filter compares the system call
// numbers of the running architecture's generated table.
func TestProgramNumbers(t *testing.T) {
	table := sysnum.Native(runtime.GOARCH)
	if table == nil || AllowList(runtime.GOARCH) == nil {
		t.Skipf("no seccomp support on %s", runtime.GOARCH)
	}
	names := []string{"newfstatat", "getpid", "setuid"}
	p := &Policy{Enabled: true, DefaultAction: ActionErrno, Syscalls: []SyscallGroup{{Action: ActionAllow, Names: names}}}
	raw, err := p.Program()
	if err != nil {
		t.Fatal(err)
	}
	compared := map[uint32]bool{}
	for _, ins := range raw {
		if ins.Op == 0x15 { // BPF_JMP|BPF_JEQ|BPF_K
			compared[ins.K] = true
		}
	}
	for _, n := range names {
		nr, ok := table.Number(n)
		if !ok || !compared[nr] {
			t.Errorf("%s (%s %d, %v) not compared in %v", n, table.Arch, nr, ok, raw)
		}
	}
}

func TestKernelFloors(t *testing.T) {
	for _, a := range Actions {
		v, ok := a.MinKernel()
		want := InstallFloor
		if a == ActionKillProcess || a == ActionLog {
			want = KernelVersion{Major: 4, Minor: 14}
		}
		if !ok || v != want {
			t.Errorf("%s: MinKernel %v, want %v", a, v, want)
		}
	}
	if _, ok := Action("deny").MinKernel(); ok {
		t.Error("unknown action has a floor")
	}
	if v, err := RunningKernel(); err != nil || v.Major < 3 {
		t.Errorf("RunningKernel %v %v", v, err)
	}
}

func TestDefaultPolicyShape(t *testing.T) {
	p := DefaultPolicy()
	if AllowList(runtime.GOARCH) == nil {
		if p.Enabled {
			t.Fatal("enabled on an architecture without a list")
		}
		return
	}
	if !p.Enabled || p.DefaultAction != ActionErrno || !p.LogViolations || len(p.Syscalls) != 1 || p.Syscalls[0].Action != ActionAllow {
		t.Fatalf("%+v", p)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	raw, err := p.Program()
	if err != nil || len(raw) == 0 {
		t.Fatalf("Program: %d instructions, %v", len(raw), err)
	}
	// Callers get their own copy.
	p.Syscalls[0].Names[0] = "changed"
	if DefaultPolicy().Syscalls[0].Names[0] == "changed" {
		t.Error("DefaultPolicy shares its list")
	}
	c := DefaultPolicy().Clone()
	c.Syscalls[0].Names[0] = "changed"
	if DefaultPolicy().Syscalls[0].Names[0] == "changed" {
		t.Error("Clone shares the list")
	}
}

func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte("seccomp:\n  default_action: allow\n  syscalls:\n    - action: errno\n      names: [execve, fork]\n"))
	f.Add([]byte("enabled: false\ndefault_action: log\nsyscalls: [{action: kill_thread, names: [getppid]}]\n"))
	f.Add([]byte("default_action: allow\nsyscalls:\n  - action: errno\n    names: []\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("seccomp: {default_action: [1], syscalls: {}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(data)
		if err != nil {
			if p != nil {
				t.Fatal("policy and error")
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("error %v does not match ErrInvalidPolicy", err)
			}
			return
		}
		// A parsed policy is valid and assembles.
		if err := p.Validate(); err != nil {
			t.Fatalf("parsed policy invalid: %v", err)
		}
		if _, err := p.Program(); err != nil && !errors.Is(err, ErrInvalidPolicy) {
			t.Fatalf("Program: %v", err)
		}
	})
}

// readStatus returns a field of /proc/self/status.
func readStatus(field string) (string, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", nil
}
