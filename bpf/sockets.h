/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* The map types of sockets.c (bpf2go turns them into Go types). */
#ifndef PROCTRACK_SOCKETS_H
#define PROCTRACK_SOCKETS_H

#define SOCK_OWNERS_MAX 65536

/* The process that owned a socket when the kernel saw it used. */
struct sock_owner {
	__u32 pid;      /* tgid */
	__u32 pad;
	__u64 start_ns; /* the thread group leader's start_boottime */
	__u64 inode;    /* the socket's inode, 0 when unknown */
	char comm[16];  /* the leader's comm */
};

/* A connection as the local host sees it. Addresses are IPv6 or IPv4-mapped
 * IPv6 (::ffff:a.b.c.d), in network byte order; ports in host byte order.
 * An unspecified saddr (:: or ::ffff:0.0.0.0) is a socket that sent
 * without a bound source address (its source comes from the route). */
struct conn_key {
	__u8 proto; /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE */
	__u8 pad;
	__u16 sport;
	__u16 dport;
	__u16 pad2;
	__u8 saddr[16];
	__u8 daddr[16];
};

#endif
