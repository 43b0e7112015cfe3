// Package netlink is the proc connector method: a methods.Source that
// subscribes to the kernel's process events over a NETLINK_CONNECTOR socket
// (drivers/connector/cn_proc.c) and hands them to the monitor.
//
// # What the kernel reports
//
// One message per event, sent as it happens, with the thread and thread
// group ids and a CLOCK_MONOTONIC timestamp (turned into wall-clock time
// with an offset measured at Start):
//
//   - fork: parent and child ids. Only the creation of a process (child pid
//     equal to child tgid) becomes a process.EventFork (PID = child tgid,
//     TID = child pid, PPID = parent tgid); thread creation is skipped and
//     counted (Counters.ThreadForks).
//   - exec: process.EventExec (PID = tgid, TID = the thread that called
//     execve).
//   - exit: process.EventExit with ExitCode the wait(2) status, for the
//     thread-group leader only (pid == tgid); other threads' exits are
//     skipped and counted (Counters.ThreadExits). A leader that exits
//     before its other threads is reported when it exits, while the
//     process lives on until its last thread.
//   - uid, gid: process.EventUID / EventGID with Creds.New holding the real
//     and effective ids after the change (UID and EUID, or GID and EGID,
//     as seen from the initial user namespace). The kernel sends no old
//     values and no saved or filesystem ids: Creds.Old and the other
//     fields are zero here, and the monitor fills them from its cache
//     and /proc.
//   - sid (setsid), ptrace (Tracer = the tracer's tgid on attach, 0 on
//     detach), comm (Comm = the new 15-byte name, from prctl(PR_SET_NAME)
//     or a write to /proc/<pid>/comm) and coredump (sent when a dump
//     starts, even when RLIMIT_CORE stops it from being written).
//
// It does not report the binary's path, the arguments, the environment or
// the working directory: the monitor reads them from /proc when the event
// arrives, and may be too late for a short-lived process. Event.Process is
// always nil.
//
// # Privilege and namespaces
//
// The kernel keeps one process-wide count of listeners: Start sends
// PROC_CN_MCAST_LISTEN and waits for the kernel's acknowledgement (a
// PROC_EVENT_NONE message carrying an errno, matched by the cn_msg ack
// number), and Close sends PROC_CN_MCAST_IGNORE before closing the socket
// (a socket closed without it would keep the kernel generating events).
//
// Whether a process without CAP_NET_ADMIN may join the multicast group is
// the kernel's decision, and the version does not settle it: Linux 6.6
// ("connector/cn_proc: Allow non-root users access") made it possible, yet
// machines running 6.18 refuse it (EPERM) as kernels before 6.6 do. Start
// reports that EPERM as ErrUnavailable naming CAP_NET_ADMIN; the tests ask
// the kernel with a probe of their own before expecting either. The kernel
// ignores, without an answer, listeners outside the initial user and pid
// namespaces, and the connector exists only in the initial network
// namespace. Start checks the namespaces (from /proc/self only: no other
// process's namespace files are opened) and returns an error matching
// methods.ErrUnavailable that names the reason in all these cases, or
// when the kernel lacks the connector. The socket is created in the
// network namespace of the caller.
//
// The socket receive buffer is 32 MiB by default (Config.RcvBuf), set with
// SO_RCVBUFFORCE, which needs CAP_NET_ADMIN; without it the kernel caps the
// buffer at net.core.rmem_max and a warning is logged.
//
// # Loss
//
// When the receive buffer overflows, the kernel drops messages and the next
// receive fails with ENOBUFS. The kernel numbers each CPU's messages
// (cn_msg.seq, with proc_event.cpu naming the CPU) from a per-CPU counter
// taken under a CPU-local lock, so the source tracks each CPU's sequence: a
// jump of n is n messages lost. A jump shows only when the CPU sends its
// next message, which may be long after the overflow (the storm that
// caused it is over); so after an ENOBUFS the source reads what the socket
// holds, then makes every CPU the process may run on send a message (a
// thread pinned to each CPU sets its own name to what it is: a comm event
// from that CPU, which the source does not deliver), reads those, and
// reports Sink.Lost(n, ReasonOverflow) with n the messages the sequences
// then show missing, at least 1. While the socket never empties, the CPUs
// are probed 20 ms after the ENOBUFS and the loss is reported 20 ms after
// the probe at the latest, with what is known then. Gaps found outside an
// overflow (on a CPU the process may not run on) are reported as
// Sink.Lost(n, ReasonSeqGap). Stats.Lost is the sum reported. Start gives
// every CPU the process may run on a baseline (it makes the kernel
// acknowledge a request from each of them), so that losses are counted
// from the first message on. Without overflow there are no gaps
// (acknowledgements are numbered too and keep the sequences whole).
// Malformed, truncated and forged messages (not sent by the kernel) are
// skipped and counted in Stats.Errors.
//
// # Cost
//
// One goroutine reads, with recvmmsg into reused buffers, and calls the
// sink synchronously; the only allocation per event is the *process.Event
// (and its CredChange for uid and gid events). Decoding a message takes
// about 10 ns; what costs is waking the reader, about 10 µs of CPU per
// wakeup on the development VM, paid partly by the process whose fork, exec
// or exit sent the message. So after a read that found messages the reader
// sleeps Config.WakeupGap (default 500 µs) before reading again; the messages
// the kernel queues meanwhile wake no thread, as the socket is out of the
// Go runtime's poller (the reader waits in poll(2) on it and on an eventfd
// that Close signals). A lone event reaches the sink at once, an event of a
// burst up to WakeupGap late; WakeupGap < 0 reads every message as it
// comes. See BenchmarkSourceCPU and BenchmarkExecStorm.
//
// The Source is a methods.Batcher: after each recvmmsg batch it calls
// Flush(false) on a sink that implements methods.Flusher, and Flush(true)
// when a read after the gap found nothing (the burst is over) and when it
// stops. The monitor's sink uses that to finish a batch's events together:
// it holds a fork until its child's exec (in the batch or the next), whose
// /proc reads then also give the child's identity; after the batch's
// naming reads it checks each exec's credentials with one capget(2) (the
// kernel's uid and gid events tell the ids an exec changes), reading
// /proc/<pid>/status only when the capability sets changed; and it wakes
// the consumer once per batch, or every 5 ms during a burst (procmon's
// BenchmarkNetlinkFloor measures it against the C floor).
package netlink
