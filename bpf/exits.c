// SPDX-License-Identifier: (MIT OR GPL-2.0)
//go:build ignore

/*
 * proctrack's exit counter, loaded by internal/exits.
 *
 * tracepoint/sched/sched_process_exit runs in do_exit() of every task
 * (thread) that exits, before the task is reaped and so before its pid can
 * be given to another task. It adds one to the slot of the task's pid
 * (pid mod EXIT_SLOTS) in exit_counts, an array that userspace maps into
 * its memory (BPF_F_MMAPABLE): a slot that did not change between two
 * reads proves that no task whose pid falls in it exited meanwhile, so a
 * pid seen running (and not exiting) before the first read still names the
 * same process at the second, without a system call. Different pids share
 * a slot; a change caused by another pid only makes the reader check
 * /proc.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define EXIT_SLOTS 65536 /* a power of two */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EXIT_SLOTS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} exit_counts SEC(".maps");

SEC("tracepoint/sched/sched_process_exit")
int count_exit(void *ctx)
{
	/* The exiting task is current; the low half is its pid (tid). */
	__u32 slot = (__u32)bpf_get_current_pid_tgid() & (EXIT_SLOTS - 1);
	__u64 *n = bpf_map_lookup_elem(&exit_counts, &slot);

	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}
