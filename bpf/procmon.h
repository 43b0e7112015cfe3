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
	F_BPRM = 1 << 13,        /* proc_rec: bprm_* hold what bprm_check saw */
	F_EXEC_RULES = 1 << 14,  /* proc_rec: exec_* hold sched_process_exec's answer */
};

/* What bprm_check saw of the binary (proc_rec.bprm_flags, lsm_rec.bprm_flags). */
enum bprm_flag {
	BPRM_SETUID = 1 << 0,   /* the file is set-user-ID */
	BPRM_SETGID = 1 << 1,   /* the file is set-group-ID (and group-executable) */
	BPRM_FILELESS = 1 << 2, /* the file has no link: memfd, O_TMPFILE, deleted */
	BPRM_NOSUID = 1 << 3,   /* its mount is nosuid: the bits do nothing */
	BPRM_PATH_LONG = 1 << 4,/* the path is over RULE_STR - 1 bytes: cut */
	BPRM_RULES = 1 << 5,    /* the hook's rules were evaluated: see matched */
};

/* ---- rules evaluated on the LSM tier (methods/ebpf/rules.go fills them) ---- */

#define RULE_STR 256    /* bytes of a rule string, NUL included */
#define RULE_WORDS 64   /* 64-bit words of comparison bits: 4096 per hook */
#define RULE_MAX 64     /* rules per hook */
#define EXEC_ARGS_MAX (1 << 21)    /* bytes of an exec's argument area matched (2 MiB) */
#define EXEC_ARG_PIECES (1 << 20)  /* pieces (arguments, 255-byte parts) read at most */

/* Attributes (rule_op.attr, the low byte of a key's tag). */
enum rule_attr {
	A_UID = 1,
	A_EUID,
	A_GID,
	A_EGID,
	A_ECAPS,
	A_PCAPS,
	A_PATH,
	A_NAME,
	A_PATH_PREFIX,
	A_BIN_PATH,
	A_BIN_NAME,
	A_BIN_PREFIX,
	A_PAR_PATH,
	A_PAR_NAME,
	A_PAR_PREFIX,
	A_ARG,       /* sched_process_exec: an argument after argv[0] */
};

/* Operations of a rule in postfix form (rule_op.kind). */
enum rule_op_kind {
	OP_TRUE = 1, /* push true (an empty scope or event) */
	OP_CMP,      /* push the comparison's bit of the hits */
	OP_CAPS,     /* push whether the capability set has any of caps */
	OP_AND,
	OP_OR,
	OP_NOT,
};

/* rule_op.end: what the value on top of the stack is after this op. */
enum rule_end {
	END_SCOPE = 1, /* the rule's scope */
	END_RULE = 2,  /* the rule's event: the rule is done */
};

/* Sandbox modes (hook_table.mode). */
enum sandbox_mode {
	SANDBOX_OFF = 0,
	SANDBOX_ALLOW = 1, /* deny what a rule's scope covers unless its event matches */
	SANDBOX_DENY = 2,  /* deny what a rule matches */
};

/* Verdicts (lsm_rec.verdict, proc_rec.verdict, proc_rec.exec_verdict). */
enum verdict {
	VERDICT_NONE = 0,   /* no sandbox on the hook */
	VERDICT_ALLOW = 1,
	VERDICT_DENY = 2,   /* the operation failed with EPERM; an exec: SIGKILL sent */
};

struct rule_op {
	__u8 kind;   /* enum rule_op_kind */
	__u8 attr;   /* OP_CAPS: A_ECAPS or A_PCAPS */
	__u8 neg;    /* OP_CMP, OP_CAPS: the comparison was != */
	__u8 any;    /* OP_CAPS: ANY_CAPS: any capability at all */
	__u8 end;    /* enum rule_end, 0 for none */
	__u8 rule;   /* the rule's index in its hook */
	__u16 bit;   /* OP_CMP: the comparison's bit in the hits */
	__u64 caps;  /* OP_CAPS: the capabilities named */
};

/* A hook's rules: ops first .. first+nops-1 of rule_ops, rule by rule. */
struct hook_table {
	__u32 nrules;
	__u32 nops;
	__u32 first;
	__u32 mode;  /* enum sandbox_mode */
	__u32 attrs; /* 1 << attr for each attribute a comparison uses */
	__u32 _pad;
};

/* Keys of the comparison values; tag is hook << 8 | attr. The value is
 * the set of comparisons (bits) the attribute's value satisfies. */
struct int_key {
	__u32 tag;
	__u32 val;
};

struct str_key {
	__u32 tag;
	char s[RULE_STR]; /* NUL-padded */
};

struct rule_hits {
	__u64 w[RULE_WORDS];
};

/* Value of the map of executable paths, keyed by tgid (for the scope
 * attributes). */
struct exe_val {
	__u64 start_ns;
	__u32 len;        /* the path's length (may be over RULE_STR - 1) */
	__u32 _pad;
	char path[RULE_STR];
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
	HOOK_EXEC = 8, /* sched_process_exec: sandbox only, kills (no LSM program) */
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
	__u64 matched;     /* F_BPRM: the bprm_check rules that matched (bit i: rule i) */
	__u32 bprm_flags;  /* F_BPRM: enum bprm_flag */
	__u32 verdict;     /* F_BPRM: enum verdict */
	__u64 exec_matched; /* F_EXEC_RULES: sched_process_exec's rules that matched */
	__u64 exec_scoped;  /* F_EXEC_RULES: those whose scope covered the exec */
	__u32 exec_verdict; /* F_EXEC_RULES: enum verdict (DENY: killed) */
	__s32 exec_err;     /* F_EXEC_RULES: bpf_send_signal's error, 0 when sent */
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

/* REC_LSM: an LSM hook ran. Without a sandbox the decision is passed
 * through unchanged; a sandbox may deny (verdict). */
struct lsm_rec {
	struct rec_hdr h;
	__u32 hook;        /* enum lsm_hook */
	__s32 ret;         /* the decision before this program */
	__u64 matched;     /* the rules that matched (bit i: rule i), with BPRM_RULES/rules */
	__u64 scoped;      /* the rules whose scope covered the operation */
	__u32 verdict;     /* enum verdict */
	__u32 rules;       /* 1: the hook's rules were evaluated */
	__u32 bprm_flags;  /* bprm_check: enum bprm_flag */
	__u32 path_len;    /* bprm_check: bytes of path, NUL excluded */
	char path[RULE_STR]; /* bprm_check: the binary, cut to RULE_STR - 1 bytes */
	__u64 args[5];
	__u32 target_pid;  /* ptrace_access_check: the tracee's tgid */
	__u32 _pad;
	__u64 target_start_ns;
	struct creds_rec old_c;
	struct creds_rec new_c;
};

/* Key of the map of reported exits: a thread group, by tgid and start. */
struct exit_key {
	__u64 start_ns;
	__u32 tgid;
	__u32 _pad;
};

/* Value of the bprm stash, keyed by the exec'ing thread's id: what
 * bprm_check saw, for the exec record that follows. */
struct bprm_val {
	__u32 ima_algo;    /* with has_ima */
	__u32 has_ima;
	__u64 matched;
	__u32 flags;       /* enum bprm_flag */
	__u32 verdict;
	__u8 digest[IMA_BYTES];
	struct exe_val exe; /* with want_exe_paths */
};

#endif
