package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Hook names, as seed 000 names them (and methods/ebpf.Hook*).
const (
	HookSetuid            = "setuid"
	HookSetgid            = "setgid"
	HookCapset            = "capset"
	HookPrctl             = "prctl"
	HookCreateUserNS      = "create_user_ns"
	HookPtraceAccessCheck = "ptrace_access_check"
	HookBprmCheck         = "bprm_check"
	// HookSchedProcessExec is Bombini's sandbox-only hook on the exec
	// tracepoint: its rules match an exec's arguments (arg0..arg31) and a
	// matching exec is killed (SIGKILL) before the new image runs.
	HookSchedProcessExec = "sched_process_exec"
)

// Hooks lists every hook, in seed 000's order.
var Hooks = []string{HookSetuid, HookSetgid, HookCapset, HookPrctl, HookCreateUserNS,
	HookPtraceAccessCheck, HookBprmCheck, HookSchedProcessExec}

// HookAlias maps other spellings of a hook name to the name: seed 000's
// example writes "setcaps" for capset.
var HookAlias = map[string]string{"setcaps": HookCapset}

// CanonicalHook returns the hook a name (or alias) stands for.
func CanonicalHook(name string) (string, bool) {
	if a, ok := HookAlias[name]; ok {
		return a, true
	}
	return name, slices.Contains(Hooks, name)
}

// attrType is the type of an attribute's values.
type attrType uint8

const (
	typeInt    attrType = iota // an id: decimal or hex integer, 0 to 2^32-1
	typeCaps                   // a capability set: capability names or ANY_CAPS
	typeString                 // a string compared whole
	typePrefix                 // an absolute path prefix, matched by whole components
	typeArg                    // an exec argument: a string, compared with each argument
)

// attrID names an attribute.
type attrID uint8

const (
	attrUID attrID = iota
	attrEUID
	attrGID
	attrEGID
	attrECaps
	attrPCaps
	attrPath
	attrName
	attrPathPrefix
	attrBinaryPath
	attrBinaryName
	attrBinaryPrefix
	attrParentBinaryPath
	attrParentBinaryName
	attrParentBinaryPrefix
	attrArg // arg0..arg31 (node.arg tells which)
	numAttrs
)

// MaxArgAttr is the highest N of the argN attributes of sched_process_exec
// (arg0..arg31, as in Bombini).
const MaxArgAttr = 31

// attrInfo describes one attribute.
type attrInfo struct {
	name string
	typ  attrType
}

var attrs = [numAttrs]attrInfo{
	attrUID:                {"uid", typeInt},
	attrEUID:               {"euid", typeInt},
	attrGID:                {"gid", typeInt},
	attrEGID:               {"egid", typeInt},
	attrECaps:              {"ecaps", typeCaps},
	attrPCaps:              {"pcaps", typeCaps},
	attrPath:               {"path", typeString},
	attrName:               {"name", typeString},
	attrPathPrefix:         {"path_prefix", typePrefix},
	attrBinaryPath:         {"binary_path", typeString},
	attrBinaryName:         {"binary_name", typeString},
	attrBinaryPrefix:       {"binary_prefix", typePrefix},
	attrParentBinaryPath:   {"parent_binary_path", typeString},
	attrParentBinaryName:   {"parent_binary_name", typeString},
	attrParentBinaryPrefix: {"parent_binary_prefix", typePrefix},
	attrArg:                {"arg", typeArg},
}

// scopeAttrs are the scope attributes, valid for every hook, in the scope
// expression and in the event expression.
var scopeAttrs = []attrID{attrBinaryPath, attrBinaryName, attrBinaryPrefix,
	attrParentBinaryPath, attrParentBinaryName, attrParentBinaryPrefix}

// hookAttrs are the event attributes of each hook (seed 000; bprm_check
// adds euid, egid and ecaps).
var hookAttrs = map[string][]attrID{
	HookSetuid:            {attrUID, attrEUID},
	HookSetgid:            {attrGID, attrEGID},
	HookCapset:            {attrECaps, attrPCaps},
	HookPrctl:             nil,
	HookCreateUserNS:      {attrECaps, attrEUID},
	HookPtraceAccessCheck: nil,
	HookBprmCheck:         {attrPath, attrName, attrPathPrefix, attrEUID, attrEGID, attrECaps},
	HookSchedProcessExec:  {attrArg},
}

// Attributes returns the names of the event attributes of a hook (nil for
// an unknown hook or one with only scope attributes).
func Attributes(hook string) []string {
	hook, _ = CanonicalHook(hook)
	var out []string
	for _, a := range hookAttrs[hook] {
		out = append(out, attrLabel(a))
	}
	return out
}

// attrLabel returns an attribute's name for messages and Attributes:
// "arg0..arg31" for the arguments.
func attrLabel(a attrID) string {
	if a == attrArg {
		return fmt.Sprintf("arg0..arg%d", MaxArgAttr)
	}
	return attrs[a].name
}

// ScopeAttributes returns the names of the scope attributes.
func ScopeAttributes() []string {
	var out []string
	for _, a := range scopeAttrs {
		out = append(out, attrs[a].name)
	}
	return out
}

// attrByName returns the attribute of a name.
func attrByName(name string) (attrID, bool) {
	id, _, ok := attrByNameN(name)
	return id, ok
}

// attrByNameN returns the attribute of a name and, for argN, N.
func attrByNameN(name string) (attrID, int, bool) {
	if n, ok := argNumber(name); ok {
		return attrArg, n, true
	}
	for i, a := range attrs {
		if a.name == name && attrID(i) != attrArg {
			return attrID(i), 0, true
		}
	}
	return 0, 0, false
}

// argNumber returns N of "argN" (0 to MaxArgAttr, decimal, no leading
// zero).
func argNumber(name string) (int, bool) {
	digits, ok := strings.CutPrefix(name, "arg")
	if !ok || digits == "" || len(digits) > 2 || (len(digits) > 1 && digits[0] == '0') {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 || n > MaxArgAttr {
		return 0, false
	}
	return n, true
}

// allowed returns the attributes an expression of hook may use: the scope
// attributes, and the hook's event attributes unless scopeOnly.
func allowed(hook string, scopeOnly bool) []attrID {
	if scopeOnly {
		return scopeAttrs
	}
	return append(slices.Clone(hookAttrs[hook]), scopeAttrs...)
}

// names joins attribute names for messages.
func names(ids []attrID) string {
	var s []string
	for _, a := range ids {
		s = append(s, attrLabel(a))
	}
	return strings.Join(s, ", ")
}

// isReserved reports whether name cannot be a list or macro name: an
// attribute or a keyword.
func isReserved(name string) bool {
	_, attr := attrByName(name)
	_, kw := keywords[name]
	return attr || kw
}

// checkName checks a list or macro name.
func checkName(kind, name string) error {
	if name == "" || !isIdentStart(name[0]) {
		return fmt.Errorf("%w: %s name %s: expected a letter or _ first", ErrDefs, kind, quote(name))
	}
	for i := 0; i < len(name); i++ {
		if !isIdentByte(name[i]) {
			return fmt.Errorf("%w: %s name %s: expected only letters, digits and _", ErrDefs, kind, quote(name))
		}
	}
	if isReserved(name) {
		return fmt.Errorf("%w: %s name %s is an attribute or a keyword", ErrDefs, kind, quote(name))
	}
	return nil
}
