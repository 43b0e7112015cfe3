package ebpf

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/proctrack/proctrack/rules"
)

// Hook names, as seed 000 names them: the keys of Config.Hooks.
const (
	HookSetuid            = "setuid"              // security_task_fix_setuid; setuid family of system calls
	HookSetgid            = "setgid"              // security_task_fix_setgid; setgid family and setgroups
	HookCapset            = "capset"              // security_capset; capset
	HookPrctl             = "prctl"               // security_task_prctl; prctl
	HookCreateUserNS      = "create_user_ns"      // security_create_user_ns; unshare/clone/clone3 with CLONE_NEWUSER
	HookPtraceAccessCheck = "ptrace_access_check" // security_ptrace_access_check; ptrace attach, seize, traceme, detach
	HookBprmCheck         = "bprm_check"          // security_bprm_check; carries the IMA digest into the exec event
	// HookSchedProcessExec is Bombini's exec sandbox: its rules run in the
	// exec tracepoint's program on both tiers, and an exec they deny gets
	// SIGKILL before the new image runs. It only enforces (Config.Sandbox
	// must give its mode); it has no LSM program and no system calls.
	HookSchedProcessExec = "sched_process_exec"
)

// HookNames lists every hook name, in seed 000's order, then Bombini's
// sched_process_exec.
var HookNames = []string{HookSetuid, HookSetgid, HookCapset, HookPrctl, HookCreateUserNS,
	HookPtraceAccessCheck, HookBprmCheck, HookSchedProcessExec}

// AllHooks returns a Hooks map with every hook enabled.
func AllHooks() map[string]bool {
	m := make(map[string]bool, len(HookNames))
	for _, h := range HookNames {
		m[h] = true
	}
	return m
}

// Tier names (Config.Tier, Source.Tier).
const (
	// TierLSM: process events from BTF tracepoints, privilege events from
	// BPF LSM hooks, IMA digests. Kernel >= 6.2 with bpf in the LSM list.
	TierLSM = "lsm"
	// TierTracepoint: process events from BTF tracepoints, privilege events
	// from the sys_exit tracepoint. Any kernel with BTF and ring buffers.
	TierTracepoint = "tracepoint"
)

// Defaults of Config.
const (
	DefaultGCPeriod       = 30 * time.Second
	DefaultRingBufferSize = 8 << 20
	DefaultWakeupGap      = time.Millisecond
)

// Config configures a Source. The zero value runs the best tier with every
// hook, a garbage collection every 30 s and an 8 MiB ring buffer.
type Config struct {
	// Hooks enables privilege hooks by seed 000 name (HookSetuid, ...).
	// On the LSM tier each enabled hook is one LSM program; on the
	// tracepoint tier a hook enables the system calls behind it (see
	// HookSetuid...). nil enables every hook; a non-nil map enables only
	// those set to true, so an empty map reports process events only. A
	// name that is not a hook is an error.
	Hooks map[string]bool
	// IMAHash adds the kernel's IMA digest of the binary to exec events
	// (Process.Checksums[process.HashIMA]) on the LSM tier; it attaches the
	// bprm_check program even if that hook is not enabled. The tracepoint
	// tier has no IMA digests.
	IMAHash bool
	// GCPeriod is how often the in-kernel map of executable paths (LSM
	// tier, rules with scope attributes) is garbage-collected against
	// /proc; 0 means DefaultGCPeriod.
	GCPeriod time.Duration
	// Logger receives the source's logs; nil means slog.Default().
	Logger *slog.Logger

	// Tier forces a tier: "" picks the best that works here, TierLSM
	// fails (with an error matching methods.ErrUnavailable) unless the LSM
	// tier runs, TierTracepoint does not try the LSM tier.
	Tier string
	// RingBufferSize is the ring buffer's size in bytes, rounded up to a
	// power of two of at least one page; 0 means DefaultRingBufferSize.
	RingBufferSize int
	// BatchDelay trades latency for CPU. 0 (the default) has the kernel
	// wake the reader for every record it has caught up with: events reach
	// the sink at once, but each wakeup is an inter-processor interrupt,
	// which costs several microseconds in a virtual machine. With
	// BatchDelay > 0 the kernel wakes the reader only when 64 KiB (a
	// quarter of a smaller ring buffer) wait, and the reader otherwise
	// polls every BatchDelay: events reach the sink up to BatchDelay late.
	BatchDelay time.Duration
	// WakeupGap bounds how often the reader is woken in a burst (with
	// BatchDelay 0). The first record after a quiet spell wakes the reader
	// at once; records that follow within WakeupGap of that wakeup do not
	// wake it. Once it has read the ring buffer empty after records, the
	// reader sleeps (on a timer) and looks again: one WakeupGap after a
	// wakeup, then twice as long after each look that found records, up to
	// BurstSleep's caps (16 WakeupGaps, 128 once a storm has lasted 64),
	// and not again once a look finds nothing; records submitted while it
	// sleeps do not wake it either. So a lone event reaches the sink within
	// about one WakeupGap of the record before it (a lone exec follows its
	// fork), an event of a burst up to about 16 WakeupGaps late, or 128 in
	// a storm that lasts (plus the timer's slack), and a storm costs the
	// producers no wakeup and the reader about ten looks a second instead
	// of one wakeup per record. 0 means DefaultWakeupGap
	// (1 ms); a negative value wakes the reader for every record it has
	// caught up with. The reader looks again at least every 200 ms
	// whatever the gap.
	WakeupGap time.Duration
	// BurstSleep is the longest the reader sleeps between two looks at
	// the ring buffer through a burst (see WakeupGap): the latency of a
	// storm's events against the monitor's CPU (a look costs a few hundred
	// µs in a VM). 0 means two caps: 16 WakeupGaps (16 ms by default, under
	// the 20 ms a lone exec is allowed) until the burst has lasted 64
	// WakeupGaps, then 128 WakeupGaps while its records come at 2,000 a
	// second or more (about 700 short-lived processes a second; a slower
	// trickle keeps 16); > 0 is the one cap throughout; at
	// most 200 ms (the poll interval) either way. A lone event is not
	// affected. On the development VM a 1,000-exec storm of /bin/true cost
	// about 60 looks with 16 ms throughout (28-40 µs of monitor CPU per
	// exec, 0.93x its unmonitored rate) and 12 with 200 ms (18-20 µs,
	// 0.97x); the default's two caps cost about what 200 ms does (18-21
	// µs, 0.94-0.99x on a busier VM; README, "Measured here").
	BurstSleep time.Duration
	// NoCWD leaves the working directory out of exec and fork events (one
	// path walk less in the kernel per event); the monitor reads it later.
	NoCWD bool
	// Rules are the privilege hooks' rules. On the LSM tier they are
	// compiled into BPF map tables and evaluated in the kernel: an
	// operation of a hook with rules is reported only when a rule matches
	// it (or the sandbox denied it), with Event.Matched naming the rules
	// and Event.MatchedInKernel set; an unmatched credential change comes
	// marked Event.CacheOnly, for the cache. The tracepoint tier ignores
	// them (the monitor evaluates them in userspace). nil means no rules.
	Rules *rules.Set
	// Sandbox enforces the rules of a hook in the kernel (SandboxHooks
	// only; it enables the hook). Sandbox mode needs the LSM tier: Start
	// fails with an error matching ErrSandbox where it does not run. The
	// exception is HookSchedProcessExec, which kills at the exec
	// tracepoint and runs on both tiers.
	Sandbox map[string]SandboxMode
	// NoProcCompletion keeps the source from reading /proc to complete a
	// record the kernel had to cut (arguments over 4 KiB, a path over 64
	// components or 4 KiB, more than 32 groups): such events are then
	// delivered with Process.Incomplete set.
	NoProcCompletion bool
}

// wakeupBytes returns the ring buffer fill that wakes the reader (0: every
// record).
func (c *Config) wakeupBytes(ringSize uint32) uint64 {
	if c.BatchDelay <= 0 {
		return 0
	}
	return uint64(min(64<<10, ringSize/4))
}

// wakeupGap returns the kernel's wakeup gap (0: none; see WakeupGap).
func (c *Config) wakeupGap() time.Duration {
	switch {
	case c.BatchDelay > 0 || c.WakeupGap < 0:
		return 0
	case c.WakeupGap == 0:
		return DefaultWakeupGap
	}
	return c.WakeupGap
}

// burstSleep returns the reader's longest sleeps through a burst with the
// wakeup gap gap (see BurstSleep).
func (c *Config) burstSleep(gap time.Duration) burstCaps {
	if c.BurstSleep > 0 {
		d := min(c.BurstSleep, pollInterval)
		return burstCaps{short: d, long: d}
	}
	return burstCaps{short: min(burstGaps*gap, pollInterval), long: min(longBurstGaps*gap, pollInterval), after: longBurstAfter * gap}
}

// poll returns how often the reader wakes by itself when it has read
// nothing lately.
func (c *Config) poll() time.Duration {
	if c.BatchDelay > 0 {
		return min(c.BatchDelay, pollInterval)
	}
	return pollInterval
}

// hooks returns the enabled hooks, or an error naming an unknown one.
func (c *Config) hooks() (map[string]bool, error) {
	if c.Hooks == nil {
		return AllHooks(), nil
	}
	on := make(map[string]bool)
	for name, enabled := range c.Hooks {
		if !slices.Contains(HookNames, name) {
			return nil, fmt.Errorf("ebpf: unknown hook %q (want one of %v)", name, HookNames)
		}
		if enabled {
			on[name] = true
		}
	}
	return on, nil
}

// sandbox returns the sandboxed hooks, or an error for a hook that cannot
// deny. It adds them to hooks.
func (c *Config) sandbox(hooks map[string]bool) (map[string]SandboxMode, error) {
	out := map[string]SandboxMode{}
	for h, mode := range c.Sandbox {
		if mode == SandboxOff {
			continue
		}
		if !slices.Contains(SandboxHooks, h) {
			return nil, fmt.Errorf("ebpf: %w: hook %q cannot deny (sandbox hooks: %v)", ErrSandbox, h, SandboxHooks)
		}
		if mode != SandboxAllowList && mode != SandboxDenyList {
			return nil, fmt.Errorf("ebpf: %w: hook %s: unknown mode %d", ErrSandbox, h, mode)
		}
		out[h] = mode
		hooks[h] = true
	}
	return out, nil
}

// needsLSM returns the sandboxed hooks that only the LSM tier can enforce
// (all but sched_process_exec), sorted.
func needsLSM(sandbox map[string]SandboxMode) []string {
	var out []string
	for h, mode := range sandbox {
		if mode != SandboxOff && h != HookSchedProcessExec {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}

// ringSize returns the ring buffer size to use.
func (c *Config) ringSize(pageSize int) uint32 {
	n := c.RingBufferSize
	if n <= 0 {
		n = DefaultRingBufferSize
	}
	size := pageSize
	for size < n && size < 1<<30 {
		size <<= 1
	}
	return uint32(size)
}
