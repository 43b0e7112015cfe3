// Package audit is proctrack's kernel audit method: a methods.Source that
// installs audit rules (with github.com/elastic/go-libaudit/v2, which also
// reads and sets the audit status), reads the kernel's audit records over
// netlink, groups them into events by serial number and turns them into
// process events. It needs CAP_AUDIT_CONTROL (and
// CAP_AUDIT_READ in multicast mode) in the initial user and pid namespace;
// without them Start fails with an error matching methods.ErrUnavailable
// that names the capability.
//
// # What it reports
//
// Everything comes from the records, so an event is complete even when
// the process is gone by the time it is read:
//
//   - EventExec (execve, execveat): Process with ID, PPID, Comm, Path (the
//     exe= of the SYSCALL record: the binary the kernel runs, the
//     interpreter for a script, as /proc/<pid>/exe names it; PATH item 0
//     when exe is missing), Args (the EXECVE records: argc, every argument
//     whole, hex-decoded where the kernel hex-encodes it, long arguments
//     joined from their pieces), CWD, Creds (uid, euid, suid, fsuid, gid,
//     egid, sgid, fsgid after the exec; the capability sets too when a
//     BPRM_FCAPS record shows them changed), UID = euid.
//   - EventExit (exit_group): ExitCode is the wait(2) status of a normal
//     exit, (a0 & 0xff) << 8, as the other methods report it.
//   - EventUID (setuid, setreuid, setresuid, setfsuid and the 32-bit
//     *32 variants) and EventGID (setgid, setregid, setresgid, setfsgid,
//     setgroups): Creds.New holds the eight ids after the call. The
//     supplementary groups are not in the records: New.Groups is nil.
//   - EventCapset: Creds.New has the ids and, from the CAPSET record, the
//     inheritable, permitted, effective and ambient sets (the bounding set
//     is not in it).
//   - EventPrctl: every prctl that changes something (the PR_GET_* options
//     and PR_CAPBSET_READ are filtered out in the kernel); Syscall.Args are
//     a0..a3, a0 the option (38 for PR_SET_NO_NEW_PRIVS).
//   - EventPtrace for PTRACE_ATTACH, PTRACE_SEIZE, PTRACE_TRACEME and
//     PTRACE_DETACH: PID is the traced process, Tracer the tracing one. For
//     ATTACH and SEIZE the caller is the tracer and the target comes from
//     the OBJ_PID record (a1 when it is missing), Process is the target
//     (pid and comm); for TRACEME the caller is traced by its parent; for
//     DETACH the target is a1 and Tracer is 0.
//   - EventUserNS: unshare or clone with CLONE_NEWUSER (a0 bit 0x10000000,
//     filtered in the kernel). For unshare PID is the caller; for clone it
//     is the child the call returned (the pid as the caller sees it, which
//     differs from the host's only when the caller is in a pid namespace),
//     with PPID the caller.
//   - EventSeccomp: an AUDIT_SECCOMP record, which the kernel writes
//     without any rule when a seccomp filter returns KILL_PROCESS,
//     KILL_THREAD or LOG, or any action but ALLOW when the filter was
//     installed with SECCOMP_FILTER_FLAG_LOG, and the action is listed in
//     /proc/sys/kernel/seccomp/actions_logged. An ERRNO (or TRAP, TRACE,
//     USER_NOTIF) action of a filter without that flag is never logged.
//     Process carries pid, comm, exe and the real uid (all the record has);
//     Syscall has Name (resolved with go-libaudit's table for the record's
//     arch), Number, Arch ("x86_64") and SeccompAction ("kill_process",
//     "kill_thread", "trap", "errno", "user_notif", "trace", "log",
//     "allow"). The record has neither the syscall's arguments nor the
//     errno an ERRNO action returns.
//
// Every event has Method "audit", Time from the record's timestamp
// (millisecond resolution) and, when a SYSCALL record exists, Syscall with
// Name, Number, Arch, Args a0..a3 and Result. The SYSCALL record does not
// say which thread made the call: TID is 0. Only successful calls are
// reported, except exit_group (which never returns) and seccomp actions.
//
// # Rules
//
// Start installs these rules (Rules returns them), each for -F arch=b64
// and -F arch=b32 (on x86_64 the i386 table, with the *32 variants of the
// id calls; a b32 rule the kernel refuses is skipped with a warning), all
// with the keys "proctrack" and "proctrack-owner=<pid>-<start ticks>.<n>"
// naming the instance that installed them:
//
//	-a always,exit -S execve,execveat -F success=1
//	-a always,exit -S exit_group
//	-a always,exit -S setuid,setreuid,setresuid,setfsuid -F success=1
//	-a always,exit -S setgid,setregid,setresgid,setfsgid,setgroups -F success=1
//	-a always,exit -S capset -F success=1
//	-a always,exit -S prctl -F a0!=<each PR_GET_* option, PR_CAPBSET_READ> -F success=1
//	-a always,exit -S ptrace -F a0=0 -F success=1        (PTRACE_TRACEME)
//	-a always,exit -S ptrace -F a0=16 -F success=1       (PTRACE_ATTACH)
//	-a always,exit -S ptrace -F a0=17 -F success=1       (PTRACE_DETACH)
//	-a always,exit -S ptrace -F a0=16902 -F success=1    (PTRACE_SEIZE)
//	-a always,exit -S unshare,clone -F a0&0x10000000 -F success=1
//
// clone3 is not audited: its flags are in a structure the rule cannot
// test, and auditing every clone3 (every thread glibc creates) would cost
// too much; a clone3 with CLONE_NEWUSER is missed, and so is setns into a
// user namespace. Rules are added with go-libaudit's rule API (never
// auditctl). Before adding its own, Start deletes the "proctrack" rules
// left by a run that is over (no owner key, or an owner process that is
// gone); rules of a live proctrack elsewhere are kept.
//
// Records are converted from any rule, not only these, so a record of
// another daemon's execve rule is an exec event all the same. Only the
// record types the conversion reads are grouped: a record written outside
// a system call (CONFIG_CHANGE, AVC, USER_*) stands alone, with no
// end-of-event record, and would hold back the events after it until the
// reassembly timeout.
//
// # Grouping
//
// The records of an event share a serial number; the event ends with its
// EOE record (a SECCOMP record, which has none, ends its own). Events are
// delivered in the order of their serials: a complete event waits for the
// incomplete ones before it, which are delivered as they are once they
// have waited Config.ReassemblyTimeout (1 s) or once more than
// Config.MaxInFlight (256) events are in flight. A record that comes after
// its event was so delivered is dropped and counted in Stats.Errors, as is
// a record without a valid "audit(<time>:<serial>)" header. This is what
// go-libaudit's Reassembler did, which the source used before, without
// allocating (its buffers are reused) where that header parse and
// reassembly made two allocations per record and five per event.
//
// # Unicast and multicast
//
// With no audit daemon, the source becomes the audit pid (the process the
// kernel sends records to), enables audit if it was off, and sets the
// backlog limit (Config.BacklogLimit; by default it raises a limit below
// 8192) and the backlog wait time (kept when the kernel has one), so that
// a burst makes audited system calls wait for room rather than lose
// records. If another live process owns the audit socket (auditd,
// another agent), the source does not take over: it reads the read-only
// multicast group (which needs CAP_AUDIT_READ), still adds its rules and
// enables audit if it was off, and leaves the pid and the backlog settings
// to the owner. Status reports which mode runs; a source stays in its mode
// until Close, even if the owner goes away. In multicast mode the
// kernel does not wait for this reader: a burst it cannot keep up with
// overflows the socket (ENOBUFS, reported as a loss of unknown size), and
// the other daemon receives (and may log) the records of proctrack's rules
// too.
//
// # Losses
//
// The kernel's lost counter is read every Config.StatusInterval and its
// increase is reported with Sink.Lost; so are gaps in the record serial
// numbers (a serial still missing after twice the reassembly timeout, 2 s
// at least), and socket overflows. The two counts can
// overlap (a record the kernel drops is both counted and missing) and, in
// multicast mode, the kernel's counter also counts records the other
// daemon failed to receive. Malformed records are skipped and counted in
// Stats.Errors.
//
// # Faults
//
// Any other process with CAP_AUDIT_CONTROL can undo what the source set up
// (auditctl -D deletes its rules, auditctl -e 0 disables audit), and the
// records stop without an error. So the source checks, every
// Config.CheckInterval (2 s) and soon after any CONFIG_CHANGE record (the
// kernel writes one for each such change; checks are at least 100 ms
// apart), that audit is enabled, that its rules are in the kernel and, in
// unicast mode, that this process is still the audit pid. Each change it
// finds is a fault: logged (slog, warning), counted (Stats.Faults,
// Status.Faults and LastFault), reported to the sink as a loss of unknown
// size (the monitor repairs its cache from /proc), and repaired: audit
// enabled again, the missing rules added again (Close still restores what
// Start found). A fault it cannot repair (the rules or the enabled flag
// refused, the audit pid another process's) stops the reader with an
// error (Err, Done: methods.Failer), and a monitor falls back to the next
// method. A rule deleted and re-added by the other process under the same
// text is not a fault.
//
// # Cost
//
// The event socket is read out of the Go runtime's poller: the reader
// waits in poll(2) on it and on an eventfd that Close signals. After it has
// read records and found no more, it sleeps Config.WakeupGap (default
// 500 µs) before reading again, so that the records kauditd queues
// meanwhile wake no thread; an event of a burst reaches the sink up to
// WakeupGap late, a lone one at once. In a poller, every record woke a
// runtime thread, a third of the reader's CPU in an exec storm. Each read
// takes up to 16 records with one system call (recvmmsg(2): a storm's
// exec'd /bin/true, exec and exit, is 11 records; the reads went from
// 29-37 to 14 µs of CPU per exec in profiles) into buffers of 16 KiB that
// it keeps (256 KiB in all): the kernel writes no record above 8,970 bytes
// (MAX_AUDIT_MESSAGE_LENGTH); a longer one would be cut and counted in
// Stats.Errors. PROCTITLE records are dropped before parsing, and a
// record's fields are parsed into a slice reused from one event to the
// next. The records of an event are copied into buffers the source reuses
// and converted from there: an event keeps copies of its strings only
// (comm, exe and cwd shared through internal/intern); an event, its
// Syscall and its arguments are one allocation, its Process another (with
// no Checksums map: the records carry none), its Args a third: 9
// allocations for an exec and its exit (BenchmarkReceive), against 34 with
// go-libaudit's header parse and Reassembler. BenchmarkAuditFloor measures
// the reader against a C floor that receives the same records the same
// way (internal/floor).
//
// # Close
//
// Close (or the end of Start's context) deletes the source's rules, sets
// the enabled state back to what it was, gives back the audit pid (unicast
// mode), restores the backlog limit and wait time, closes the sockets and
// waits for the reader goroutine. A process killed with SIGKILL cannot do
// this: the kernel drops its registration by itself, the next Start
// deletes the leftover rules, but audit stays enabled.
//
// # What it misses
//
//   - Forks: no fork, vfork or clone rule is installed (a process shows up
//     with its exec); the monitor learns of forks from /proc.
//   - Exits by a signal: a process killed by a signal makes no exit_group
//     call, so no exit record; nor does one whose last thread calls exit.
//     The monitor's /proc reconciliation removes those.
//   - Processes that were already running when audit was first enabled
//     since boot: the kernel gives a task an audit context at fork only
//     once audit has been enabled, so their system calls are never audited
//     (boot with audit=1 to cover everything). Their children are.
//   - The supplementary groups of setgroups, the bounding set, and which
//     thread made a call.
//   - In unicast mode, the source's own process: the kernel does not audit
//     its audit daemon's system calls.
package audit
