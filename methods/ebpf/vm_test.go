package ebpf

import (
	"os"
	"strings"
	"testing"

	"github.com/proctrack/proctrack/internal/kernel"
	"github.com/proctrack/proctrack/internal/vmtest"
)

// TestVMEbpf runs this package's kernel tests inside the qemu guests of
// internal/vmtest (it skips elsewhere): the tier the probe must choose for
// the guest's kernel, the process events (CO-RE on another kernel), the
// privilege events on the tier that runs, the LSM tier with every hook
// and IMA where it is available, and sched_process_exec's kills on either
// tier.
//
//	go run ./internal/vmtest/cmd/vmtest -pkg ./methods/ebpf -run '^TestVM'
//
// The guest is an initramfs of busybox and this static test binary, so
// only tests that need nothing else run here.
func TestVMEbpf(t *testing.T) {
	vmtest.RequireVM(t, "./methods/ebpf")
	t.Run("Tier", testVMTier)
	t.Run("Identity", TestIdentityMatchesProc)
	t.Run("FailedExec", TestFailedExec)
	t.Run("ExitCodeAndThreads", TestExitCodeAndThreads)
	t.Run("ExitOnce", TestExitOncePerThreadGroup)
	t.Run("ArgsTruncated", TestArgsTruncated)
	t.Run("Loss", TestLossReported)
	t.Run("GC", TestGarbageCollection)
	t.Run("CloseNoLeak", TestCloseNoLeak)
	t.Run("Setuid", TestPrivilegeSetuid)
	t.Run("Capset", TestPrivilegeCapset)
	t.Run("Prctl", TestPrivilegePrctl)
	t.Run("UserNS", TestPrivilegeUserNS)
	t.Run("Ptrace", TestPrivilegePtrace)
	t.Run("LSMTier", TestLSMTier)
	t.Run("SandboxSetuid", TestSandboxSetuid)
	t.Run("SandboxBprm", TestSandboxBprmAllowList)
	t.Run("SandboxEachHook", TestSandboxDenyEachHook)
	t.Run("SandboxNeedsLSM", TestSandboxNeedsLSMTier)
	// sched_process_exec kills at the exec tracepoint on both tiers: the
	// 6.12 guest runs it on the LSM tier, the 6.1 guest on the tracepoint
	// tier (no BPF LSM below 6.2).
	t.Run("ExecSandbox", TestExecSandboxKills)
	t.Run("ExecSandboxAllowList", TestExecSandboxAllowList)
	t.Run("ExecSandboxLongList", TestExecSandboxLongList)
	t.Run("RulesAgree", TestKernelRulesAgree)
	t.Run("RuleCost", TestRuleCost)
	t.Run("Storm", func(t *testing.T) { testExecStorm(t, 300) })
}

// testVMTier checks the probe's choice against the guest's kernel: below
// 6.2 the tracepoint tier by version (Debian's 6.1 lists bpf, and an LSM
// program loads there), from 6.2 with bpf listed the LSM tier.
func testVMTier(t *testing.T) {
	r := ProbeTier()
	t.Logf("probe: %s", r)
	v, err := kernel.ParseRelease(r.Kernel)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case v.Less(lsmFloor):
		if r.Tier != TierTracepoint || !strings.Contains(r.Reason, "< 6.2") {
			t.Errorf("kernel %s: %s", r.Kernel, r)
		}
	case lsmListHas(r.LSMs, "bpf"):
		if r.Tier != TierLSM {
			t.Errorf("kernel %s with bpf in %q: %s", r.Kernel, r.LSMs, r)
		}
	}
	if want := os.Getenv(expectTierEnv); want != "" && r.Tier != want {
		t.Errorf("tier %s, %s=%s", r.Tier, expectTierEnv, want)
	}
	src, _ := startSource(t, Config{})
	if src.Tier() != r.Tier {
		t.Errorf("source runs %q, probe said %q (%s)", src.Tier(), r.Tier, src.Status())
	}
	t.Logf("source: %s; programs %v", src.Status(), src.Programs())
}
