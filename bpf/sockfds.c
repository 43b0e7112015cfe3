// SPDX-License-Identifier: (MIT OR GPL-2.0)
//go:build ignore

/*
 * proctrack's socket descriptor lister (CO-RE), loaded by internal/sockfds.
 *
 * iter/task_file visits every open file of every process (and of every
 * thread whose fd table is its own: the kernel skips threads that share
 * their leader's), in the reader's pid namespace. For each socket it writes
 * one struct sock_fd (the process, the task whose table holds it, the
 * descriptor, the socket's inode) to the iterator's output: the whole
 * machine's socket owners in one read, where /proc costs a readlink per
 * descriptor.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define S_IFMT 00170000
#define S_IFSOCK 0140000

struct sock_fd {
	__u32 tgid;
	__u32 tid;
	__u32 fd;
	__u32 pad;
	__u64 ino;
};

SEC("iter/task_file")
int sock_fds(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct inode *inode;
	struct sock_fd r = {};

	if (!task || !file)
		return 0;
	inode = file->f_inode;
	if (!inode || (inode->i_mode & S_IFMT) != S_IFSOCK)
		return 0;
	r.tgid = task->tgid;
	r.tid = task->pid;
	r.fd = ctx->fd;
	r.ino = inode->i_ino;
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}
