// Package seccomp lets an agent that embeds proctrack shrink the kernel
// surface it exposes, and reports seccomp violations of any process on
// the host.
//
// # Policies
//
// A Policy is seed 002's shape, read from YAML by ParsePolicy, or from a
// file by LoadPolicy (with or without the top-level `seccomp:` key), of at
// most 4 MiB (MaxPolicyBytes: a larger one is refused before it is parsed,
// ErrTooLarge):
//
//	seccomp:
//	  enabled: true          # false: Install does nothing
//	  default_action: allow  # required: the action for calls no group names
//	  log_violations: false  # extension: SECCOMP_FILTER_FLAG_LOG (Linux 4.14)
//	  syscalls:              # at least one group, matched in order
//	    - action: errno
//	      names: [execve, execveat, fork, vfork]
//
// The actions, and what each does to the caller:
//
//	errno         the call fails with EPERM and does not run (3.17*)
//	trace         a ptrace tracer is notified; without one the call fails with ENOSYS (3.17*)
//	trap          SIGSYS is sent to the calling thread, the call does not run; the Go runtime crashes (3.17*)
//	kill_thread   the calling thread is killed at once; the others go on (3.17*)
//	kill_process  the whole process is killed at once (4.14)
//	log           the call runs and is logged to the audit log (4.14)
//	allow         the call runs (3.17*)
//
// (*) The action exists since seccomp filters (3.5); Install needs 3.17
// for seccomp(2) with TSYNC.
//
// Everything is checked before anything is loaded: a missing or unknown
// default_action, a group without action or names, an unknown action, a
// system call name the running architecture does not have, a name twice
// in a group, an unknown key. The error is a *PolicyError naming the entry
// ("syscalls[1].names[2]: unknown syscall \"exeve\" for x86_64 (line 9,
// column 11)"; a YAML syntax error gives the line of the problem; a value
// quoted is cut to 64 bytes) and matches ErrInvalidPolicy. Install then
// checks the kernel version against each action's floor (Action.MinKernel),
// sets no_new_privs and loads the filter for every thread of the process
// (SECCOMP_FILTER_FLAG_TSYNC). A filter cannot be removed; threads, children
// and exec'd programs inherit it.
//
// The filter is assembled by github.com/elastic/go-seccomp-bpf (its
// system call tables and its BPF assembler, which also refuses the x32
// ABI on x86_64); the load is done here, not by its LoadFilter, which does
// not lock the OS thread between prctl(PR_SET_NO_NEW_PRIVS) and seccomp(2)
// and reads TSYNC's failure (a thread id returned without errno) as
// success. Its errno action always returns EPERM, and argument conditions
// (names_with_args) are not offered.
//
// # The built-in policy
//
// DefaultPolicy is an allow list for amd64 and arm64 of what proctrack
// needs with every method running, the process cache, checksums and the
// Go runtime; other calls fail with EPERM and are logged (log_violations).
// The list is derived, not guessed: see allowlist.go and
// TestDeriveSyscalls. An agent adds its own calls before Install:
//
//	p := seccomp.DefaultPolicy()
//	p.Syscalls = append(p.Syscalls, seccomp.SyscallGroup{Action: seccomp.ActionAllow, Names: []string{"accept4", "listen"}})
//	if err := p.Install(); err != nil { ... }
//
// # Violations
//
// The kernel writes an AUDIT_SECCOMP record when a filter returns
// kill_process, kill_thread or log, or any action but allow for a filter
// installed with the log flag, if the action is listed in
// /proc/sys/kernel/seccomp/actions_logged. A Watcher (or WatchViolations)
// reads them from the audit multicast group, read-only, whatever method
// the monitor runs, and delivers each as a process.Event of Kind
// process.EventSeccomp, the ActionViolated ("violated-seccomp-policy")
// event: PID, Process (pid, comm, exe, uid), Syscall.Name, Number, Arch
// and SeccompAction. A monitor running the audit method reports the same
// events among its own.
package seccomp
