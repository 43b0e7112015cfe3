// Package ebpf is the eBPF monitoring method: BPF programs (package bpf,
// CO-RE, loaded with cilium/ebpf) report process events and privilege
// changes through one ring buffer. It is the best method of the fallback
// ladder; see methods.Source.
//
// # Tiers
//
// Start probes the host and runs the best tier that works (Config.Tier can
// force one); Tier and Status say which runs and why the other was skipped,
// ProbeTier says it without starting anything.
//
//   - LSM tier: Linux >= 6.2 (by version, even where an LSM program would
//     load on an older kernel), "bpf" in the active LSM list
//     (/sys/kernel/security/lsm; securityfs is mounted for the read if it is
//     not, and unmounted again), and a test LSM program that loads and
//     attaches. Process events come from the BTF tracepoints below;
//     privilege events from BPF LSM programs on the seven hooks of seed 000
//     (task_fix_setuid, task_fix_setgid, capset, task_prctl, userns_create,
//     ptrace_access_check, bprm_check_security), each attached only when its
//     Config.Hooks entry is on. The programs pass the kernel's decision
//     through unchanged unless Config.Sandbox makes a hook deny (see Rules
//     in the kernel below). With Config.IMAHash, bprm_check
//     stashes bpf_ima_file_hash's digest of the binary and the exec event
//     carries it as Process.Checksums[process.HashIMA] ("sha256:<hex>").
//   - Tracepoint tier: any kernel with BTF and BPF ring buffers (5.8+).
//     Process events from the same tracepoints; privilege events from the
//     tp_btf sys_exit tracepoint (the raw syscall tracepoint, which exists
//     whether or not the per-syscall ones do, and needs no tracefs), with a
//     system call number filter in an array map so that only watched calls
//     cost more than a lookup. Report-only by nature. x86_64 only (other
//     architectures get the process events); 32-bit (ia32) calls are
//     reported with their own numbers and Arch "i386".
//
// There is no in-kernel map of live processes (seed 000's
// PROCMON_PROC_MAP): the records carry the whole process, the monitor's
// cache is the map of live processes, and nothing in the kernel read it.
// Writing it cost a hash-map lookup and update on every fork and exec.
//
// # What each event carries
//
// EventExec (tp_btf sched_process_exec, which fires only for an execve that
// succeeded) and EventFork (sched_process_fork, only when the child leads a
// new thread group: threads are not processes) carry the whole process, so
// the monitor caches it without reading /proc: ID (tgid), PPID
// (real_parent's tgid), Starttime (task->start_boottime in USER_HZ ticks,
// exactly /proc/<pid>/stat field 22) and StartedAt, Comm, Path (the real
// path of the executable, built in the kernel by walking dentries and
// mounts: up to 64 components and 4 KiB), Args (the new image's argument
// area, NUL-separated so arguments with spaces stay whole, up to 4 KiB), CWD
// (the same walk; Config.NoCWD leaves it out), Creds (all uids and gids, up
// to 32 supplementary groups, the five capability sets, no_new_privs,
// seccomp mode, the user namespace's inode), NS (every namespace inode),
// ExeDev and ExeInode, ExeDeleted, KernelThread (Path is then
// process.KernelConnection). Path is the path in the process's mount
// namespace, as /proc/<pid>/exe names it; RealPath is Path, or
// /proc/<pid>/root + Path for a process in another mount namespace. Cgroup is filled on hosts with the unified
// cgroup hierarchy only (from the v2 cgroup id, resolved once per cgroup);
// elsewhere the monitor reads it. A fork carries the parent's image as the
// child has it (its arguments are read through the parent's identical
// memory).
//
// When the kernel had to cut something (arguments over 4 KiB, a path over
// its bounds, more than 32 groups) or could not read it, the source reads
// the rest from /proc at once, checking that the pid still has the same
// start time and that /proc's copy extends what the kernel saw; when that
// fails (the process is gone, or Config.NoProcCompletion) the event has
// Process.Incomplete set and what was read: a cut argument list is its
// first 4 KiB (the last argument may be cut), a cut path is left empty.
// Counters.ArgsCut and PathCut count such records.
//
// EventExit (sched_process_exit, for the last thread of the group: the
// tracepoint's group_dead where the kernel passes it (newer kernels such
// as 6.18; checked in the kernel's BTF at load), else
// signal->live having dropped to zero, which the exiting threads of a
// group can all see, so the first of them claims the group in an LRU map
// and the others send nothing) carries a Process with the identity
// (ID, PPID, Starttime, StartedAt, Comm), and ExitCode, the wait(2) status.
//
// Privilege events (reported on both tiers; denied on the LSM tier only
// in sandbox mode, see below):
//
//	hook                 kind         tracepoint tier (successful calls)         LSM tier
//	setuid               EventUID     setuid setreuid setresuid setfsuid[32]     task_fix_setuid
//	setgid               EventGID     setgid setregid setresgid setfsgid         task_fix_setgid
//	                                  setgroups[32]
//	capset               EventCapset  capset                                     capset
//	prctl                EventPrctl   prctl (every option)                       task_prctl
//	create_user_ns       EventUserNS  unshare, clone, clone3 with CLONE_NEWUSER  userns_create
//	ptrace_access_check  EventPtrace  ptrace TRACEME ATTACH SEIZE DETACH         ptrace_access_check (attach modes)
//	bprm_check           EventExec    -                                          bprm_check_security (Event.Bprm, IMA)
//
// On the tracepoint tier Creds.New holds the caller's credentials after the
// call and Creds.Old is left zero (the monitor fills it from its cache);
// Syscall has the name, number, architecture, the six raw arguments and
// the result. setfsuid/setfsgid, which return the old id whatever happens,
// are reported when the id changed. A clone with CLONE_NEWUSER is reported
// by the child (PID is the child, its credentials those of the new
// namespace); ptrace ATTACH and SEIZE name the tracee as PID (the pid as
// the tracer's pid namespace sees it) and the caller as Tracer, DETACH has
// Tracer 0, TRACEME names the caller and its parent. On the LSM tier
// Creds.Old and New are both exact (the hook sees both) and Creds.Flags
// holds the LSM_SETID_* flags; ptrace names the tracee, Tracer and the mode
// (PtraceMode); prctl carries its option and arguments in Prctl and
// Syscall. bprm_check adds Event.Bprm to the exec event that follows it
// (the binary's path, set-user-ID, set-group-ID, nosuid, fileless; file
// capabilities are read from the path when the record is decoded).
//
// # Rules in the kernel and sandbox mode
//
// On the LSM tier Config.Rules are compiled (rules.go) into BPF map
// tables: hook_tables (per hook: its operations, the attributes its
// comparisons use, the sandbox mode), rule_ops (each rule's scope and
// event in postfix form), rule_ints and rule_strs (each value a rule names
// -> the bits of the comparisons it satisfies). A hook program ORs the bits
// of the operation's values (one lookup per integer or string attribute,
// one per path component for a prefix), runs the operations with bpf_loop
// over a stack of bits, and reports the operation only when a rule matched
// it (Event.Matched from the rules' bits, Event.MatchedInKernel) or the
// sandbox denied it; a hook without rules reports everything. Credential
// changes (setuid, setgid, capset) that no rule matched are still sent,
// marked Event.CacheOnly: a monitor keeps its cache's credentials true with
// them and does not deliver them. The scope
// attributes read exe_paths, the executable path of each process (written
// at exec from bprm_check's bpf_d_path, copied at fork, removed at exit,
// seeded from /proc at Start and garbage-collected against /proc every
// Config.GCPeriod, default 30 s); it is kept only when a rule uses them. Config.Sandbox turns
// a hook's rules into decisions: SandboxDenyList denies what a rule
// matches, SandboxAllowList what a rule's scope covers and no rule
// matches; the program then returns -EPERM and the record carries the
// verdict (Event.Verdict). Sandbox mode on the tracepoint tier, or on a
// hook that cannot deny (prctl, ptrace_access_check), is an error matching
// ErrSandbox at Start.
//
// sched_process_exec (Bombini's exec sandbox, HookSchedProcessExec) is the
// exception: its rules run in the exec tracepoint's program (handle_exec)
// on both tiers, so exec blocking works without BPF LSM. There the program
// walks the new binary's path again (the scope's binary_*; parent_binary_*
// read exe_paths, which handle_exec keeps on the tracepoint tier), looks
// each argument after argv[0] up in rule_strs (attribute A_ARG: every
// argN comparison has its bit, and an argument satisfies those whose
// values it equals), runs the operations, and sends SIGKILL
// (bpf_send_signal) to an exec its sandbox denies: the task takes it on
// its way back to user mode, before the new image runs an instruction. The
// exec record carries the answer: Event.Verdict is process.VerdictKilled
// (or VerdictAllowed), Event.Matched names the rules. The hook only
// enforces: its rules need a Config.Sandbox mode. From a tracepoint the
// kernel sends the signal through a per-CPU irq_work: while one is still
// pending on the CPU (a kill an instant before), bpf_send_signal fails
// with EBUSY, and the exec is then reported VerdictAllowed, counted in
// Stats().Errors and logged as a warning, not killed.
//
// The limits are package rules' (64 rules per hook, 64 operations per
// rule, 65536 values after one "in"), plus MaxKernelString (255 bytes per
// string: an exec argument longer than that equals no rule's value) and
// 4096 comparisons of ids and strings per hook. Values do not count: each
// is one entry of rule_ints or rule_strs, sized to the rules, and costs
// nothing per operation, so a list of thousands costs what a list of one
// does (in kernel memory, about 0.8 KB per string value: a 260-byte key
// and 512 bytes of comparison bits; 0.5 KB per integer). sched_process_exec reads at most the first 2 MiB of an exec's
// argument area (and 1,048,576 pieces of it: arguments, or 255-byte parts
// of longer ones). The tracepoint tier ignores the other hooks' rules (the
// monitor evaluates them in userspace).
//
// # Losses
//
// One BPF ring buffer (Config.RingBufferSize, default 8 MiB) carries every
// record. A record that finds it full is dropped and counted in a per-CPU
// array in the kernel, per record kind. The reader adds the counts up every
// 200 ms (and at Close) and reports what is new with sink.Lost(n, "ring
// buffer full"), which makes the monitor repair its cache from /proc, once
// it has delivered the records that were queued when it saw the loss (all
// those submitted before the lost ones): the repair then comes after the
// backlog, so a process whose fork was queued and whose exit was lost is
// found gone, not left live. Stats().Lost and LostTimes count what was
// reported; Counters has the losses by kind as the kernel counts them.
//
// # Cost and latency
//
// A wakeup of the reader is an irq_work (a self-IPI), which in a virtual
// machine costs 10-25 µs, paid by the process whose exec or exit made the
// record (the exec program itself takes about 3 µs, the exit program 1 µs,
// the sys_exit filter about 50 ns per system call on the development VM).
// So the kernel wakes the reader only for the first record after a quiet
// spell: records submitted before the programs' quiet_until_ns do not wake
// it, and a wakeup sets that Config.WakeupGap (default 1 ms) ahead. The
// reader, once it has read the ring buffer empty after records, sleeps on a
// Go timer, sets quiet_until_ns to the end of that sleep (a store into the
// programs' memory-mapped global data: records submitted meanwhile do not
// wake it either) and then reads what has come, until a look finds
// nothing; then it waits for a wakeup (epoll_wait, at most 200 ms). Its
// first sleep after a wakeup is WakeupGap; each look that finds records
// doubles it, up to 16 WakeupGaps until the burst has lasted 64, then up
// to 128 WakeupGaps while records come at 2,000 a second or more (about
// 700 short-lived processes; a slower trickle keeps 16) (at most 200 ms;
// Config.BurstSleep sets one cap
// instead; a look that read more than a quarter of the ring buffer halves
// the sleep, so that a storm of large records does not fill it). A look
// costs the monitor a few hundred µs in a VM, mostly the Go runtime waking
// threads (the timer's, the consumer's, sysmon), so a storm that lasts is
// read every 128 ms (about ten looks a second) and the producers pay no
// wakeup. A lone exec reaches the sink within about 1-2
// ms (its fork's record wakes the reader, its exec's comes within the
// gap), also among a trickle of other processes' records; an event of a
// short burst or a trickle up to about 16 WakeupGaps late, of a storm that
// has lasted over 64 WakeupGaps up to about 128 (or BurstSleep). WakeupGap < 0 wakes the
// reader for every record it has caught up with (the kernel's default).
// Config.BatchDelay > 0 instead wakes the reader only once 64 KiB wait and
// lets it poll every BatchDelay.
//
// # Privileges
//
// Loading needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN (root has them);
// the LSM test program and the LSM tier need the same. The source must run
// in the initial (host's) pid namespace: the programs report pids as that
// namespace numbers them, which a child pid namespace's /proc and pids do
// not match, and translating them would need bpf_get_ns_current_pid_tgid
// in the programs; so in a container without the host's pid namespace
// (docker --pid=host, hostPID in Kubernetes) Start refuses, naming the
// namespace. Without the privileges, or without kernel BTF (/sys/kernel/btf/vmlinux) or ring buffers, or when the
// verifier rejects a program (its last lines are in the error), Start
// returns an error matching methods.ErrUnavailable that says why, and the
// monitor takes the next method. The memlock rlimit is removed (cilium/ebpf
// rlimit) where the kernel still charges BPF memory to it. Reading
// /proc/<pid>/{exe,cmdline,cwd} to complete cut records needs the usual
// ptrace-read access, which root has.
//
// # Testing other kernels
//
// The tests run on the host's tier. TestVMEbpf runs them (those that need
// no tool beyond busybox) inside the qemu guests of internal/vmtest, and
// skips elsewhere:
//
//	go run ./internal/vmtest/cmd/vmtest -pkg ./methods/ebpf -run '^TestVM'
//
// On Debian's 6.12 with lsm=...,bpf it checks that the LSM tier is chosen
// and runs it with every hook and IMAHash (TestLSMTier: LSM records for
// setuid, capset, prctl, userns_create and ptrace, and an IMA digest equal
// to the binary's sha256), the rules in the kernel against package rules
// (TestKernelRulesAgree) and sandbox denials (TestSandboxSetuid,
// TestSandboxBprmAllowList); on Debian's 6.1, whose LSM list has bpf, that
// the tracepoint tier is chosen by version ("kernel 6.1 < 6.2"), that the
// CO-RE programs load and report there, and that sandbox mode is refused.
// On both, sched_process_exec kills (TestExecSandboxKills). PROCTRACK_EBPF_EXPECT_TIER=lsm or
// =tracepoint makes TestTierProbe and TestVMEbpf fail unless the probe
// chose that tier.
package ebpf
