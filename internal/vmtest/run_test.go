package vmtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestConsoleParser(t *testing.T) {
	res := &Result{Tests: []TestResult{{Name: "a", ExitCode: -1}, {Name: "b", ExitCode: -1}}}
	var echo strings.Builder
	p := newConsoleParser(res, time.Now(), &echo)
	for _, l := range []string{
		"[    0.000000] Linux version 6.12",
		MarkerBoot + " release=6.12.117+deb12-amd64 uptime=1.92 lsm=lockdown,capability,bpf,ima,evm",
		MarkerStart + " 0",
		"=== RUN   TestX",
		"--- PASS: TestX (0.00s)",
		"PASS" + MarkerExit + " 0", // output without a final newline
		MarkerStart + " 1",
		"=== RUN   TestY",
		"[    3.1] some kernel warning",
		"FAIL",
		"",
		MarkerExit + " 1",
		MarkerDone,
		"[    3.5] reboot: Power down",
	} {
		p.line(l)
	}
	if !p.done || res.Release != "6.12.117+deb12-amd64" || res.LSM != "lockdown,capability,bpf,ima,evm" ||
		res.GuestUptime != 1920*time.Millisecond {
		t.Errorf("boot marker: done=%v release=%q lsm=%q uptime=%v", p.done, res.Release, res.LSM, res.GuestUptime)
	}
	if a := res.Tests[0]; a.ExitCode != 0 || a.Output != "=== RUN   TestX\n--- PASS: TestX (0.00s)\nPASS" {
		t.Errorf("test a: exit %d output %q", a.ExitCode, a.Output)
	}
	if b := res.Tests[1]; b.ExitCode != 1 || b.Output != "=== RUN   TestY\n[    3.1] some kernel warning\nFAIL" {
		t.Errorf("test b: exit %d output %q", b.ExitCode, b.Output)
	}
	if res.Passed() {
		t.Error("Passed with a failing test")
	}
	if !strings.HasSuffix(echo.String(), "reboot: Power down\n") {
		t.Errorf("console writer did not get every line: %q", echo.String())
	}
}

// TestVMExitCode runs in the test VM when PROCTRACK_VMTEST_EXIT_CODE is
// set, and exits with that code: the host checks that exit codes travel.
func TestVMExitCode(t *testing.T) {
	v := os.Getenv("PROCTRACK_VMTEST_EXIT_CODE")
	if os.Getenv(InVMEnv) != "1" || v == "" {
		t.Skip("runs in the test VM, with PROCTRACK_VMTEST_EXIT_CODE set (TestPipeline does)")
	}
	code, err := strconv.Atoi(v)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("exiting with", code)
	os.Exit(code)
}

// TestPipeline boots every DefaultSpecs kernel with this package's tests
// and checks what TestVMProbe found. It downloads kernels and runs qemu, so
// it runs only with PROCTRACK_VMTEST=1 (.ci/vmtest.sh and make vmtest run
// it).
func TestPipeline(t *testing.T) {
	if os.Getenv("PROCTRACK_VMTEST") != "1" || os.Getenv(InVMEnv) == "1" {
		t.Skip("boots kernels under qemu: set PROCTRACK_VMTEST=1 (make vmtest)")
	}
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-10*time.Second))
		defer cancel()
	}
	cache := &Cache{Log: testLog{t}}
	ks, err := cache.Kernels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// This package's test binary, once per architecture.
	probes, dir := map[string]Test{}, t.TempDir()
	for _, k := range ks {
		if _, ok := probes[k.GoArch()]; !ok {
			probe, err := BuildTestArch(ctx, ".", k.GoArch(), dir, "-test.v", "-test.run", "^TestVMProbe$")
			if err != nil {
				t.Fatal(err)
			}
			probes[k.GoArch()] = probe
		}
	}
	probe := probes[ks[0].GoArch()]
	for _, k := range ks {
		probe := probes[k.GoArch()]
		exit := probe
		exit.Name, exit.Args = "exit-code", []string{"-test.run", "^TestVMExitCode$"}
		t.Run(k.Name, func(t *testing.T) {
			r, err := Boot(ctx, k, []Test{probe, exit}, Options{Cache: cache, Env: []string{"PROCTRACK_VMTEST_EXIT_CODE=3"}})
			if err != nil {
				t.Fatalf("%v\nconsole:\n%s", err, r.Console)
			}
			t.Logf("%s: release %s, boot %s (guest %s), probe %s, VM total %s", k, r.Release,
				r.Boot.Round(time.Millisecond), r.GuestUptime.Round(time.Millisecond),
				r.Tests[0].Duration.Round(time.Millisecond), r.Total.Round(time.Millisecond))
			if r.Tests[0].ExitCode != 0 {
				t.Fatalf("TestVMProbe failed on %s:\n%s", k, r.Tests[0].Output)
			}
			if r.Tests[1].ExitCode != 3 || !strings.Contains(r.Tests[1].Output, "exiting with 3") {
				t.Errorf("exit-code test: exit %d, output %q; want 3", r.Tests[1].ExitCode, r.Tests[1].Output)
			}
			found := probeFindings(r.Tests[0].Output)
			for _, key := range []string{"release", "lsm", "btf", "lsm_prog_load", "ima_active"} {
				t.Logf("  %s=%s", key, found[key])
			}
			if found["release"] != k.Release || r.Release != k.Release {
				t.Errorf("guest release %q (marker %q), want %q", found["release"], r.Release, k.Release)
			}
			if found["lsm"] != r.LSM {
				t.Errorf("probe lsm %q, boot marker lsm %q", found["lsm"], r.LSM)
			}
			if found["btf"] != "true" {
				t.Error("no BTF")
			}
			// Every Debian kernel lists bpf (6.12 by lsm=, 6.1 by its
			// CONFIG_LSM), so an LSM program must load and deny, except
			// where the kernel cannot attach it at all (arm64 6.1: no BPF
			// trampolines), which the probe reports.
			noTrampoline := k.GoArch() == "arm64" && strings.HasSuffix(found["lsm_prog_attach"], "not supported")
			if noTrampoline {
				t.Logf("%s: LSM programs do not attach: %s", k.Name, found["lsm_prog_attach"])
			} else if !strings.Contains(","+r.LSM+",", ",bpf,") || found["lsm_enforced"] != "true" {
				t.Errorf("bpf LSM: lsm=%s load=%s attach=%s enforced=%s",
					r.LSM, found["lsm_prog_load"], found["lsm_prog_attach"], found["lsm_enforced"])
			}
			if found["ima_measured_exec"] != "true" || found["ima_digest_matches_sha256"] != "true" {
				t.Errorf("IMA with %q: measured=%s digest matches=%s", IMACmdline,
					found["ima_measured_exec"], found["ima_digest_matches_sha256"])
			}
		})
	}

	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		r, err := Boot(ctx, ks[0], []Test{probe}, Options{Cache: cache, Timeout: 500 * time.Millisecond})
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not reach /init") {
			t.Errorf("err %v, want a deadline before /init", err)
		}
		if r.Tests[0].ExitCode != -1 || time.Since(start) > 30*time.Second {
			t.Errorf("exit %d after %s", r.Tests[0].ExitCode, time.Since(start))
		}
	})

	t.Run("run", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "bad.test")
		if err := os.WriteFile(bin, []byte("#!/bin/sh\necho from-a-script; exit 7\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		out, code, err := Run(ctx, ks[0], bin)
		if err != nil || code != 7 || out != "from-a-script" {
			t.Errorf("Run: %q, exit %d, %v; want from-a-script, 7", out, code, err)
		}
	})
}

// probeFindings collects the key=value lines TestVMProbe printed.
func probeFindings(output string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(output, "\n") {
		if i := strings.Index(l, ProbePrefix); i >= 0 {
			k, v, _ := strings.Cut(l[i+len(ProbePrefix):], "=")
			m[k] = v
		}
	}
	return m
}

type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// TestCmdline checks each architecture's console and that Boot refuses an
// architecture it has no machine for before starting anything.
func TestCmdline(t *testing.T) {
	for arch, want := range map[string]string{
		"":      "console=ttyS0 " + BaseCmdline + " lsm=bpf x=1",
		"amd64": "console=ttyS0 " + BaseCmdline + " lsm=bpf x=1",
		"arm64": "console=ttyAMA0 " + BaseCmdline + " lsm=bpf x=1",
	} {
		if got := Cmdline(Kernel{Arch: arch, Cmdline: "lsm=bpf"}, " x=1 "); got != want {
			t.Errorf("%q: %q, want %q", arch, got, want)
		}
	}
	_, err := Boot(context.Background(), Kernel{Name: "k", Arch: "sparc64"}, []Test{{Name: "t", Binary: "/bin/true"}}, Options{})
	if !errors.Is(err, ErrUnknownArch) {
		t.Errorf("sparc64: %v", err)
	}
	if _, err := (&Cache{Dir: t.TempDir()}).BusyboxArch(context.Background(), "sparc64"); !errors.Is(err, ErrUnknownArch) {
		t.Errorf("busybox for sparc64: %v", err)
	}
}
