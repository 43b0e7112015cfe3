// Package sockebpf records in the kernel which process owns a socket, so
// that a firewall can name the process behind a connection without a
// /proc scan, even when a short-lived client is gone before userspace asks.
//
// Open loads the programs of bpf/sockets.c and attaches them; the Map it
// returns answers by socket inode (PIDOfInode, Owner: it implements
// sockets.Config.SocketMap) and by connection 5-tuple (Lookup). Entries
// live in two LRU hash maps of 65,536 entries each in the kernel; the
// oldest are evicted first, nothing else removes them.
//
// # Hooks and what they cover
//
//   - tp_btf/inet_sock_set_state to SYN_SENT (connect(), process context):
//     an outgoing TCP connection's owner by inode; when the connection
//     becomes ESTABLISHED (the source port is bound by then) the owner is
//     recorded under the TCP 5-tuple too. A connection that never gets
//     established (refused, timed out) has its inode entry only.
//   - inet_sock_set_state to LISTEN (listen(), process context): a
//     listening socket's owner by inode.
//   - tp_btf/sock_send_length and sock_recv_length (every send and receive
//     through sock_sendmsg/sock_recvmsg, process context): the owner of any
//     IPv4/IPv6 socket by inode, and by 5-tuple when it is connected
//     (TCP, connected UDP and UDP-Lite). This is what covers accept()ed
//     sockets: they are recorded at their owner's first read or write.
//   - cgroup/sendmsg4 and cgroup/sendmsg6 on the root cgroup v2 (an
//     unconnected UDP or UDP-Lite sendto/sendmsg, process context): the
//     owner by 5-tuple with the call's destination. The source address is
//     the socket's bound address (or the IP_PKTINFO one); a socket bound to
//     the wildcard address is recorded with the unspecified source (:: or
//     ::ffff:0.0.0.0), which Lookup tries after the exact source.
//
// Not covered (left to the /proc path of package sockets): an accept()ed
// socket before its owner reads or writes it (the handshake completes in
// softirq, with no process to name); a connected UDP socket before its
// first send; raw and ICMP sockets by 5-tuple (they are recorded by inode
// when they send or receive); sockets of processes in a cgroup v2
// hierarchy other than the one attached to (containers with a private
// cgroup namespace still sit under the host's root). Sockets used only by
// kernel threads are never recorded.
//
// # Stale entries
//
// An entry is what was true when the kernel recorded it. The socket may
// since have been handed to another process (fork, SCM_RIGHTS) — the last
// process that connected, listened, sent or received on it is named —
// and a 5-tuple may be reused by a later connection of another process
// that did not send yet (the older owner is named until the new one
// connects or sends). Socket inode numbers are not reused until their
// 32-bit counter wraps, but the pid in an entry may have been reused by
// another process once its owner exited. Owner and Lookup return the
// owner's start ticks (start_boottime in clock ticks, /proc/<pid>/stat
// field 22) for that reason: a caller validates an entry by comparing them
// with the start ticks of the process it holds or reads for that pid
// (process.CurrentKey, or the process cache's Key) and treats a mismatch
// as "owner exited": the recorded pid, start ticks and comm still name the
// exited owner. PIDOfInode, which returns the pid alone (the SocketMap
// interface), returns an entry only while that pid runs with the recorded
// start ticks or is gone: a pid now used by another process is not
// returned.
//
// # With sockets.Resolver
//
// sockets.Config{SocketMap: m} makes a Resolver ask the Map first for the
// owner of the socket sock_diag found, so a live connection is named
// without a /proc fd scan (the owner's process is still read from /proc,
// or taken from the process cache). The Resolver finds sockets that still
// exist: a connection whose client is gone (its socket closed, or in
// TIME-WAIT with inode 0) is named by Map.Lookup or LookupOwner directly,
// with the recorded pid, start ticks and comm.
//
// # Privileges
//
// Loading needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) and kernel BTF
// (/sys/kernel/btf/vmlinux); Open's error matches ErrUnavailable (the
// same value as methods.ErrUnavailable), with the reason, when either is
// missing or the kernel refuses the tracing programs. The cgroup programs also need CAP_NET_ADMIN (or
// CAP_SYS_ADMIN) and a mounted cgroup v2 hierarchy (its root is found in
// /proc/self/mountinfo: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a
// hybrid host); without them, or on a kernel that refuses them, Open runs
// the tracing programs alone and Map.Degraded says why. The programs were
// verified on Linux 6.18 only; the cgroup programs call
// bpf_get_current_task_btf, which older kernels may not allow them.
package sockebpf
