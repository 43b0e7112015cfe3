// SPDX-License-Identifier: (MIT OR GPL-2.0)
//go:build ignore

/*
 * proctrack's socket attribution programs (CO-RE), loaded by sockets/ebpf.
 *
 * They record which process used a socket, while it runs, in two LRU hash
 * maps: inode_owners (socket inode -> owner) and conn_owners (5-tuple ->
 * owner), so that a client gone before userspace asks is still named.
 *
 *  - tp_btf/inet_sock_set_state, to SYN_SENT (connect(), process context):
 *    the owner by inode, and a pending entry by sock pointer; SYN_SENT ->
 *    ESTABLISHED (softirq, the port is bound by then) moves the pending
 *    owner into conn_owners under the full TCP 5-tuple. To LISTEN
 *    (listen(), process context): the listener's owner by inode.
 *  - tp_btf/sock_send_length and sock_recv_length (sock_sendmsg_nosec and
 *    sock_recvmsg_nosec, process context): the owner of any inet socket
 *    that sends or receives, by inode, and by 5-tuple when the socket is
 *    connected (TCP, connected UDP). This covers accept()ed sockets once
 *    their owner reads or writes.
 *  - cgroup/sendmsg4 and sendmsg6 (unconnected UDP and UDP-Lite sendto, in
 *    process context): the owner by 5-tuple, with the destination of the
 *    call; the source address is the one the socket is bound to (or the
 *    one of IP_PKTINFO), unspecified when the route chooses it.
 *
 * Softirq transitions (SYN_RECV -> ESTABLISHED of an accepted socket) have
 * no process: nothing is recorded there.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "sockets.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_UDPLITE 136
#define PF_KTHREAD 0x00200000

/* include/net/tcp_states.h */
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_LISTEN 10

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SOCK_OWNERS_MAX);
	__type(key, __u64);
	__type(value, struct sock_owner);
} inode_owners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SOCK_OWNERS_MAX);
	__type(key, struct conn_key);
	__type(value, struct sock_owner);
} conn_owners SEC(".maps");

/* Connecting TCP sockets by struct sock pointer, until they leave SYN_SENT. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct sock_owner);
} pending SEC(".maps");

/* current_owner fills o from the current task; false for kernel threads. */
static __always_inline bool current_owner(struct sock_owner *o)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_struct *leader;

	if (BPF_CORE_READ(task, flags) & PF_KTHREAD)
		return false;
	leader = BPF_CORE_READ(task, group_leader);
	o->pid = bpf_get_current_pid_tgid() >> 32;
	o->start_ns = BPF_CORE_READ(leader, start_boottime);
	BPF_CORE_READ_STR_INTO(&o->comm, leader, comm);
	return true;
}

/* sock_inode returns the inode of sk's socket, 0 for a socket without a
 * file (a kernel socket, or one being closed). */
static __always_inline __u64 sock_inode(const struct sock *sk)
{
	struct socket *so = BPF_CORE_READ(sk, sk_socket);
	struct file *f;

	if (!so)
		return 0;
	f = BPF_CORE_READ(so, file);
	if (!f)
		return 0;
	return BPF_CORE_READ(f, f_inode, i_ino);
}

static __always_inline void map4(__u8 *dst, __u32 addr)
{
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &addr, 4);
}

/* sk_tuple fills k from a connected inet socket; false for other families
 * and for sockets without a peer. */
static __always_inline bool sk_tuple(const struct sock *sk, __u8 proto, struct conn_key *k)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	k->proto = proto;
	k->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	k->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (!k->sport || !k->dport)
		return false;
	if (family == AF_INET) {
		map4(k->saddr, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr));
		map4(k->daddr, BPF_CORE_READ(sk, __sk_common.skc_daddr));
		return true;
	}
	if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&k->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&k->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
		return true;
	}
	return false;
}

/* same reports whether a map value already names o's process and inode. */
static __always_inline bool same(const struct sock_owner *v, const struct sock_owner *o)
{
	return v && v->pid == o->pid && v->start_ns == o->start_ns && v->inode == o->inode;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcp_state, const struct sock *sk, const int oldstate, const int newstate)
{
	__u64 skp = (__u64)sk;
	struct sock_owner o = {};
	struct sock_owner *p;
	struct conn_key k = {};

	if (newstate == TCP_SYN_SENT || newstate == TCP_LISTEN) {
		/* connect() and listen(): process context. */
		if (!current_owner(&o))
			return 0;
		o.inode = sock_inode(sk);
		if (o.inode)
			bpf_map_update_elem(&inode_owners, &o.inode, &o, BPF_ANY);
		if (newstate == TCP_SYN_SENT)
			bpf_map_update_elem(&pending, &skp, &o, BPF_ANY);
		return 0;
	}
	if (oldstate != TCP_SYN_SENT)
		return 0;
	p = bpf_map_lookup_elem(&pending, &skp);
	if (!p)
		return 0;
	if (newstate == TCP_ESTABLISHED && sk_tuple(sk, IPPROTO_TCP, &k))
		bpf_map_update_elem(&conn_owners, &k, p, BPF_ANY);
	bpf_map_delete_elem(&pending, &skp);
	return 0;
}

/* record_io records the owner of an inet socket that sends or receives. */
static __always_inline int record_io(struct sock *sk)
{
	struct sock_owner o = {};
	struct conn_key k = {};
	__u16 family, proto;

	if (!sk)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	o.inode = sock_inode(sk);
	if (!o.inode || !current_owner(&o))
		return 0;
	if (!same(bpf_map_lookup_elem(&inode_owners, &o.inode), &o))
		bpf_map_update_elem(&inode_owners, &o.inode, &o, BPF_ANY);
	proto = BPF_CORE_READ(sk, sk_protocol);
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_UDPLITE)
		return 0;
	if (BPF_CORE_READ(sk, sk_type) == 3 /* SOCK_RAW */)
		return 0;
	if (!sk_tuple(sk, proto, &k))
		return 0;
	if (!same(bpf_map_lookup_elem(&conn_owners, &k), &o))
		bpf_map_update_elem(&conn_owners, &k, &o, BPF_ANY);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send, struct sock *sk, int ret, int flags)
{
	return record_io(sk);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv, struct sock *sk, int ret, int flags)
{
	return record_io(sk);
}

/* record_sendmsg records an unconnected UDP send; k holds the addresses. */
static __always_inline void record_sendmsg(struct bpf_sock_addr *ctx, struct conn_key *k)
{
	struct bpf_sock *sk = ctx->sk;
	struct sock_owner o = {};

	if (!sk)
		return;
	k->proto = ctx->protocol;
	k->sport = sk->src_port;
	k->dport = bpf_ntohs((__u16)ctx->user_port);
	if (!current_owner(&o))
		return;
	if (!same(bpf_map_lookup_elem(&conn_owners, k), &o))
		bpf_map_update_elem(&conn_owners, k, &o, BPF_ANY);
}

SEC("cgroup/sendmsg4")
int udp_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct conn_key k = {};
	__u32 src = ctx->msg_src_ip4;

	if (ctx->protocol != IPPROTO_UDP && ctx->protocol != IPPROTO_UDPLITE)
		return 1;
	if (!src && ctx->sk)
		src = ctx->sk->src_ip4;
	map4(k.saddr, src);
	map4(k.daddr, ctx->user_ip4);
	record_sendmsg(ctx, &k);
	return 1;
}

SEC("cgroup/sendmsg6")
int udp_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct conn_key k = {};
	__u32 s[4], d[4];

	if (ctx->protocol != IPPROTO_UDP && ctx->protocol != IPPROTO_UDPLITE)
		return 1;
	s[0] = ctx->msg_src_ip6[0];
	s[1] = ctx->msg_src_ip6[1];
	s[2] = ctx->msg_src_ip6[2];
	s[3] = ctx->msg_src_ip6[3];
	if (!(s[0] | s[1] | s[2] | s[3]) && ctx->sk) {
		struct bpf_sock *sk = ctx->sk;

		s[0] = sk->src_ip6[0];
		s[1] = sk->src_ip6[1];
		s[2] = sk->src_ip6[2];
		s[3] = sk->src_ip6[3];
	}
	d[0] = ctx->user_ip6[0];
	d[1] = ctx->user_ip6[1];
	d[2] = ctx->user_ip6[2];
	d[3] = ctx->user_ip6[3];
	__builtin_memcpy(k.saddr, s, 16);
	__builtin_memcpy(k.daddr, d, 16);
	record_sendmsg(ctx, &k);
	return 1;
}
