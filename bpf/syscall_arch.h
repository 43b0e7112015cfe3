/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * What the tracepoint tier reads from a system call's registers, per
 * architecture (bpf2go compiles procmon.c once per target with
 * -D__TARGET_ARCH_<arch>; vmlinux.h picks the same architecture's types).
 *
 *  syscall_nr(regs)            the system call number, a direct load (tp_btf)
 *  task_in_compat(task)        whether the task runs the 32-bit ABI (ia32 on
 *                              x86_64, AArch32 on arm64)
 *  syscall_args(regs, c, args) the six arguments of the native (c false) or
 *                              32-bit (c true) calling convention, as they
 *                              were on entry
 *  CLONE_EXIT_IN_CHILD         1 where a forked child returns to user space
 *                              through sys_exit (x86_64: ret_from_fork runs
 *                              the syscall exit work), 0 where it does not
 *                              (arm64: ret_from_fork goes straight to
 *                              ret_to_user): then only the parent's exit,
 *                              with the child's pid, sees a clone
 */
#ifndef __PROCTRACK_SYSCALL_ARCH_H
#define __PROCTRACK_SYSCALL_ARCH_H

#if defined(__TARGET_ARCH_x86)

#define TS_COMPAT 0x0002
#define X32_SYSCALL_BIT 0x40000000
#define CLONE_EXIT_IN_CHILD 1

/* x32 numbers are the x86_64 ones with bit 30 set. */
static __always_inline __u32 syscall_nr(struct pt_regs *regs)
{
	return regs->orig_ax & ~X32_SYSCALL_BIT;
}

static __always_inline bool task_in_compat(struct task_struct *task)
{
	if (!bpf_core_field_exists(task->thread_info.status))
		return false;
	return (BPF_CORE_READ(task, thread_info.status) & TS_COMPAT) != 0;
}

static __always_inline void syscall_args(struct pt_regs *regs, bool compat, __u64 args[6])
{
	if (compat) {
		args[0] = BPF_CORE_READ(regs, bx);
		args[1] = BPF_CORE_READ(regs, cx);
		args[2] = BPF_CORE_READ(regs, dx);
		args[3] = BPF_CORE_READ(regs, si);
		args[4] = BPF_CORE_READ(regs, di);
		args[5] = BPF_CORE_READ(regs, bp);
	} else {
		args[0] = BPF_CORE_READ(regs, di);
		args[1] = BPF_CORE_READ(regs, si);
		args[2] = BPF_CORE_READ(regs, dx);
		args[3] = BPF_CORE_READ(regs, r10);
		args[4] = BPF_CORE_READ(regs, r8);
		args[5] = BPF_CORE_READ(regs, r9);
	}
}

#elif defined(__TARGET_ARCH_arm64)

#define TIF_32BIT 22 /* arch/arm64/include/asm/thread_info.h */
#define CLONE_EXIT_IN_CHILD 0

/* syscallno is -1 (NO_SYSCALL) outside a system call: it fails the
 * SYSCALL_SLOTS bound as a __u32. */
static __always_inline __u32 syscall_nr(struct pt_regs *regs)
{
	return regs->syscallno;
}

static __always_inline bool task_in_compat(struct task_struct *task)
{
	return (BPF_CORE_READ(task, thread_info.flags) & (1UL << TIF_32BIT)) != 0;
}

/* x0 holds the return value at sys_exit: the first argument is orig_x0.
 * AArch32 passes its arguments in r0-r5, which are x0-x5: the same
 * registers for both. */
static __always_inline void syscall_args(struct pt_regs *regs, bool compat, __u64 args[6])
{
	args[0] = BPF_CORE_READ(regs, orig_x0);
	args[1] = BPF_CORE_READ(regs, regs[1]);
	args[2] = BPF_CORE_READ(regs, regs[2]);
	args[3] = BPF_CORE_READ(regs, regs[3]);
	args[4] = BPF_CORE_READ(regs, regs[4]);
	args[5] = BPF_CORE_READ(regs, regs[5]);
	if (compat) { /* 32-bit registers: the upper halves are not the call's */
		for (int i = 0; i < 6; i++)
			args[i] &= 0xffffffff;
	}
}

#else

/* The generic object, for GOARCHes without a table here
 * (internal/sysnum): no system call is decoded, the filters stay empty. */
#define CLONE_EXIT_IN_CHILD 1
static __always_inline __u32 syscall_nr(struct pt_regs *regs)
{
	return SYSCALL_SLOTS;
}

static __always_inline bool task_in_compat(struct task_struct *task)
{
	return false;
}

static __always_inline void syscall_args(struct pt_regs *regs, bool compat, __u64 args[6])
{
	__builtin_memset(args, 0, 6 * sizeof(__u64));
}

#endif

/* Whether the sys_exit of a successful clone with return value ret is the
 * one to report: the child's (0) or, where children skip sys_exit, the
 * parent's (the child's pid). */
static __always_inline bool clone_reported(long ret)
{
	return CLONE_EXIT_IN_CHILD ? ret == 0 : ret > 0;
}

#endif /* __PROCTRACK_SYSCALL_ARCH_H */
