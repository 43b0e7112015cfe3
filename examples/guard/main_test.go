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
	"sync"
	"testing"
	"time"

	methodebpf "github.com/proctrack/proctrack/methods/ebpf"
	"github.com/proctrack/proctrack/procmon"
	"github.com/proctrack/proctrack/procmon/process"
	"github.com/proctrack/proctrack/rules"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

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
	var out, status syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, &out, &status, "policy.yaml", "", true) }()
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
	err = run(ctx, &bytes.Buffer{}, &bytes.Buffer{}, "sandbox.yaml", "", false)
	if !errors.Is(err, procmon.ErrSandbox) || !strings.Contains(err.Error(), "LSM tier") {
		t.Errorf("error %v", err)
	}
}

func TestBadPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("setuid:\n  rules:\n    - rule: R\n      event: uid == AND\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), &bytes.Buffer{}, &bytes.Buffer{}, path, "", false)
	if err == nil || !strings.Contains(err.Error(), `rule "R" (setuid), line 4, column 21: expected a value after "==", found "AND"`) {
		t.Fatalf("error %v", err)
	}
}
