// SPDX-License-Identifier: (MIT OR GPL-2.0)
//go:build ignore

/*
 * proctrack's eBPF programs (CO-RE).
 *
 *  - Process lifecycle, both tiers: tp_btf sched_process_exec, _fork and
 *    _exit. Exec and fork records carry the whole process: identity,
 *    executable path (walked in the kernel), arguments, working directory,
 *    credentials, namespaces and cgroup id.
 *  - Tracepoint tier: tp_btf sys_exit, filtered by system call number
 *    through two arrays userspace fills (native and 32-bit numbers), reports
 *    successful privilege-changing calls.
 *  - LSM tier: the seven hooks of seed 000. Each evaluates its rules (the
 *    tables userspace compiles) and returns the decision it was given, or
 *    -EPERM where sandbox mode denies the operation (see decide());
 *    bprm_check stashes the IMA digest of the binary for the exec record
 *    that follows.
 *
 * Userspace loads only the programs its tier uses. Records go to one ring
 * buffer; a record that finds it full is counted in lost[kind].
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "procmon.h"
#include "syscall_arch.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define PF_KTHREAD 0x00200000
#define PFA_NO_NEW_PRIVS_MASK 1UL
#define CLONE_NEWUSER 0x10000000

#define PTRACE_TRACEME 0
#define PTRACE_ATTACH 16
#define PTRACE_DETACH 17
#define PTRACE_SEIZE 0x4206
#define PTRACE_MODE_ATTACH 0x02

#define EEXIST 17

/* Set by userspace before loading. */
const volatile bool exit_has_group_dead = false; /* sched_process_exit(p, group_dead) */
const volatile bool ima_hash = false;            /* bprm_check stashes IMA digests */
const volatile bool want_exe_paths = false;      /* keep exe_paths (rules use scope attributes) */
const volatile bool want_cwd = true;             /* walk the working directory */
const volatile bool exec_rules = false;          /* sched_process_exec has rules: match and kill */
const volatile bool exe_paths_at_exec = false;   /* write exe_paths at exec (no bprm_check: tracepoint tier) */
/* Wake the reader only once this many bytes wait in the ring buffer; 0
 * wakes it for every record it has caught up with (the kernel's default).
 * A wakeup is an irq_work, a self-IPI: costly in a VM. */
const volatile __u64 wakeup_bytes = 0;
/* With wakeup_bytes 0: a record submitted less than this many nanoseconds
 * after the last wakeup does not wake the reader, which looks at the ring
 * buffer again within that time after any read (the reader's side of this
 * contract is in methods/ebpf/source.go, readLoop). The first record after
 * a quiet spell wakes it at once; a burst costs one wakeup per gap instead
 * of one per record. 0 wakes the reader for every record it has caught up
 * with. */
const volatile __u64 wakeup_gap_ns = 0;

/* Records submitted before this time (bpf_ktime_get_ns) do not wake the
 * reader. A record that wakes it sets it to wakeup_gap_ns later; the reader
 * sets it too, when it starts sleeping until its next look at the ring
 * buffer, to the end of that sleep (which grows through a burst). Racy
 * across CPUs by design: two CPUs may both wake the reader, which is
 * harmless. */
__u64 quiet_until_ns = 0;

/* Scratch space of the variable-length records. */
#define SCRATCH_BYTES 16384
struct scratch {
	__u8 buf[SCRATCH_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* userspace may change it */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, REC_KINDS);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

/* The name pointers of one path walk. */
struct walk_slots {
	__u64 name[MAX_COMPONENTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct walk_slots);
} slots_map SEC(".maps");

/* System call filters: number -> enum sys_code (0: not watched). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SYSCALL_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} sys_native SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SYSCALL_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} sys_compat SEC(".maps");

/* What bprm_check saw, keyed by the exec'ing thread id, for the exec
 * record that follows. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct bprm_val);
} bprm_stash SEC(".maps");

/* ---- rule tables (LSM tier), filled by userspace before attaching ---- */

/* The rules of each hook (index enum lsm_hook). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct hook_table);
} hook_tables SEC(".maps");

/* The operations of every hook's rules; userspace sizes it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rule_op);
} rule_ops SEC(".maps");

/* Integer values -> the comparisons they satisfy; userspace sizes it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct int_key);
	__type(value, struct rule_hits);
} rule_ints SEC(".maps");

/* Strings (paths, names, prefixes) -> the comparisons they satisfy. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct str_key);
	__type(value, struct rule_hits);
} rule_strs SEC(".maps");

/* Executable path of each process, keyed by tgid, for the scope
 * attributes: written at exec (from bprm_check), copied at fork, removed
 * at exit; userspace seeds it and collects what exits missed. Userspace
 * makes it a one-entry preallocated map when no rule needs it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct exe_val);
} exe_paths SEC(".maps");

/* Per-CPU work space of the rule evaluation. */
struct rule_scratch {
	struct rule_hits hits;
	struct str_key key;
	char src[RULE_STR];   /* the string being looked up, NUL-padded */
	char big[PATH_BYTES]; /* bpf_d_path's output */
	struct bprm_val bv;
	struct exe_val exe;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rule_scratch);
} rule_scratch_map SEC(".maps");

/* Thread groups whose exit record went out, for kernels whose
 * sched_process_exit does not pass group_dead: there every thread that
 * reaches the tracepoint after signal->live dropped to zero reads zero
 * (do_exit decrements live before exit_mm, the tracepoint comes after it),
 * so the threads of an exit_group race and the first to insert its group
 * here sends the one record. LRU: old groups fall out by themselves. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct exit_key);
	__type(value, __u8);
} exited SEC(".maps");

/* Make the record types part of the object's BTF for bpf2go. */
const struct proc_rec *unused_proc_rec __attribute__((unused));
const struct exit_rec *unused_exit_rec __attribute__((unused));
const struct sys_rec *unused_sys_rec __attribute__((unused));
const struct lsm_rec *unused_lsm_rec __attribute__((unused));
const struct rule_op *unused_rule_op __attribute__((unused));
const struct hook_table *unused_hook_table __attribute__((unused));
const struct int_key *unused_int_key __attribute__((unused));
const struct str_key *unused_str_key __attribute__((unused));
const struct rule_hits *unused_rule_hits __attribute__((unused));
const struct exe_val *unused_exe_val __attribute__((unused));
const struct bprm_val *unused_bprm_val __attribute__((unused));
/* ... and the enums, for the Go side's constants test. */
const enum rule_attr *unused_rule_attr __attribute__((unused));
const enum rule_op_kind *unused_rule_op_kind __attribute__((unused));
const enum rule_end *unused_rule_end __attribute__((unused));
const enum verdict *unused_verdict __attribute__((unused));
const enum sandbox_mode *unused_sandbox_mode __attribute__((unused));
const enum bprm_flag *unused_bprm_flag __attribute__((unused));
const enum lsm_hook *unused_lsm_hook __attribute__((unused));
const enum rec_flag *unused_rec_flag __attribute__((unused));

/* rb_flags returns the flags of a ring buffer submit (see wakeup_bytes and
 * wakeup_gap_ns). */
static __always_inline __u64 rb_flags(void)
{
	if (wakeup_bytes) {
		if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
			return BPF_RB_FORCE_WAKEUP;
		return BPF_RB_NO_WAKEUP;
	}
	if (!wakeup_gap_ns)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	if (now < quiet_until_ns)
		return BPF_RB_NO_WAKEUP;
	quiet_until_ns = now + wakeup_gap_ns;
	return 0;
}

static __always_inline void count_lost(__u32 kind)
{
	__u64 *n = bpf_map_lookup_elem(&lost, &kind);
	if (n)
		*n += 1;
}

static __always_inline void fill_hdr(struct rec_hdr *h, __u16 kind, struct task_struct *task)
{
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);

	h->kind = kind;
	h->ktime = bpf_ktime_get_boot_ns();
	h->pid = BPF_CORE_READ(task, tgid);
	h->tid = BPF_CORE_READ(task, pid);
	h->ppid = BPF_CORE_READ(task, real_parent, tgid);
	h->cpu = bpf_get_smp_processor_id();
	h->start_ns = BPF_CORE_READ(leader, start_boottime);
	BPF_CORE_READ_STR_INTO(&h->comm, leader, comm);
}

static __always_inline void read_creds(struct creds_rec *c, const struct cred *cred)
{
	struct group_info *gi;
	int n;

	c->uid = BPF_CORE_READ(cred, uid.val);
	c->euid = BPF_CORE_READ(cred, euid.val);
	c->suid = BPF_CORE_READ(cred, suid.val);
	c->fsuid = BPF_CORE_READ(cred, fsuid.val);
	c->gid = BPF_CORE_READ(cred, gid.val);
	c->egid = BPF_CORE_READ(cred, egid.val);
	c->sgid = BPF_CORE_READ(cred, sgid.val);
	c->fsgid = BPF_CORE_READ(cred, fsgid.val);
	/* kernel_cap_t is one u64 (6.3+) or two u32 (before): 8 bytes either way. */
	bpf_core_read(&c->cap_inh, sizeof(c->cap_inh), &cred->cap_inheritable);
	bpf_core_read(&c->cap_prm, sizeof(c->cap_prm), &cred->cap_permitted);
	bpf_core_read(&c->cap_eff, sizeof(c->cap_eff), &cred->cap_effective);
	bpf_core_read(&c->cap_bnd, sizeof(c->cap_bnd), &cred->cap_bset);
	if (bpf_core_field_exists(cred->cap_ambient))
		bpf_core_read(&c->cap_amb, sizeof(c->cap_amb), &cred->cap_ambient);
	c->user_ns = BPF_CORE_READ(cred, user_ns, ns.inum);
	gi = BPF_CORE_READ(cred, group_info);
	n = BPF_CORE_READ(gi, ngroups);
	c->ngroups = n;
#pragma clang loop unroll(disable)
	for (int i = 0; i < MAX_GROUPS; i++) {
		if (i >= n)
			break;
		bpf_core_read(&c->groups[i], sizeof(__u32), &gi->gid[i]);
	}
}

static __always_inline void read_task_flags(struct creds_rec *c, struct task_struct *task)
{
	c->no_new_privs = (BPF_CORE_READ(task, atomic_flags) & PFA_NO_NEW_PRIVS_MASK) != 0;
	c->seccomp = BPF_CORE_READ(task, seccomp.mode);
}

/* Results of walk_path, above the length in its return value. */
#define WALK_TRUNC (1 << 16)
#define WALK_ERR (1 << 17)
#define WALK_LEN_MASK 0xffff
/* The highest offset a walk may start at in the scratch buffer. */
#define WALK_MAX_BASE (SCRATCH_BYTES - PATH_BYTES)

/*
 * walk_path writes the names of the components of the struct path at
 * path_ptr into the scratch buffer from offset base, leaf first, each
 * ending in NUL. It returns the number of bytes written (at most
 * PATH_BYTES) ORed with WALK_TRUNC when it hit MAX_COMPONENTS or
 * PATH_BYTES before the root, or WALK_ERR when a name could not be read.
 * Mount points are crossed; the walk ends at the root of the mount tree
 * (the mount namespace's root, or a detached mount's root, as d_path ends).
 *
 * It is a global function, so the verifier checks it once, on its own. It
 * works in two passes to keep the verifier's work linear: the first walks
 * the dentries and notes each component's name pointer in slot i (0 for a
 * mount crossing), so no state but the loop index varies between paths;
 * the second copies the names.
 */
__noinline int walk_path(__u64 path_ptr, __u64 base)
{
	const struct path *p = (const struct path *)path_ptr;
	__u64 mnt_off = bpf_core_field_offset(struct mount, mnt);
	struct dentry *d = BPF_CORE_READ(p, dentry);
	struct vfsmount *vmnt = BPF_CORE_READ(p, mnt);
	struct mount *mnt = (void *)vmnt - mnt_off;
	__u32 zero = 0, off = 0;
	int ret = WALK_TRUNC;
	struct walk_slots *w;
	struct scratch *s;
	__u8 *dst;

	s = bpf_map_lookup_elem(&scratch_map, &zero);
	w = bpf_map_lookup_elem(&slots_map, &zero);
	if (!s || !w || base > WALK_MAX_BASE)
		return WALK_ERR;
	dst = s->buf + base;
	if (!d || !vmnt)
		return WALK_ERR;
	__builtin_memset(w, 0, sizeof(*w));

#pragma clang loop unroll(disable)
	for (int i = 0; i < MAX_COMPONENTS; i++) {
		struct dentry *root = BPF_CORE_READ(vmnt, mnt_root);
		struct dentry *parent = BPF_CORE_READ(d, d_parent);

		if (d == root) {
			struct mount *up = BPF_CORE_READ(mnt, mnt_parent);

			if (up == mnt) {
				ret = 0;
				break;
			}
			d = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = up;
			vmnt = (void *)up + mnt_off;
			continue;
		}
		if (d == parent) { /* the root of a tree not mounted anywhere */
			ret = 0;
			break;
		}
		w->name[i] = (__u64)BPF_CORE_READ(d, d_name.name);
		d = parent;
	}

#pragma clang loop unroll(disable)
	for (int i = 0; i < MAX_COMPONENTS; i++) {
		const void *name = (const void *)w->name[i];
		long n;

		if (!name)
			continue;
		if (off > PATH_BYTES - NAME_LEN)
			return off | WALK_TRUNC;
		n = bpf_probe_read_kernel_str(dst + off, NAME_LEN, name);
		if (n <= 0)
			return off | WALK_ERR;
		/* The mask changes nothing (off <= PATH_BYTES here) but gives off
		 * one range whatever the path taken, so states can be pruned. */
		off = (off + n) & (2 * PATH_BYTES - 1);
	}
	return off | ret;
}

/* read_args copies the argument area of mm (read through the current
 * task's address space, which holds the same bytes) into dst. */
static __always_inline __u32 read_args(__u8 *dst, struct mm_struct *mm, __u16 *flags)
{
	unsigned long start = BPF_CORE_READ(mm, arg_start);
	unsigned long end = BPF_CORE_READ(mm, arg_end);
	__u64 len;

	if (end <= start)
		return 0;
	len = end - start;
	if (len > ARGS_BYTES) {
		len = ARGS_BYTES;
		*flags |= F_ARGS_TRUNC;
	}
	barrier_var(len);
	if (len == 0 || len > ARGS_BYTES)
		return 0;
	if (bpf_probe_read_user(dst, len, (void *)start)) {
		*flags |= F_ARGS_ERR;
		return 0;
	}
	return len;
}

static __always_inline __u32 pid_ns_inum(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid *up = &pid->numbers[0];

	/* bounded for the verifier; pid namespaces nest at most 32 deep */
	up += level & 31;
	return BPF_CORE_READ(up, ns, ns.inum);
}

static __always_inline __u64 cgroup_id(struct task_struct *task)
{
	struct kernfs_node *kn = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn);

	return BPF_CORE_READ(kn, id);
}

static __always_inline void read_namespaces(struct proc_rec *r, struct task_struct *task)
{
	struct nsproxy *ns = BPF_CORE_READ(task, nsproxy);

	if (!ns)
		return;
	r->ns_mnt = BPF_CORE_READ(ns, mnt_ns, ns.inum);
	r->ns_net = BPF_CORE_READ(ns, net_ns, ns.inum);
	r->ns_uts = BPF_CORE_READ(ns, uts_ns, ns.inum);
	r->ns_ipc = BPF_CORE_READ(ns, ipc_ns, ns.inum);
	r->ns_cgroup = BPF_CORE_READ(ns, cgroup_ns, ns.inum);
	if (bpf_core_field_exists(ns->time_ns))
		r->ns_time = BPF_CORE_READ(ns, time_ns, ns.inum);
	r->ns_pid = pid_ns_inum(task);
}

/*
 * emit_proc fills the scratch record of task (the process after exec, or a
 * new child) with exe as its executable and sends it. The arguments are
 * read through the current task's address space: task itself at exec, the
 * parent (an identical copy) at fork.
 */
/* What sched_process_exec's rules said of an exec (handle_exec). */
struct exec_answer {
	__u64 matched, scoped;
	__u32 verdict;
	__s32 err;
	__u32 evaluated;
};

static __always_inline int emit_proc(__u16 kind, struct task_struct *task, struct file *exe,
				     __u32 old_tid, const struct exec_answer *xa)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);
	struct proc_rec *r;
	struct mm_struct *mm;
	struct inode *ino;
	__u32 plen = 0, alen = 0, clen = 0;
	__u64 size;
	__u16 flags = 0;

	if (!s)
		return 0;
	r = (void *)s->buf;
	__builtin_memset(r, 0, sizeof(*r));
	fill_hdr(&r->h, kind, task);
	read_creds(&r->c, BPF_CORE_READ(task, cred));
	read_task_flags(&r->c, task);
	read_namespaces(r, task);
	r->cgroup_id = cgroup_id(task);

	if (BPF_CORE_READ(task, flags) & PF_KTHREAD)
		flags |= F_KTHREAD;
	mm = BPF_CORE_READ(task, mm);
	if (!mm) {
		flags |= F_NO_MM;
		exe = NULL;
	} else if (!exe) {
		exe = BPF_CORE_READ(mm, exe_file);
	}
	if (exe) {
		ino = BPF_CORE_READ(exe, f_inode);
		r->exe_ino = BPF_CORE_READ(ino, i_ino);
		r->exe_dev = BPF_CORE_READ(ino, i_sb, s_dev);
		if (BPF_CORE_READ(ino, i_nlink) == 0)
			flags |= F_EXE_UNLINKED;
		int w = walk_path((__u64)&exe->f_path, sizeof(*r));

		if (w & WALK_TRUNC)
			flags |= F_PATH_TRUNC;
		if (w & WALK_ERR)
			flags |= F_PATH_ERR;
		plen = w & WALK_LEN_MASK;
		if (plen > PATH_BYTES)
			plen = PATH_BYTES;
	}
	if (mm) {
		alen = read_args(r->data + plen, mm, &flags);
		if (alen > ARGS_BYTES)
			alen = ARGS_BYTES;
	}
	if (mm && want_cwd) {
		struct fs_struct *fs = BPF_CORE_READ(task, fs);

		if (fs) {
			int w = walk_path((__u64)&fs->pwd, sizeof(*r) + plen + alen);

			if (w & WALK_TRUNC)
				flags |= F_CWD_TRUNC;
			if (w & WALK_ERR)
				flags |= F_CWD_ERR;
			clen = w & WALK_LEN_MASK;
			if (clen > PATH_BYTES)
				clen = PATH_BYTES;
		}
	} else if (!want_cwd) {
		flags |= F_NO_CWD;
	}
	if (kind == REC_EXEC) {
		struct bprm_val *v = bpf_map_lookup_elem(&bprm_stash, &old_tid);

		if (v) {
			if (v->has_ima) {
				r->ima_algo = v->ima_algo;
				__builtin_memcpy(r->ima, v->digest, IMA_BYTES);
				flags |= F_IMA;
			}
			r->matched = v->matched;
			r->bprm_flags = v->flags;
			r->verdict = v->verdict;
			flags |= F_BPRM;
			if (want_exe_paths) {
				__u32 tgid = r->h.pid;

				bpf_map_update_elem(&exe_paths, &tgid, &v->exe, BPF_ANY);
			}
			bpf_map_delete_elem(&bprm_stash, &old_tid);
		}
	}
	if (xa && xa->evaluated) {
		flags |= F_EXEC_RULES;
		r->exec_matched = xa->matched;
		r->exec_scoped = xa->scoped;
		r->exec_verdict = xa->verdict;
		r->exec_err = xa->err;
	}
	if (r->c.ngroups > MAX_GROUPS)
		flags |= F_GROUPS_TRUNC;
	r->h.flags = flags;
	r->path_len = plen;
	r->args_len = alen;
	r->cwd_len = clen;
	size = sizeof(*r) + plen + alen + clen;
	r->h.size = size;
	if (size > SCRATCH_BYTES - 1)
		return 0;
	barrier_var(size);
	if (size > SCRATCH_BYTES - 1)
		return 0;
	if (bpf_ringbuf_output(&events, r, size, rb_flags()))
		count_lost(kind);
	return 0;
}

/* copy_exe gives a forked child its parent's executable path. */
static __always_inline void copy_exe(__u32 ptgid, struct task_struct *child)
{
	__u32 zero = 0, tgid = BPF_CORE_READ(child, tgid);
	struct rule_scratch *sc = bpf_map_lookup_elem(&rule_scratch_map, &zero);
	struct exe_val *v = bpf_map_lookup_elem(&exe_paths, &ptgid);

	if (!sc || !v)
		return;
	__builtin_memcpy(&sc->exe, v, sizeof(sc->exe));
	sc->exe.start_ns = BPF_CORE_READ(child, start_boottime);
	bpf_map_update_elem(&exe_paths, &tgid, &sc->exe, BPF_ANY);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	/* Threads are not processes: only a new thread group leader counts. */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	if (want_exe_paths)
		copy_exe(BPF_CORE_READ(parent, tgid), child);
	return emit_proc(REC_FORK, child, NULL, 0, NULL);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *task)
{
	struct exit_rec *r;
	bool last;
	__u32 tgid;

	/* The process ends with its last thread: the kernel says so where the
	 * tracepoint passes group_dead. Elsewhere signal->live has dropped to
	 * zero by the time the tracepoint runs, but not only for the last
	 * thread: every thread still between its decrement and the tracepoint
	 * reads zero too, and the first of them to claim the group in `exited`
	 * reports it. */
	if (exit_has_group_dead)
		last = ctx[1] != 0;
	else
		last = BPF_CORE_READ(task, signal, live.counter) == 0;
	if (!last)
		return 0;
	tgid = BPF_CORE_READ(task, tgid);
	if (!exit_has_group_dead) {
		struct exit_key k = {};
		__u8 one = 1;

		k.tgid = tgid;
		k.start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
		/* int: before 6.4 (bpf_map_ops returning long) the upper half of
		 * a map update's error is zero, not sign-extended. */
		if ((int)bpf_map_update_elem(&exited, &k, &one, BPF_NOEXIST) == -EEXIST)
			return 0;
	}
	if (want_exe_paths)
		bpf_map_delete_elem(&exe_paths, &tgid);
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_lost(REC_EXIT);
		return 0;
	}
	__builtin_memset(r, 0, sizeof(*r));
	fill_hdr(&r->h, REC_EXIT, task);
	r->h.size = sizeof(*r);
	r->exit_code = BPF_CORE_READ(task, exit_code);
	bpf_ringbuf_submit(r, rb_flags());
	return 0;
}

/* ---- tracepoint tier: privilege-changing system calls ---- */

SEC("tp_btf/sys_exit")
int BPF_PROG(handle_sys_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *task;
	struct sys_rec *r;
	const struct cred *cred;
	__u64 args[6];
	__u64 clone_flags = 0;
	__u32 *native, *ia32, nr, c;
	bool compat;

	/* Every system call of the host comes here: the cheap tests first (a
	 * direct load and two inlined array lookups), the task's state only
	 * for the watched numbers. */
	if (ret < 0)
		return 0;
	nr = syscall_nr(regs);
	if (nr >= SYSCALL_SLOTS)
		return 0;
	native = bpf_map_lookup_elem(&sys_native, &nr);
	ia32 = bpf_map_lookup_elem(&sys_compat, &nr);
	if (!native || !ia32 || (*native == SYS_NONE && *ia32 == SYS_NONE))
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	compat = task_in_compat(task);
	c = compat ? *ia32 : *native;
	if (c == SYS_NONE)
		return 0;

	syscall_args(regs, compat, args);
	cred = BPF_CORE_READ(task, cred);

	switch (c) {
	case SYS_SETFSUID:
		/* returns the previous fsuid whatever happened: report a change */
		if (BPF_CORE_READ(cred, fsuid.val) == (__u32)ret)
			return 0;
		break;
	case SYS_SETFSGID:
		if (BPF_CORE_READ(cred, fsgid.val) == (__u32)ret)
			return 0;
		break;
	case SYS_UNSHARE:
		if (!(args[0] & CLONE_NEWUSER))
			return 0;
		break;
	case SYS_CLONE:
		/* reported by the child (ret 0), whose credentials are in the
		 * new namespace; by the parent (ret the child's pid) where the
		 * child does not pass sys_exit (CLONE_EXIT_IN_CHILD 0) */
		if (!clone_reported(ret) || !(args[0] & CLONE_NEWUSER))
			return 0;
		break;
	case SYS_CLONE3:
		if (!clone_reported(ret))
			return 0;
		if (bpf_probe_read_user(&clone_flags, sizeof(clone_flags), (void *)args[0]))
			return 0;
		if (!(clone_flags & CLONE_NEWUSER))
			return 0;
		break;
	case SYS_PTRACE:
		if (args[0] != PTRACE_TRACEME && args[0] != PTRACE_ATTACH &&
		    args[0] != PTRACE_SEIZE && args[0] != PTRACE_DETACH)
			return 0;
		break;
	}

	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		count_lost(REC_SYSCALL);
		return 0;
	}
	__builtin_memset(r, 0, sizeof(*r));
	fill_hdr(&r->h, REC_SYSCALL, task);
	r->h.size = sizeof(*r);
	if (compat)
		r->h.flags |= F_COMPAT;
	r->nr = nr;
	r->code = c;
	r->ret = ret;
	__builtin_memcpy(r->args, args, sizeof(args));
	r->clone_flags = clone_flags;
	read_creds(&r->c, cred);
	read_task_flags(&r->c, task);
	bpf_ringbuf_submit(r, rb_flags());
	return 0;
}

/* ---- LSM tier: the seven hooks of seed 000, rules and sandbox ---- */

#define EPERM 1
#define S_ISUID 04000
#define S_ISGID 02000
#define S_IXGRP 00010
#define MNT_NOSUID 0x01
#define NS_PER_TICK 10000000ULL /* 1e9 / USER_HZ */

/*
 * Rule evaluation. userspace (methods/ebpf/rules.go) compiles each hook's
 * rules into postfix operations (rule_ops) and every comparison of an
 * integer or string attribute into a bit: rule_ints and rule_strs map each
 * value a rule names to the bits of the comparisons it satisfies. An
 * evaluation first ORs the bits of the event's values into the hits (one
 * lookup per integer attribute, one per string attribute, one per path
 * component for a prefix attribute), then runs the operations over a stack
 * of bits.
 */

/* The attribute values of one operation. */
struct rule_in {
	__u64 ecaps, pcaps;
	__u32 uid, euid, gid, egid;
	__u32 hook;
	__u32 tgid, ptgid;       /* whose executables the scope attributes are */
	__u64 start_ns, pstart_ns;
	__u32 path_ok;           /* bprm_check, exec: src holds the binary's path */
	__u32 path_long;
	__u64 args_start, args_end; /* exec: the argument area (user memory of current) */
};

/* The answer of the rules. */
struct rule_out {
	__u64 matched, scoped;
	__u32 verdict;
	__u32 evaluated;
};

static __always_inline struct rule_scratch *rule_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&rule_scratch_map, &zero);
}

static __always_inline void or_hits(struct rule_hits *h, const struct rule_hits *v)
{
	for (int i = 0; i < RULE_WORDS; i++)
		h->w[i] |= v->w[i];
}

/* hits_int ORs the comparisons an integer value satisfies into the hits. */
__noinline int hits_int(__u32 tag, __u32 val)
{
	struct rule_scratch *sc = rule_scratch();
	struct int_key k = {.tag = tag, .val = val};
	struct rule_hits *v;

	if (!sc)
		return 0;
	v = bpf_map_lookup_elem(&rule_ints, &k);
	if (v)
		or_hits(&sc->hits, v);
	return 0;
}

/* hits_key ORs the comparisons the string in the scratch key satisfies. */
static __always_inline void hits_key(struct rule_scratch *sc)
{
	struct rule_hits *v = bpf_map_lookup_elem(&rule_strs, &sc->key);

	if (v)
		or_hits(&sc->hits, v);
}

/* str_idx bounds i to a byte of a rule string in a way the verifier sees
 * (the compiler would drop a plain mask after a range check). */
static __always_inline __u64 str_idx(__u64 i)
{
	asm volatile("%[i] &= %[m]" : [i] "+r"(i) : [m] "i"(RULE_STR - 1));
	return i;
}

struct str_ctx {
	__u32 start;     /* the name's first byte */
	__u32 cut;       /* src is the start of a longer path */
};

/* last_slash_cb sets start past the last '/' of src. */
static long last_slash_cb(__u32 i, struct str_ctx *c)
{
	struct rule_scratch *sc = rule_scratch();
	char ch;

	if (!sc || i >= RULE_STR)
		return 1;
	ch = sc->src[str_idx(i)];
	if (ch == 0)
		return 1;
	if (ch == '/')
		c->start = i + 1;
	return 0;
}

/* copy_name_cb copies the name (src from start) into the key. */
static long copy_name_cb(__u32 i, struct str_ctx *c)
{
	struct rule_scratch *sc = rule_scratch();
	__u32 from = c->start + i;
	char ch;

	if (!sc || from >= RULE_STR || i >= RULE_STR)
		return 1;
	ch = sc->src[str_idx(from)];
	if (ch == 0)
		return 1;
	sc->key.s[str_idx(i)] = ch;
	return 0;
}

/* prefix_cb builds src in the key byte by byte and looks up every prefix
 * that ends before a '/' (the root's is "") and the whole path. */
static long prefix_cb(__u32 i, struct str_ctx *c)
{
	struct rule_scratch *sc = rule_scratch();
	char ch;

	if (!sc || i >= RULE_STR)
		return 1;
	ch = sc->src[str_idx(i)];
	if (ch == 0 && (i == 0 || c->cut))
		return 1; /* an unknown path has no prefix; a cut one no end */
	if (ch == '/' || ch == 0)
		hits_key(sc);
	if (ch == 0)
		return 1;
	sc->key.s[str_idx(i)] = ch;
	return 0;
}

/*
 * hits_str ORs the comparisons the string in src satisfies: whole (tag
 * t_exact), by its last component (t_name) and by its prefixes
 * (t_prefix); a zero tag skips that attribute. A cut path (longer than
 * the tables' strings) is matched by its prefixes only.
 */
__noinline int hits_str(__u32 t_exact, __u32 t_name, __u32 t_prefix, __u32 cut)
{
	struct rule_scratch *sc = rule_scratch();
	struct str_ctx c = {.cut = cut};

	if (!sc)
		return 0;
	sc->src[RULE_STR - 1] = 0;
	if (t_exact && !cut) {
		sc->key.tag = t_exact;
		__builtin_memcpy(sc->key.s, sc->src, RULE_STR);
		hits_key(sc);
	}
	if (t_name && !cut) {
		__builtin_memset(sc->key.s, 0, RULE_STR);
		sc->key.tag = t_name;
		bpf_loop(RULE_STR, last_slash_cb, &c, 0);
		bpf_loop(RULE_STR, copy_name_cb, &c, 0);
		hits_key(sc);
	}
	if (t_prefix) {
		__builtin_memset(sc->key.s, 0, RULE_STR);
		sc->key.tag = t_prefix;
		bpf_loop(RULE_STR, prefix_cb, &c, 0);
	}
	return 0;
}

struct args_ctx {
	__u64 at, end;   /* the next byte to read, the end of the area */
	__u32 tag;
	__u32 first;     /* in argv[0], which rules do not see */
	__u32 in_long;   /* in an argument over RULE_STR - 1 bytes */
};

/* arg_cb reads the next piece of the argument area into the key: a whole
 * argument of at most RULE_STR - 1 bytes, which it looks up, or
 * RULE_STR - 1 bytes of a longer one, which can equal no rule's string. */
static long arg_cb(__u32 i, struct args_ctx *c)
{
	struct rule_scratch *sc = rule_scratch();
	__u64 left;
	long n;
	char ch = 1;

	if (!sc || c->at >= c->end)
		return 1;
	left = c->end - c->at;
	if (left > RULE_STR)
		left = RULE_STR;
	__builtin_memset(sc->key.s, 0, RULE_STR);
	n = bpf_probe_read_user_str(sc->key.s, left, (void *)c->at);
	if (n <= 0)
		return 1;
	/* n counts the NUL it wrote: the argument ended there if the byte
	 * read last is a NUL in user memory too */
	bpf_probe_read_user(&ch, 1, (void *)(c->at + n - 1));
	if (ch == 0) {
		if (!c->first && !c->in_long) {
			sc->key.tag = c->tag;
			hits_key(sc);
		}
		c->first = 0;
		c->in_long = 0;
		c->at += n;
	} else {
		c->in_long = 1;
		c->at += n > 1 ? n - 1 : 1;
	}
	return 0;
}

/* hits_args ORs the comparisons the exec's arguments (argv[1:], in user
 * memory from start to end) satisfy: one lookup per argument. */
__noinline int hits_args(__u32 tag, __u64 start, __u64 end)
{
	struct args_ctx c = {.at = start, .end = end, .tag = tag, .first = 1};

	if (end <= start || end - start > EXEC_ARGS_MAX)
		c.end = start + EXEC_ARGS_MAX;
	bpf_loop(EXEC_ARG_PIECES, arg_cb, &c, 0);
	return 0;
}

/* fwd_path builds at most FWD_BYTES (and a name) of a path: enough to know
 * a path is longer than RULE_STR - 1 bytes. */
#define FWD_BYTES 1024

static __always_inline __u32 fwd_idx(__u32 i)
{
	asm volatile("%[i] &= %[m]" : [i] "+r"(i) : [m] "i"(FWD_BYTES - 1));
	return i;
}

static __always_inline __u32 fwd_idx2(__u32 i)
{
	asm volatile("%[i] &= %[m]" : [i] "+r"(i) : [m] "i"(2 * FWD_BYTES - 1));
	return i;
}

/*
 * fwd_path writes the path walk_path just walked (its slots, leaf first)
 * root first into src, NUL-padded and cut to RULE_STR - 1 bytes. It
 * returns the path's length (0: unknown).
 */
__noinline int fwd_path(void)
{
	__u32 zero = 0, off = 0, cp;
	struct walk_slots *w = bpf_map_lookup_elem(&slots_map, &zero);
	struct rule_scratch *sc = rule_scratch();

	if (!w || !sc)
		return 0;
	__builtin_memset(sc->src, 0, RULE_STR);
#pragma clang loop unroll(disable)
	for (int i = MAX_COMPONENTS - 1; i >= 0; i--) {
		const void *name = (const void *)w->name[i];
		long n;

		if (!name)
			continue;
		if (off >= FWD_BYTES)
			break; /* long: src gets its first RULE_STR - 1 bytes all the same */
		off = fwd_idx(off);
		sc->big[off] = '/';
		n = bpf_probe_read_kernel_str(sc->big + fwd_idx2(off + 1), NAME_LEN, name);
		if (n <= 1)
			return 0;
		off += n;
	}
	if (off == 0) {
		sc->src[0] = '/';
		return 1;
	}
	cp = off < RULE_STR - 1 ? off : RULE_STR - 1;
	bpf_probe_read_kernel(sc->src, cp & (RULE_STR - 1), sc->big);
	return off;
}

/* load_exe puts the executable path of process tgid (started at start_ns)
 * in src, "" when unknown; it returns whether the path was cut. */
static __always_inline __u32 load_exe(struct rule_scratch *sc, __u32 tgid, __u64 start_ns)
{
	struct exe_val *v = bpf_map_lookup_elem(&exe_paths, &tgid);

	/* at the tick resolution of /proc, which userspace seeds from */
	if (!v || v->start_ns / NS_PER_TICK != start_ns / NS_PER_TICK) {
		__builtin_memset(sc->src, 0, RULE_STR);
		return 0;
	}
	__builtin_memcpy(sc->src, v->path, RULE_STR);
	return v->len >= RULE_STR;
}

static __always_inline __u32 tag_if(__u32 attrs, __u32 hook, __u32 attr)
{
	return (attrs & (1U << attr)) ? (hook << 8 | attr) : 0;
}

struct eval_ctx {
	__u64 stack;     /* bit 0 is the top */
	__u64 matched, scoped;
	__u64 ecaps, pcaps;
	__u32 first;
	__u32 scope;
	__u32 err;
};

/* eval_cb runs operation i of the hook's rules. */
static long eval_cb(__u32 i, struct eval_ctx *c)
{
	struct rule_scratch *sc = rule_scratch();
	__u32 idx = c->first + i;
	struct rule_op *op = bpf_map_lookup_elem(&rule_ops, &idx);
	__u64 v = 0, set;
	__u32 b;

	if (!sc || !op) {
		c->err = 1;
		return 1;
	}
	switch (op->kind) {
	case OP_TRUE:
		v = 1;
		break;
	case OP_CMP:
		b = op->bit & (RULE_WORDS * 64 - 1);
		v = ((sc->hits.w[b >> 6] >> (b & 63)) & 1) ^ (op->neg & 1);
		break;
	case OP_CAPS:
		set = op->attr == A_PCAPS ? c->pcaps : c->ecaps;
		v = ((set & op->caps) != 0 || (op->any && set != 0)) ^ (op->neg & 1);
		break;
	case OP_AND:
		v = c->stack & (c->stack >> 1) & 1;
		c->stack >>= 2;
		break;
	case OP_OR:
		v = (c->stack | (c->stack >> 1)) & 1;
		c->stack >>= 2;
		break;
	case OP_NOT:
		v = (c->stack & 1) ^ 1;
		c->stack >>= 1;
		break;
	default:
		c->err = 1;
		return 1;
	}
	c->stack = (c->stack << 1) | v;
	if (op->end == END_SCOPE) {
		c->scope = c->stack & 1;
		c->stack >>= 1;
	} else if (op->end == END_RULE) {
		__u64 bit = 1ULL << (op->rule & 63);

		v = c->stack & 1;
		c->stack >>= 1;
		if (c->scope) {
			c->scoped |= bit;
			if (v)
				c->matched |= bit;
		}
		c->scope = 0;
	}
	return 0;
}

/*
 * rules_eval runs the rules of in->hook. It returns 0 when the hook has no
 * rules (everything is reported, nothing denied), 1 with the answer in out.
 * For bprm_check the caller has put the binary's path in src.
 */
static __always_inline int rules_eval(struct rule_in *in, struct rule_out *out)
{
	__u32 hook = in->hook;
	struct hook_table *t = bpf_map_lookup_elem(&hook_tables, &hook);
	struct rule_scratch *sc = rule_scratch();
	struct eval_ctx c = {};
	__u32 a, cut;

	if (!t || !sc || t->nrules == 0)
		return 0;
	a = t->attrs;
	__builtin_memset(&sc->hits, 0, sizeof(sc->hits));
	if (a & (1U << A_UID))
		hits_int(hook << 8 | A_UID, in->uid);
	if (a & (1U << A_EUID))
		hits_int(hook << 8 | A_EUID, in->euid);
	if (a & (1U << A_GID))
		hits_int(hook << 8 | A_GID, in->gid);
	if (a & (1U << A_EGID))
		hits_int(hook << 8 | A_EGID, in->egid);
	if (in->path_ok) {
		/* bprm_check: the binary is both the event's path and the
		 * scope's binary (the new image, as in userspace) */
		hits_str(tag_if(a, hook, A_PATH), tag_if(a, hook, A_NAME), tag_if(a, hook, A_PATH_PREFIX), in->path_long);
		hits_str(tag_if(a, hook, A_BIN_PATH), tag_if(a, hook, A_BIN_NAME), tag_if(a, hook, A_BIN_PREFIX), in->path_long);
	} else if (a & (1U << A_BIN_PATH | 1U << A_BIN_NAME | 1U << A_BIN_PREFIX)) {
		cut = load_exe(sc, in->tgid, in->start_ns);
		hits_str(tag_if(a, hook, A_BIN_PATH), tag_if(a, hook, A_BIN_NAME), tag_if(a, hook, A_BIN_PREFIX), cut);
	}
	if (a & (1U << A_PAR_PATH | 1U << A_PAR_NAME | 1U << A_PAR_PREFIX)) {
		cut = load_exe(sc, in->ptgid, in->pstart_ns);
		hits_str(tag_if(a, hook, A_PAR_PATH), tag_if(a, hook, A_PAR_NAME), tag_if(a, hook, A_PAR_PREFIX), cut);
	}
	if (a & (1U << A_ARG))
		hits_args(hook << 8 | A_ARG, in->args_start, in->args_end);
	c.first = t->first;
	c.ecaps = in->ecaps;
	c.pcaps = in->pcaps;
	bpf_loop(t->nops, eval_cb, &c, 0);
	if (c.err)
		return 0; /* tables being replaced: report, deny nothing */
	out->evaluated = 1;
	out->matched = c.matched;
	out->scoped = c.scoped;
	switch (t->mode) {
	case SANDBOX_DENY:
		out->verdict = c.matched ? VERDICT_DENY : VERDICT_ALLOW;
		break;
	case SANDBOX_ALLOW:
		out->verdict = (c.scoped && !c.matched) ? VERDICT_DENY : VERDICT_ALLOW;
		break;
	}
	return 1;
}

/* report says whether an answer is reported: without rules always, with
 * rules when one matched or the sandbox denied. Credential changes
 * (lsm_cred_change, capset) are sent whatever the answer: userspace keeps
 * its process cache true with the unreported ones (Event.CacheOnly) and
 * passes on only what report() would. */
static __always_inline bool report(const struct rule_out *out)
{
	return !out->evaluated || out->matched || out->verdict == VERDICT_DENY;
}

/*
 * decide returns what the hook returns: the decision it was given, or
 * -EPERM when the sandbox denied. LSM programs may only return 0 or a
 * negative errno (the verifier checks it since 6.10), and the decision so
 * far is one already: the clamp only tells the verifier.
 */
static __always_inline int decide(int ret, const struct rule_out *out)
{
	if (out && out->verdict == VERDICT_DENY)
		return -EPERM;
	if (ret > 0)
		return 0;
	if (ret < -4095)
		return -4095;
	return ret;
}

/* scope_of fills the scope's processes: task and its parent. */
static __always_inline void scope_of(struct rule_in *in, struct task_struct *task)
{
	struct task_struct *parent = BPF_CORE_READ(task, real_parent);

	in->tgid = BPF_CORE_READ(task, tgid);
	in->start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	in->ptgid = BPF_CORE_READ(parent, tgid);
	in->pstart_ns = BPF_CORE_READ(parent, group_leader, start_boottime);
}

static __always_inline void creds_in(struct rule_in *in, const struct cred *cred)
{
	in->uid = BPF_CORE_READ(cred, uid.val);
	in->euid = BPF_CORE_READ(cred, euid.val);
	in->gid = BPF_CORE_READ(cred, gid.val);
	in->egid = BPF_CORE_READ(cred, egid.val);
	bpf_core_read(&in->ecaps, sizeof(in->ecaps), &cred->cap_effective);
	bpf_core_read(&in->pcaps, sizeof(in->pcaps), &cred->cap_permitted);
}

static __always_inline struct lsm_rec *lsm_begin(__u32 hook, int ret, const struct rule_out *out)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct lsm_rec *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);

	if (!r) {
		count_lost(REC_LSM);
		return NULL;
	}
	__builtin_memset(r, 0, sizeof(*r));
	fill_hdr(&r->h, REC_LSM, task);
	r->h.size = sizeof(*r);
	r->hook = hook;
	r->ret = ret;
	r->matched = out->matched;
	r->scoped = out->scoped;
	r->verdict = out->verdict;
	r->rules = out->evaluated;
	return r;
}

static __always_inline void lsm_current_creds(struct lsm_rec *r)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	read_creds(&r->old_c, BPF_CORE_READ(task, cred));
	read_task_flags(&r->old_c, task);
	r->new_c = r->old_c;
}

/* lsm_cred_change reports (and may deny) a change of credentials from old
 * to new; the rules see new's ids and capabilities. */
static __always_inline int lsm_cred_change(__u32 hook, struct cred *new, const struct cred *old,
					   int flags, int ret)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct rule_in in = {.hook = hook};
	struct rule_out out = {};
	struct lsm_rec *r;

	if (ret)
		return decide(ret, NULL);
	creds_in(&in, new);
	scope_of(&in, task);
	rules_eval(&in, &out);
	r = lsm_begin(hook, ret, &out);
	if (!r)
		return decide(ret, &out);
	r->args[0] = flags;
	read_creds(&r->old_c, old);
	read_task_flags(&r->old_c, task);
	read_creds(&r->new_c, new);
	read_task_flags(&r->new_c, task);
	bpf_ringbuf_submit(r, rb_flags());
	return decide(ret, &out);
}

SEC("lsm/task_fix_setuid")
int BPF_PROG(lsm_setuid, struct cred *new, const struct cred *old, int flags, int ret)
{
	return lsm_cred_change(HOOK_SETUID, new, old, flags, ret);
}

SEC("lsm/task_fix_setgid")
int BPF_PROG(lsm_setgid, struct cred *new, const struct cred *old, int flags, int ret)
{
	return lsm_cred_change(HOOK_SETGID, new, old, flags, ret);
}

SEC("lsm/capset")
int BPF_PROG(lsm_capset, struct cred *new, const struct cred *old, const kernel_cap_t *effective,
	     const kernel_cap_t *inheritable, const kernel_cap_t *permitted, int ret)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct rule_in in = {.hook = HOOK_CAPSET};
	struct rule_out out = {};
	struct lsm_rec *r;

	if (ret)
		return decide(ret, NULL);
	/* the sets being installed, whatever new holds yet */
	bpf_probe_read_kernel(&in.ecaps, sizeof(__u64), effective);
	bpf_probe_read_kernel(&in.pcaps, sizeof(__u64), permitted);
	scope_of(&in, task);
	rules_eval(&in, &out);
	r = lsm_begin(HOOK_CAPSET, ret, &out);
	if (!r)
		return decide(ret, &out);
	read_creds(&r->old_c, old);
	read_task_flags(&r->old_c, task);
	read_creds(&r->new_c, new);
	read_task_flags(&r->new_c, task);
	r->new_c.cap_eff = in.ecaps;
	r->new_c.cap_prm = in.pcaps;
	bpf_probe_read_kernel(&r->new_c.cap_inh, sizeof(__u64), inheritable);
	bpf_ringbuf_submit(r, rb_flags());
	return decide(ret, &out);
}

SEC("lsm/task_prctl")
int BPF_PROG(lsm_prctl, int option, unsigned long arg2, unsigned long arg3, unsigned long arg4,
	     unsigned long arg5, int ret)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct rule_in in = {.hook = HOOK_PRCTL};
	struct rule_out out = {};
	struct lsm_rec *r;

	/* task_prctl hooks return > 0 for "handled"; pass anything through.
	 * prctl has scope attributes only, and no sandbox. */
	if (ret < 0)
		return decide(ret, NULL);
	scope_of(&in, task);
	rules_eval(&in, &out);
	out.verdict = VERDICT_NONE;
	if (!report(&out))
		return decide(ret, NULL);
	r = lsm_begin(HOOK_PRCTL, ret, &out);
	if (!r)
		return decide(ret, NULL);
	r->args[0] = option;
	r->args[1] = arg2;
	r->args[2] = arg3;
	r->args[3] = arg4;
	r->args[4] = arg5;
	lsm_current_creds(r);
	bpf_ringbuf_submit(r, rb_flags());
	return decide(ret, NULL);
}

SEC("lsm/userns_create")
int BPF_PROG(lsm_userns_create, const struct cred *cred, int ret)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct rule_in in = {.hook = HOOK_USERNS};
	struct rule_out out = {};
	struct lsm_rec *r;

	if (ret)
		return decide(ret, NULL);
	creds_in(&in, cred);
	scope_of(&in, task);
	rules_eval(&in, &out);
	if (!report(&out))
		return decide(ret, &out);
	r = lsm_begin(HOOK_USERNS, ret, &out);
	if (!r)
		return decide(ret, &out);
	lsm_current_creds(r);
	bpf_ringbuf_submit(r, rb_flags());
	return decide(ret, &out);
}

SEC("lsm/ptrace_access_check")
int BPF_PROG(lsm_ptrace_access_check, struct task_struct *child, unsigned int mode, int ret)
{
	struct rule_in in = {.hook = HOOK_PTRACE};
	struct rule_out out = {};
	struct lsm_rec *r;

	/* PTRACE_MODE_READ checks guard /proc reads; only attaching is ptrace.
	 * The scope is the traced process, as in userspace; no sandbox. */
	if (ret || !(mode & PTRACE_MODE_ATTACH))
		return decide(ret, NULL);
	scope_of(&in, child);
	rules_eval(&in, &out);
	out.verdict = VERDICT_NONE;
	if (!report(&out))
		return decide(ret, NULL);
	r = lsm_begin(HOOK_PTRACE, ret, &out);
	if (!r)
		return decide(ret, NULL);
	r->args[0] = mode;
	r->target_pid = BPF_CORE_READ(child, tgid);
	r->target_start_ns = BPF_CORE_READ(child, group_leader, start_boottime);
	lsm_current_creds(r);
	bpf_ringbuf_submit(r, rb_flags());
	return decide(ret, NULL);
}

/*
 * bprm_exec_creds sets the ids and capabilities the rules see at
 * bprm_check: those the new image will run with, as the kernel will
 * compute them after this hook (bprm_creds_from_file): a set-user-ID file
 * on a mount without nosuid, and without no_new_privs, gives its owner as
 * euid (set-group-ID likewise for egid); the effective capabilities are
 * then the bounding and inheritable sets for root, the ambient set
 * otherwise. Not modelled: file capabilities (the extended attribute is
 * not readable here), securebits, and the ptrace and shared-fs cases where
 * the kernel ignores the bits.
 */
static __always_inline void bprm_exec_creds(struct rule_in *in, struct linux_binprm *bprm, __u32 flags)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	const struct cred *cred = BPF_CORE_READ(task, cred);
	struct inode *ino = BPF_CORE_READ(bprm, file, f_inode);
	bool nnp = (BPF_CORE_READ(task, atomic_flags) & PFA_NO_NEW_PRIVS_MASK) != 0;
	__u64 bset = 0, inh = 0, amb = 0;

	creds_in(in, cred);
	if (!(flags & BPRM_NOSUID) && !nnp) {
		if (flags & BPRM_SETUID)
			in->euid = BPF_CORE_READ(ino, i_uid.val);
		if (flags & BPRM_SETGID)
			in->egid = BPF_CORE_READ(ino, i_gid.val);
	}
	bpf_core_read(&bset, sizeof(bset), &cred->cap_bset);
	bpf_core_read(&inh, sizeof(inh), &cred->cap_inheritable);
	if (bpf_core_field_exists(cred->cap_ambient))
		bpf_core_read(&amb, sizeof(amb), &cred->cap_ambient);
	if (in->euid == 0 || in->uid == 0) {
		in->pcaps = bset | inh;
		in->ecaps = in->euid == 0 ? in->pcaps : 0;
	} else {
		in->pcaps = amb;
		in->ecaps = amb;
	}
}

SEC("lsm.s/bprm_check_security")
int BPF_PROG(lsm_bprm_check, struct linux_binprm *bprm, int ret)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct rule_scratch *sc = rule_scratch();
	struct rule_in in = {.hook = HOOK_BPRM, .path_ok = 1};
	struct rule_out out = {};
	struct file *file = bprm->file;
	struct inode *ino = BPF_CORE_READ(bprm, file, f_inode);
	struct bprm_val *bv;
	struct lsm_rec *r;
	__u32 tid, flags = 0, mode;
	long n;

	if (ret || !sc)
		return decide(ret, NULL);
	bv = &sc->bv;
	__builtin_memset(bv, 0, sizeof(*bv));
	mode = BPF_CORE_READ(ino, i_mode);
	if (mode & S_ISUID)
		flags |= BPRM_SETUID;
	if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		flags |= BPRM_SETGID;
	if (BPF_CORE_READ(ino, i_nlink) == 0)
		flags |= BPRM_FILELESS;
	if (BPF_CORE_READ(file, f_path.mnt, mnt_flags) & MNT_NOSUID)
		flags |= BPRM_NOSUID;

	/* the binary's path, NUL-padded, cut to RULE_STR - 1 bytes */
	__builtin_memset(sc->src, 0, RULE_STR);
	n = bpf_d_path((struct path *)&file->f_path, sc->big, sizeof(sc->big));
	if (n > 1) {
		__u32 len = n - 1, cp = len;

		if (cp >= RULE_STR) {
			cp = RULE_STR - 1;
			flags |= BPRM_PATH_LONG;
			in.path_long = 1;
		}
		bpf_probe_read_kernel(sc->src, cp & (RULE_STR - 1), sc->big);
		bv->exe.len = len;
	}
	/* kept apart: the evaluation reuses src for the parent's path */
	bv->exe.start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	__builtin_memcpy(bv->exe.path, sc->src, RULE_STR);
	if (ima_hash) {
		n = bpf_ima_file_hash(file, bv->digest, sizeof(bv->digest));
		if (n >= 0) {
			bv->ima_algo = n;
			bv->has_ima = 1;
		}
	}

	bprm_exec_creds(&in, bprm, flags);
	/* the scope's binary is the new image (src); its parent the parent */
	scope_of(&in, task);
	rules_eval(&in, &out);
	if (out.evaluated)
		flags |= BPRM_RULES;

	if (out.verdict == VERDICT_DENY) {
		/* no exec record follows: report the attempt */
		r = lsm_begin(HOOK_BPRM, ret, &out);
		if (r) {
			r->bprm_flags = flags;
			r->path_len = bv->exe.len;
			__builtin_memcpy(r->path, bv->exe.path, RULE_STR);
			lsm_current_creds(r);
			r->new_c.uid = in.uid;
			r->new_c.euid = in.euid;
			r->new_c.gid = in.gid;
			r->new_c.egid = in.egid;
			r->new_c.cap_eff = in.ecaps;
			r->new_c.cap_prm = in.pcaps;
			bpf_ringbuf_submit(r, rb_flags());
		}
		return decide(ret, &out);
	}
	bv->matched = out.matched;
	bv->verdict = out.verdict;
	bv->flags = flags;
	tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&bprm_stash, &tid, bv, BPF_ANY);
	return decide(ret, &out);
}

/* ---- sched_process_exec: Bombini's exec sandbox, on both tiers ---- */

#define SIGKILL 9

/*
 * exec_check runs sched_process_exec's rules on an exec at the exec
 * tracepoint, before the new image runs a single instruction: the scope
 * sees the new binary (its path walked here) and its parent, the event
 * the arguments after argv[0]. A denied exec gets SIGKILL, which the task
 * takes on its way back to user mode. Without BPF LSM this is the only
 * place an exec can be stopped, so it runs on both tiers. It also keeps
 * exe_paths where no bprm_check program does (exe_paths_at_exec).
 */
static __always_inline void exec_check(struct task_struct *task, struct file *exe,
				       struct exec_answer *xa)
{
	struct rule_scratch *sc = rule_scratch();
	struct rule_in in = {.hook = HOOK_EXEC, .path_ok = 1};
	struct rule_out out = {};
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	int w, len = 0;

	if (!sc || !exe || !mm)
		return;
	w = walk_path((__u64)&exe->f_path, 0);
	if (!(w & (WALK_TRUNC | WALK_ERR)))
		len = fwd_path();
	if (!len)
		__builtin_memset(sc->src, 0, RULE_STR);
	in.path_long = len >= RULE_STR;
	if (exe_paths_at_exec) {
		__u32 tgid = BPF_CORE_READ(task, tgid);

		sc->exe.start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
		sc->exe.len = len;
		__builtin_memcpy(sc->exe.path, sc->src, RULE_STR);
		bpf_map_update_elem(&exe_paths, &tgid, &sc->exe, BPF_ANY);
	}
	if (!exec_rules)
		return;
	in.args_start = BPF_CORE_READ(mm, arg_start);
	in.args_end = BPF_CORE_READ(mm, arg_end);
	scope_of(&in, task);
	if (!rules_eval(&in, &out))
		return;
	xa->evaluated = 1;
	xa->matched = out.matched;
	xa->scoped = out.scoped;
	xa->verdict = out.verdict;
	if (out.verdict == VERDICT_DENY) {
		xa->err = bpf_send_signal(SIGKILL);
		if (xa->err)
			xa->verdict = VERDICT_ALLOW; /* not killed: say so */
	}
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	struct exec_answer xa = {};
	struct file *exe = BPF_CORE_READ(bprm, file);

	if (exec_rules || exe_paths_at_exec)
		exec_check(task, exe, &xa);
	return emit_proc(REC_EXEC, task, exe, old_pid, &xa);
}
