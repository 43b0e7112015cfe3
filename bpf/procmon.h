/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * Records the proctrack eBPF programs send to userspace through the ring
 * buffer, and the maps' key and value types. The Go side
 * (methods/ebpf) reads them through the types bpf2go generates from this
 * file's BTF, so a change here needs `go generate ./bpf/...`.
 *
 * Every record starts with a struct rec_hdr; hdr.kind says which record
 * follows. Sizes are fixed except for struct proc_rec, whose data[] holds
 * path_len bytes of executable path components, then args_len bytes of
 * arguments, then cwd_len bytes of working-directory components.
 */
#ifndef PROCTRACK_PROCMON_H
#define PROCTRACK_PROCMON_H

#define COMM_LEN 16
#define NAME_LEN 256       /* NAME_MAX and the NUL */
#define PATH_BYTES 4096    /* component bytes kept of one path */
#define ARGS_BYTES 4096    /* argument bytes kept of one process */
#ifndef MAX_COMPONENTS
#define MAX_COMPONENTS 64  /* components (and mount crossings) walked */
#endif
#define MAX_GROUPS 32      /* supplementary groups kept */
#define IMA_BYTES 64       /* the longest digest bpf_ima_file_hash writes */
#define SYSCALL_SLOTS 1024 /* entries of the system call filter arrays */

/* Record kinds (rec_hdr.kind). */
enum rec_kind {
	REC_EXEC = 1,
	REC_FORK = 2,
	REC_EXIT = 3,
	REC_SYSCALL = 4,
	REC_LSM = 5,
	REC_KINDS = 6,
};

/* Flags of rec_hdr.flags. */
enum rec_flag {
	F_PATH_TRUNC = 1 << 0,   /* the path walk hit a bound: path is a suffix */
	F_PATH_ERR = 1 << 1,     /* a path component could not be read */
	F_ARGS_TRUNC = 1 << 2,   /* more than ARGS_BYTES of arguments */
	F_ARGS_ERR = 1 << 3,     /* the argument area could not be read */
	F_CWD_TRUNC = 1 << 4,
	F_CWD_ERR = 1 << 5,
	F_GROUPS_TRUNC = 1 << 6, /* more than MAX_GROUPS groups */
	F_KTHREAD = 1 << 7,      /* a kernel thread */
	F_EXE_UNLINKED = 1 << 8, /* the executable has no link left */
	F_NO_MM = 1 << 9,        /* no memory map: no executable, no arguments */
	F_IMA = 1 << 10,         /* ima_algo and ima[] hold the IMA digest */
	F_COMPAT = 1 << 11,      /* a 32-bit system call (ia32) */
	F_NO_CWD = 1 << 12,      /* working directory not collected */
};

/* System calls watched by the tracepoint tier (the values of the filter
 * arrays, indexed by system call number). */
enum sys_code {
	SYS_NONE = 0,
	SYS_SETUID,
	SYS_SETREUID,
	SYS_SETRESUID,
	SYS_SETFSUID,
	SYS_SETGID,
	SYS_SETREGID,
	SYS_SETRESGID,
	SYS_SETFSGID,
	SYS_SETGROUPS,
	SYS_CAPSET,
	SYS_PRCTL,
	SYS_UNSHARE,
	SYS_CLONE,
	SYS_CLONE3,
	SYS_PTRACE,
};

/* LSM hooks of the LSM tier (lsm_rec.hook). */
enum lsm_hook {
	HOOK_SETUID = 1,
	HOOK_SETGID = 2,
	HOOK_CAPSET = 3,
	HOOK_PRCTL = 4,
	HOOK_USERNS = 5,
	HOOK_PTRACE = 6,
	HOOK_BPRM = 7,
};

struct rec_hdr {
	__u16 kind;
	__u16 flags;
	__u32 size;        /* bytes of the whole record */
	__u64 ktime;       /* bpf_ktime_get_boot_ns() at the event */
	__u32 pid;         /* thread group id */
	__u32 tid;         /* thread id */
	__u32 ppid;        /* real_parent's thread group id */
	__u32 cpu;
	__u64 start_ns;    /* group leader's start_boottime */
	char comm[COMM_LEN];
};

struct creds_rec {
	__u32 uid, euid, suid, fsuid;
	__u32 gid, egid, sgid, fsgid;
	__u64 cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	__u32 user_ns;     /* inode of the credentials' user namespace */
	__u32 ngroups;     /* the task's count; at most MAX_GROUPS are in groups */
	__u32 groups[MAX_GROUPS];
	__u8 no_new_privs;
	__u8 seccomp;
	__u8 _pad[6];
};

/* REC_EXEC and REC_FORK. */
struct proc_rec {
	struct rec_hdr h;
	struct creds_rec c;
	__u64 cgroup_id;   /* cgroup v2 id (the cgroup directory's inode) */
	__u64 exe_ino;
	__u32 exe_dev;     /* kernel dev_t: major << 20 | minor */
	__u32 ns_mnt, ns_pid, ns_net, ns_uts, ns_ipc, ns_cgroup, ns_time;
	__u16 path_len, args_len, cwd_len;
	__u8 ima_algo;     /* enum hash_algo, when F_IMA */
	__u8 _pad;
	__u8 ima[IMA_BYTES];
	__u8 data[];
};

/* REC_EXIT. */
struct exit_rec {
	struct rec_hdr h;
	__u32 exit_code;   /* the wait(2) status */
	__u32 _pad;
};

/* REC_SYSCALL: a watched system call returned success. */
struct sys_rec {
	struct rec_hdr h;
	__u32 nr;
	__u32 code;        /* enum sys_code */
	__s64 ret;
	__u64 args[6];
	__u64 clone_flags; /* clone3: the flags read from struct clone_args */
	struct creds_rec c;
};

/* REC_LSM: an LSM hook ran (the decision is passed through unchanged). */
struct lsm_rec {
	struct rec_hdr h;
	__u32 hook;        /* enum lsm_hook */
	__s32 ret;         /* the decision so far, returned unchanged */
	__u64 args[5];
	__u32 target_pid;  /* ptrace_access_check: the tracee's tgid */
	__u32 _pad;
	__u64 target_start_ns;
	struct creds_rec old_c;
	struct creds_rec new_c;
};

/* Value of the live process map, keyed by tgid. */
struct proc_info {
	__u64 start_ns;
	__u32 ppid;
	__u32 execs;
};

/* Value of the IMA stash, keyed by the exec'ing thread's id. */
struct ima_val {
	__u32 algo;
	__u32 _pad;
	__u8 digest[IMA_BYTES];
};

#endif
