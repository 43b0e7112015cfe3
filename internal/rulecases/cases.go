// Package rulecases is the shared table of rule cases: a rule, the
// attribute values of an event and whether the rule matches them. Package
// rules checks its evaluator against it (Match and the postfix form), and
// methods/ebpf its compiled kernel tables, so that the same rule gives the
// same answer wherever it is evaluated.
package rulecases

import (
	"github.com/proctrack/proctrack/procmon/process"
	"github.com/proctrack/proctrack/rules"
)

// Case is one rule of a hook, an input and the expected answer.
type Case struct {
	Hook, Rule string
	In         rules.Input
	Want       bool
}

// Defs are the lists and macros the cases use.
var Defs = &rules.Defs{
	Lists: map[string][]string{
		"shells":  {"/bin/bash", "/bin/sh", "/usr/bin/zsh"},
		"admins":  {"0", "0x3e8"},
		"netcaps": {"CAP_NET_ADMIN", "CAP_NET_RAW"},
		"tmpdirs": {"/tmp", "/dev/shm/"},
	},
	Macros: map[string]string{
		"is_root":   "euid == 0",
		"from_tmp":  "path_prefix in tmpdirs",
		"root_tmp":  "is_root AND from_tmp",
		"shell_str": `path == "shells"`,
	},
}

// Caps returns the set of the named capabilities; it panics on a name that
// is not one (test data).
func Caps(names ...string) process.CapSet {
	var s process.CapSet
	for _, n := range names {
		c, ok := process.CapByName(n)
		if !ok {
			panic(n)
		}
		s |= 1 << uint(c)
	}
	return s
}

var all = process.CapSet(1<<(process.CapLast+1) - 1)

// Cases are the cases: seed 000's five example rules, then integers,
// capabilities, precedence, scope attributes, lists and macros, strings.
var Cases = []Case{
	// Seed 000's five example rules, positive and negative.
	{"setuid", "uid == 1000 AND euid == 0", rules.Input{UID: 1000, EUID: 0}, true},
	{"setuid", "uid == 1000 AND euid == 0", rules.Input{UID: 1000, EUID: 1000}, false},
	{"setuid", "uid == 1000 AND euid == 0", rules.Input{UID: 0, EUID: 0}, false},
	{"setgid", "gid == 1000 AND egid == 0", rules.Input{GID: 1000, EGID: 0}, true},
	{"setgid", "gid == 1000 AND egid == 0", rules.Input{GID: 1000, EGID: 1000}, false},
	{"setcaps", `ecaps == "CAP_SYS_ADMIN"`, rules.Input{ECaps: Caps("CAP_SYS_ADMIN")}, true},
	{"setcaps", `ecaps == "CAP_SYS_ADMIN"`, rules.Input{ECaps: all}, true},
	{"setcaps", `ecaps == "CAP_SYS_ADMIN"`, rules.Input{ECaps: Caps("CAP_NET_RAW"), PCaps: Caps("CAP_SYS_ADMIN")}, false},
	{"create_user_ns", `NOT ecaps == "CAP_SYS_ADMIN"`, rules.Input{EUID: 1000}, true},
	{"create_user_ns", `NOT ecaps == "CAP_SYS_ADMIN"`, rules.Input{ECaps: Caps("CAP_NET_ADMIN")}, true},
	{"create_user_ns", `NOT ecaps == "CAP_SYS_ADMIN"`, rules.Input{ECaps: all}, false},
	{"bprm_check", `path_prefix == "/tmp" AND name == "ls"`, rules.Input{Path: "/tmp/ls"}, true},
	{"bprm_check", `path_prefix == "/tmp" AND name == "ls"`, rules.Input{Path: "/tmp/a/b/ls"}, true},
	{"bprm_check", `path_prefix == "/tmp" AND name == "ls"`, rules.Input{Path: "/tmpfoo/ls"}, false},
	{"bprm_check", `path_prefix == "/tmp" AND name == "ls"`, rules.Input{Path: "/usr/bin/ls"}, false},
	{"bprm_check", `path_prefix == "/tmp" AND name == "ls"`, rules.Input{Path: "/tmp/lsx"}, false},
	{"bprm_check", `path_prefix == "/tmp" AND name == "ls"`, rules.Input{Path: "/tmp/x", Name: "ls"}, true},

	// Integers.
	{"setuid", "uid == 0x3e8", rules.Input{UID: 1000}, true},
	{"setuid", "uid == 0X3E8", rules.Input{UID: 1000}, true},
	{"setuid", "uid == 4294967295", rules.Input{UID: 1<<32 - 1}, true},
	{"setuid", "uid in [0, 1000, 0x7d0]", rules.Input{UID: 2000}, true},
	{"setuid", "uid in [0, 1000]", rules.Input{UID: 2000}, false},
	{"setuid", "uid != 0", rules.Input{UID: 5}, true},
	{"setuid", "uid != 0", rules.Input{UID: 0}, false},
	// Capabilities.
	{"capset", `ecaps == "ANY_CAPS"`, rules.Input{ECaps: Caps("CAP_CHOWN")}, true},
	{"capset", `ecaps == "ANY_CAPS"`, rules.Input{}, false},
	{"capset", `ecaps in ["ANY_CAPS"]`, rules.Input{ECaps: Caps("CAP_CHOWN")}, true},
	{"capset", `pcaps in ["CAP_NET_RAW", "CAP_BPF"]`, rules.Input{PCaps: Caps("CAP_BPF")}, true},
	{"capset", `pcaps in ["CAP_NET_RAW", "CAP_BPF"]`, rules.Input{ECaps: Caps("CAP_BPF")}, false},
	{"capset", `ecaps == "sys_admin"`, rules.Input{ECaps: Caps("CAP_SYS_ADMIN")}, true},
	{"capset", `ecaps != "CAP_SYS_ADMIN"`, rules.Input{ECaps: Caps("CAP_CHOWN")}, true},
	// Precedence: NOT > AND > OR, left to right.
	{"setuid", "uid == 1 OR uid == 2 AND euid == 3", rules.Input{UID: 1, EUID: 9}, true},
	{"setuid", "(uid == 1 OR uid == 2) AND euid == 3", rules.Input{UID: 1, EUID: 9}, false},
	{"setuid", "NOT uid == 1 AND euid == 3", rules.Input{UID: 2, EUID: 3}, true},
	{"setuid", "NOT (uid == 1 AND euid == 3)", rules.Input{UID: 1, EUID: 4}, true},
	{"setuid", "NOT NOT uid == 1", rules.Input{UID: 1}, true},
	{"setuid", "not uid == 1 or euid == 2", rules.Input{UID: 1, EUID: 2}, true},
	// Scope attributes in the event expression.
	{"prctl", `binary_name == "bash"`, rules.Input{Binary: "/usr/bin/bash"}, true},
	{"prctl", `binary_prefix == "/usr"`, rules.Input{Binary: "/usr/bin/bash"}, true},
	{"prctl", `parent_binary_path == "/usr/sbin/sshd"`, rules.Input{ParentBinary: "/usr/sbin/sshd"}, true},
	{"prctl", `parent_binary_name in ["sshd", "login"]`, rules.Input{ParentBinary: "/bin/login"}, true},
	{"prctl", `parent_binary_prefix == "/"`, rules.Input{ParentBinary: "/bin/login"}, true},
	{"prctl", `parent_binary_prefix == "/"`, rules.Input{}, false},
	{"ptrace_access_check", "", rules.Input{}, true},
	// The match-all form.
	{"ptrace_access_check", "ANY", rules.Input{}, true},
	{"setuid", "any", rules.Input{UID: 5}, true},
	// Lists and macros.
	{"bprm_check", "path in shells", rules.Input{Path: "/bin/sh"}, true},
	{"bprm_check", "path in shells", rules.Input{Path: "/bin/dash"}, false},
	{"bprm_check", `path == "shells"`, rules.Input{Path: "shells"}, true},
	{"bprm_check", "shell_str", rules.Input{Path: "shells"}, true},
	{"setuid", "euid in admins", rules.Input{EUID: 1000}, true},
	{"capset", "ecaps in netcaps", rules.Input{ECaps: Caps("CAP_NET_RAW")}, true},
	{"bprm_check", "root_tmp", rules.Input{EUID: 0, Path: "/dev/shm/x"}, true},
	{"bprm_check", "root_tmp", rules.Input{EUID: 1, Path: "/dev/shm/x"}, false},
	{"bprm_check", "NOT is_root OR from_tmp", rules.Input{EUID: 0, Path: "/tmp/x"}, true},
	{"bprm_check", "NOT is_root OR from_tmp", rules.Input{EUID: 0, Path: "/bin/x"}, false},
	// Strings with escapes.
	{"bprm_check", `name == "a\"b\\c"`, rules.Input{Path: `/x/a"b\c`}, true},
	// Bombini's list syntax: values and list names in parentheses.
	{"bprm_check", "path in (shells)", rules.Input{Path: "/bin/sh"}, true},
	{"setuid", "uid in (0, 1000)", rules.Input{UID: 1000}, true},
	{"setuid", "uid in (admins)", rules.Input{UID: 7}, false},
	{"bprm_check", `path in [shells, "/opt/x"]`, rules.Input{Path: "/opt/x"}, true},
	// Empty lists (Bombini's grammar): no value is in them.
	{"setuid", "uid in []", rules.Input{UID: 0}, false},
	{"setuid", "NOT uid in []", rules.Input{UID: 0}, true},
	{"bprm_check", "path in ()", rules.Input{Path: "/bin/sh"}, false},
	// Capability sets joined by "|", as Bombini reads them.
	{"capset", `ecaps == "CAP_SYS_ADMIN | CAP_NET_RAW"`, rules.Input{ECaps: Caps("CAP_NET_RAW")}, true},
	{"capset", `ecaps in ["CAP_SYS_ADMIN|CAP_NET_RAW"]`, rules.Input{ECaps: Caps("CAP_CHOWN")}, false},
	// sched_process_exec: argN holds when one of the arguments (argv[1:])
	// is one of its values, wherever it is; N tells comparisons apart.
	{"sched_process_exec", `arg0 in ["-r", "-rf"] AND arg1 in ["/etc/passwd"]`, rules.Input{Args: []string{"-rf", "/etc/passwd"}}, true},
	{"sched_process_exec", `arg0 in ["-r", "-rf"] AND arg1 in ["/etc/passwd"]`, rules.Input{Args: []string{"/etc/passwd", "-r"}}, true},
	{"sched_process_exec", `arg0 in ["-r", "-rf"] AND arg1 in ["/etc/passwd"]`, rules.Input{Args: []string{"-f", "/etc/passwd"}}, false},
	{"sched_process_exec", `arg0 in ["-r", "-rf"] AND arg1 in ["/etc/passwd"]`, rules.Input{Args: []string{"-rf", "/etc/passwd2"}}, false},
	{"sched_process_exec", `arg5 == "-rf"`, rules.Input{Args: []string{"-rf"}}, true},
	{"sched_process_exec", `NOT arg0 == "--help"`, rules.Input{}, true},
	{"sched_process_exec", `binary_name == "rm" AND arg31 in shells`, rules.Input{Binary: "/usr/bin/rm", Args: []string{"/bin/sh"}}, true},
	{"sched_process_exec", `arg0 in []`, rules.Input{Args: []string{""}}, false},
	{"sched_process_exec", `arg0 == ""`, rules.Input{Args: []string{"x", ""}}, true},
}
