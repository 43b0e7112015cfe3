// Package rules is proctrack's rule language: the event filters of seed
// 000's privilege hooks, compiled once and evaluated in userspace on the
// events of every monitoring method (ebpf, netlink, audit), so that the
// same rule gives the same answer whichever method runs.
//
// A rule belongs to a hook and has a name, an event expression and an
// optional scope expression:
//
//	setuid:
//	  enabled: true
//	  rules:
//	    - rule: UidTestRule
//	      event: uid == 1000 AND euid == 0
//	      scope: parent_binary_name == "sshd"
//
// An event matches a rule when both expressions hold. ANY, the match-all
// form, always holds, and so does an empty expression; but a configuration
// file (procmon.ParseConfig) must give every rule an event, ANY for a rule
// on every event of its hook, so that a rule that lost its event by
// mistake is an error rather than a rule matching everything. A rule
// without scope holds for every process. Compile and CompileSpec compile a rule, NewSet gathers
// rules, Set.MatchEvent maps a monitor event to its hook (FromEvent) and
// returns the rules it matches. procmon.ParseConfig reads rules from YAML.
//
// # Grammar
//
//	event      = "ANY" | expr | ""     ("" is refused in a configuration file)
//	scope      = "ANY" | expr | ""
//	expr       = and { "OR" and }
//	and        = not { "AND" not }
//	not        = "NOT" not | primary
//	primary    = "(" expr ")" | comparison | macro
//	comparison = attribute ( "==" | "!=" ) value
//	           | attribute "in" ( "[" [ elems ] "]" | "(" [ elems ] ")" | list )
//	elems      = elem { "," elem }       ("[]" is an empty list: it holds no value)
//	elem       = value | list
//	value      = integer | string
//	integer    = decimal | "0x" hexadecimal        (1000, 0x3e8)
//	string     = '"' { character | '\"' | '\\' } '"'
//
// Precedence, highest first: NOT, AND, OR; AND and OR group from the left;
// parentheses override. So `NOT ecaps == "CAP_SYS_ADMIN"` is
// `NOT (ecaps == "CAP_SYS_ADMIN")` and `a OR b AND c` is `a OR (b AND c)`.
// Keywords are written all upper or all lower case (AND, and, OR, or, NOT,
// not, in, IN, ANY, any); ANY stands alone, as the whole expression. Blanks and newlines separate tokens. A decimal integer has
// no leading zero (no octal), and no "_".
//
// # Attributes
//
// Event attributes, per hook (seed 000; bprm_check adds euid, egid and
// ecaps):
//
//	hook                 attributes
//	setuid               uid euid                    the ids after the call
//	setgid               gid egid                    the ids after the call
//	capset               ecaps pcaps                 the sets after the call
//	create_user_ns       ecaps euid                  of the creating process
//	bprm_check           path name path_prefix       the executed binary
//	                     euid egid ecaps             of the new image
//	prctl                (scope attributes only)
//	ptrace_access_check  (scope attributes only)
//	sched_process_exec   arg0 .. arg31               the exec's arguments
//
// "setcaps", the spelling of seed 000's example, is accepted for capset.
// sched_process_exec is Bombini's sandbox-only hook on the exec
// tracepoint (see procmon.SandboxConfig): its scope attributes are those
// of the new image and its parent.
//
// Scope attributes, valid for every hook in both expressions: binary_path,
// binary_name, binary_prefix (the process's binary) and
// parent_binary_path, parent_binary_name, parent_binary_prefix (its
// parent's). FromEvent says where each value comes from.
//
// # Semantics
//
//   - uid, euid, gid, egid take integers from 0 to 4294967295; == is
//     equality, "in" is membership in the list.
//   - ecaps and pcaps take capability names in quotes, as capabilities(7)
//     writes them ("CAP_SYS_ADMIN"; case and the CAP_ prefix are optional)
//     or the placeholder "ANY_CAPS". As in seed 000, comparing a set with
//     one name is a membership test: `ecaps == "CAP_SYS_ADMIN"` holds when
//     the effective set contains CAP_SYS_ADMIN, whatever else it holds;
//     `ecaps == "ANY_CAPS"` (or `ecaps in ["ANY_CAPS"]`) holds when the set
//     is not empty; `ecaps in ["CAP_A", "CAP_B"]` holds when it contains
//     any of them, and so does `ecaps == "CAP_A | CAP_B"` (names joined by
//     "|", as Bombini reads a capability value).
//   - argN (arg0 to arg31, sched_process_exec) take strings, as in
//     Bombini: `argN in [values]` holds when one of the exec's arguments
//     after argv[0], wherever it is, equals one of the values. N only
//     tells comparisons apart; it is not the argument's position:
//     `arg0 in ["-r", "-rf"] AND arg1 in ["/etc/passwd"]` holds for
//     `rm -rf /etc/passwd` and for `rm /etc/passwd -r`.
//   - `attribute in []` holds for no value (NOT of it, for every value).
//   - path, name, binary_path, binary_name and the parent's compare whole
//     strings: name is the last component of the path.
//   - path_prefix, binary_prefix and parent_binary_prefix take absolute
//     paths and match by whole components: `path_prefix == "/tmp"` holds
//     for /tmp itself and every path under /tmp/ ("/tmp/ls",
//     "/tmp/a/b/ls") but not for "/tmpfoo/ls"; trailing slashes in the
//     value are ignored, so "/" matches every path. An unknown (empty)
//     path matches no prefix. See HasPathPrefix.
//   - a != b is NOT (a == b): `ecaps != "CAP_SYS_ADMIN"` holds when the
//     set lacks it.
//   - An attribute an event does not carry compares as zero, the empty
//     set or "".
//
// # Lists and macros
//
// Defs holds named lists (`shells: ["/bin/bash", "/bin/sh"]`, used as
// `path in shells`) and macros (`is_root: euid == 0`, used where a
// comparison may stand: `is_root AND NOT name == "sudo"`; a macro expands
// as if parenthesized, and may use other macros and lists). Both expand as
// whole identifiers only, never inside a string literal ("shells" in
// quotes is a string) nor as part of a longer identifier. Their names must
// not be attributes or keywords, and no name may be both. A list's
// elements are strings read by the attribute they are compared with (a
// number for uid, a capability name for ecaps).
//
// # Errors
//
// Compile errors are *Error values matching ErrSyntax, ErrAttribute,
// ErrLimit, ErrDefs or ErrUnknownHook, and name the rule, the hook, the
// line and column (in the file, when compiled from one) and what was
// expected:
//
//	rule "UidTestRule" (setuid), line 1, column 13: expected a value after "==", found "AND"
//
// NewSet refuses two rules of a hook with one name (ErrDuplicate). An error
// quotes at most 64 bytes of a name or value, then "..." and its length.
//
// An error in a token a macro expanded to is placed at the macro's name and
// says which macro.
//
// # Limits
//
//   - MaxRuleBytes (65536): the longest event or scope expression or
//     macro.
//   - MaxOps (64): operations per rule, event and scope together, after
//     macro expansion; each comparison, AND, OR and NOT counts one.
//   - MaxValues (65536): values after one "in", lists included. A long
//     list costs no more per event than a short one: from 16 values a
//     comparison looks its values up in a map (and the kernel's tables
//     hold each value once, as a hash map key).
//   - MaxDepth (32): nesting of parentheses and NOTs.
//   - MaxMacroDepth (8): macros within macros; a macro may not use itself.
//   - MaxRulesPerHook (64): rules per hook in a Set (NewSet).
//
// The limits bound the work per event (at most MaxOps comparisons, each one
// lookup) and the memory of the rules and of the kernel's tables. Bombini
// has tighter ones (32 rules per hook, 16 operations, 8 "in" per
// attribute) and no limit on values; a rule within Bombini's limits is
// within these.
//
// # Evaluation and enforcement
//
// Match evaluates a rule in Go; Postfix gives the same expressions in
// postfix order (Op), from which methods/ebpf builds the BPF map tables
// the LSM tier evaluates in the kernel (EvalPostfix is the reference for
// that form). internal/rulecases holds the table of cases both are checked
// against. Rules select the events to report; the configuration's sandbox
// blocks (procmon.SandboxConfig) make the LSM tier deny with them.
package rules
