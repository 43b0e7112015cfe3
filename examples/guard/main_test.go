package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"

	methodebpf "github.com/proctrack/proctrack/methods/ebpf"
	"github.com/proctrack/proctrack/procmon"
	"github.com/proctrack/proctrack/procmon/process"
	"github.com/proctrack/proctrack/rules"
)

// TestPolicy checks the shipped policy: it loads, and each rule matches
// what it says.
func TestPolicy(t *testing.T) {
	f, err := procmon.LoadFileConfig("policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if f.Rules().Len() != 4 {
		t.Fatalf("%d rules", f.Rules().Len())
	}
	root := process.CapSet(1<<(process.CapLast+1) - 1)
	cases := []struct {
		hook string
		in   rules.Input
		want string
	}{
		{"bprm_check", rules.Input{Path: "/usr/bin/bash", EUID: 0, ECaps: root}, "RootShell"},
		{"bprm_check", rules.Input{Path: "/usr/bin/bash", EUID: 1000}, ""},
		{"bprm_check", rules.Input{Path: "/tmp/x/payload", EUID: 1000}, "ExecFromTmp"},
		{"bprm_check", rules.Input{Path: "/dev/shm/sh", EUID: 1000}, "ExecFromTmp"},
		{"bprm_check", rules.Input{Path: "/tmpfs/sh", EUID: 1000}, ""},
		{"setuid", rules.Input{UID: 0, EUID: 0, Binary: "/tmp/exploit"}, "UnexpectedSetuidRoot"},
		{"setuid", rules.Input{UID: 1000, EUID: 0, Binary: "/usr/bin/python3"}, "UnexpectedSetuidRoot"},
		{"setuid", rules.Input{UID: 0, EUID: 0, Binary: "/usr/bin/sudo"}, ""},
		{"setuid", rules.Input{UID: 1000, EUID: 1000, Binary: "/tmp/exploit"}, ""},
		{"create_user_ns", rules.Input{EUID: 1000}, "UnprivUserNS"},
		{"create_user_ns", rules.Input{EUID: 0, ECaps: root}, ""},
	}
	for _, c := range cases {
		var names []string
		for _, r := range f.Rules().Match(c.hook, &c.in) {
			names = append(names, r.Name())
		}
		if strings.Join(names, ",") != c.want {
			t.Errorf("%s %s: matched %v, want %q", c.hook, c.in.String(), names, c.want)
		}
	}
}

// TestGuard runs guard and a program from /tmp, and expects the match.
func TestGuard(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to monitor credentials")
	}
	dir, err := os.MkdirTemp("/tmp", "guard-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip(err)
	}
	data, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "payload")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	policy, err := load("policy.yaml", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var out, status proctest.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, &out, &status, policy, "", true) }()
	for !strings.Contains(status.String(), "monitoring with") {
		select {
		case err := <-done:
			t.Fatalf("guard stopped: %v\n%s", err, status.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cmd := exec.Command(bin, "0.3")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(out.String(), bin) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m Match
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if m.Rule == "ExecFromTmp" && m.Path == bin && m.PID == cmd.Process.Pid && m.Hook == "bprm_check" {
			found = true
		}
	}
	if !found {
		t.Errorf("no ExecFromTmp match for %s (pid %d):\n%s\nstatus:\n%s", bin, cmd.Process.Pid, out.String(), status.String())
	}
}

// TestSandboxPolicy checks sandbox.yaml: it loads, and where the eBPF LSM
// tier does not run (this host) guard refuses to start with a reason
// instead of watching without denying. The VM tests deny for real.
func TestSandboxPolicy(t *testing.T) {
	f, err := procmon.LoadFileConfig("sandbox.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if mc := f.MonitorConfig(); len(mc.Ebpf.Sandbox) != 2 {
		t.Errorf("sandbox modes %v", mc.Ebpf.Sandbox)
	}
	if os.Geteuid() != 0 {
		t.Skip("the refusal needs root to try the eBPF method")
	}
	if r := methodebpf.ProbeTier(); r.Tier == methodebpf.TierLSM {
		t.Skip("the LSM tier runs here: guard would deny")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = run(ctx, &bytes.Buffer{}, &bytes.Buffer{}, f, "", false)
	if !errors.Is(err, procmon.ErrSandbox) || !strings.Contains(err.Error(), "LSM tier") {
		t.Errorf("error %v", err)
	}
}

// TestBadInput: each bad command line or policy file is a one-line usage
// error.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("setuid:\n  rules:\n    - rule: R\n      event: uid == AND\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, procmon.MaxConfigBytes+1); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		config, method string
		args           []string
		want           string
	}{
		{"", "", nil, "-config is required: the policy file, e.g. -config examples/guard/policy.yaml"},
		{"policy.yaml", "fast", nil, `-method "fast": expected one of ebpf, netlink, audit, proc`},
		{"policy.yaml", "", []string{"policy.yaml"}, `unexpected argument "policy.yaml": guard takes flags only (-config, -method, -json, -duration)`},
		{filepath.Join(dir, "none.yaml"), "", nil, "procmon: config: open " + filepath.Join(dir, "none.yaml") + ": no such file or directory"},
		{bad, "", nil, bad + `: procmon: config: rule "R" (setuid), line 4, column 21: expected a value after "==", found "AND"`},
		{big, "", nil, big + ": procmon: config: invalid configuration: too large: 4194305 bytes; at most 4194304 (4 MiB)"},
	} {
		_, err := load(c.config, c.method, c.args)
		if err == nil || err.Error() != c.want {
			t.Errorf("%q %q %q:\n got %v\nwant %s", c.config, c.method, c.args, err, c.want)
		}
	}
}

// TestMain runs main when the test binary is started as guard by
// TestExitStatus.
func TestMain(m *testing.M) {
	if os.Getenv("GUARD_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestExitStatus runs guard from the repository root: without -config (the
// old default, policy.yaml, existed only in examples/guard) it exits with
// status 2 and one line on stderr, as for the flag package's own errors.
func TestExitStatus(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "-config is required: the policy file, e.g. -config examples/guard/policy.yaml\n"},
		{[]string{"-config", "examples/guard/nonexistent.yaml"}, "procmon: config: open examples/guard/nonexistent.yaml: no such file or directory\n"},
		{[]string{"-config", "examples/guard/policy.yaml", "-method", "fast"}, "-method \"fast\": expected one of ebpf, netlink, audit, proc\n"},
		{[]string{"-nope"}, ""}, // the flag package's own error
	} {
		cmd := exec.Command(os.Args[0], c.args...)
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "GUARD_TEST_MAIN=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%q: %v, want exit status 2\n%s", c.args, err, stderr.String())
		}
		// The line is "<program>: <error>"; the program is guard's test binary here.
		_, got, _ := strings.Cut(stderr.String(), ": ")
		if c.want != "" && got != c.want {
			t.Errorf("%q: stderr\n%q\nwant\n%q", c.args, stderr.String(), c.want)
		}
	}
}
