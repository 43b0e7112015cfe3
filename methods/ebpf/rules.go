package ebpf

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/proctrack/proctrack/bpf"
	"github.com/proctrack/proctrack/rules"
)

// SandboxMode is how a hook's rules are enforced (Config.Sandbox).
type SandboxMode uint8

// Sandbox modes.
const (
	// SandboxOff reports what the rules match and denies nothing.
	SandboxOff SandboxMode = iota
	// SandboxAllowList (seed 000's default, deny_list: false) denies an
	// operation that the scope of at least one of the hook's rules covers
	// and that no rule matches (scope and event): a rule without scope
	// covers every process, so its event lists all that is allowed.
	SandboxAllowList
	// SandboxDenyList (deny_list: true) denies what a rule matches.
	SandboxDenyList
)

// String returns "off", "allow-list" or "deny-list".
func (m SandboxMode) String() string {
	switch m {
	case SandboxAllowList:
		return "allow-list"
	case SandboxDenyList:
		return "deny-list"
	}
	return "off"
}

// SandboxHooks are the hooks that can deny: the others report only.
var SandboxHooks = []string{HookSetuid, HookSetgid, HookCapset, HookCreateUserNS, HookBprmCheck, HookSchedProcessExec}

// ErrSandbox is the error of a sandbox that cannot be enforced: the LSM
// tier does not run, or the hook cannot deny.
var ErrSandbox = errors.New("sandbox mode unavailable")

// Limits of the kernel's rule tables, beyond those of package rules.
const (
	// MaxKernelString is the longest string a rule may compare in the
	// kernel (bytes): paths, names and prefixes. A path the kernel sees
	// that is longer matches path_prefix rules by its first bytes only.
	MaxKernelString = ruleStr - 1
	// maxComparisons is the most comparisons of integers and strings in
	// one hook's rules (the bits of struct rule_hits).
	maxComparisons = ruleWords * 64
)

// The kernel's rule constants (bpf/procmon.h; TestKernelConstants checks
// them against the object's BTF).
const (
	ruleStr   = 256 // RULE_STR
	ruleWords = 64  // RULE_WORDS
	ruleMax   = 64  // RULE_MAX

	// enum rule_attr
	aUID, aEUID, aGID, aEGID, aECaps, aPCaps                       = 1, 2, 3, 4, 5, 6
	aPath, aName, aPathPrefix                                      = 7, 8, 9
	aBinPath, aBinName, aBinPrefix, aParPath, aParName, aParPrefix = 10, 11, 12, 13, 14, 15
	aArg                                                           = 16
	// enum rule_op_kind
	opTrue, opCmp, opCaps, opAnd, opOr, opNot = 1, 2, 3, 4, 5, 6
	// enum rule_end
	endScope, endRule = 1, 2
	// enum verdict
	verdictNone, verdictAllow, verdictDeny = 0, 1, 2
	// enum bprm_flag
	bprmSetuid, bprmSetgid, bprmFileless, bprmNosuid, bprmPathLong, bprmRules = 1, 2, 4, 8, 16, 32
)

// hookCodes maps hook names to enum lsm_hook.
var hookCodes = map[string]uint32{
	HookSetuid: hookSetuid, HookSetgid: hookSetgid, HookCapset: hookCapset, HookPrctl: hookPrctl,
	HookCreateUserNS: hookUserNS, HookPtraceAccessCheck: hookPtrace, HookBprmCheck: hookBprm,
	HookSchedProcessExec: hookExec,
}

// attrCodes maps attribute names to enum rule_attr.
var attrCodes = map[string]uint8{
	"uid": aUID, "euid": aEUID, "gid": aGID, "egid": aEGID,
	"ecaps": aECaps, "pcaps": aPCaps,
	"path": aPath, "name": aName, "path_prefix": aPathPrefix,
	"binary_path": aBinPath, "binary_name": aBinName, "binary_prefix": aBinPrefix,
	"parent_binary_path": aParPath, "parent_binary_name": aParName, "parent_binary_prefix": aParPrefix,
}

// ruleTables is a rule set compiled for the kernel.
type ruleTables struct {
	hooks map[uint32]bpf.ProcmonHookTable
	ops   []bpf.ProcmonRuleOp
	ints  map[bpf.ProcmonIntKey]*bpf.ProcmonRuleHits
	strs  map[bpf.ProcmonStrKey]*bpf.ProcmonRuleHits
	names map[uint32][]string // rule names by hook code, by bit
	scope bool                // a rule uses a scope attribute: keep exe_paths
}

// compileRules compiles the rules of the enabled hooks and their sandbox
// modes into the kernel's tables.
func compileRules(set *rules.Set, sandbox map[string]SandboxMode, hooks map[string]bool) (*ruleTables, error) {
	t := &ruleTables{
		hooks: map[uint32]bpf.ProcmonHookTable{},
		ints:  map[bpf.ProcmonIntKey]*bpf.ProcmonRuleHits{},
		strs:  map[bpf.ProcmonStrKey]*bpf.ProcmonRuleHits{},
		names: map[uint32][]string{},
	}
	for _, hook := range HookNames {
		rs := set.Rules(hook)
		mode := sandbox[hook]
		if !hooks[hook] || (len(rs) == 0 && mode == SandboxOff) {
			continue
		}
		code := hookCodes[hook]
		if hook == HookSchedProcessExec && mode == SandboxOff {
			return nil, fmt.Errorf("ebpf: %w: %s only enforces: its rules need a sandbox mode (Config.Sandbox)", ErrSandbox, hook)
		}
		if len(rs) > ruleMax {
			return nil, fmt.Errorf("ebpf: hook %s has %d rules; the kernel's tables hold %d", hook, len(rs), ruleMax)
		}
		ht := bpf.ProcmonHookTable{Nrules: uint32(len(rs)), First: uint32(len(t.ops)), Mode: uint32(mode)}
		bit := 0
		for i, r := range rs {
			scope, event := r.Postfix()
			for part, ops := range [][]rules.Op{scope, event} {
				if d := rules.StackDepth(ops); d > 64 {
					return nil, fmt.Errorf("ebpf: rule %s/%s: its evaluation needs %d stack slots; the kernel has 64", hook, r.Name(), d)
				}
				for j, op := range ops {
					k, err := t.op(code, op, &bit, &ht.Attrs)
					if err != nil {
						return nil, fmt.Errorf("ebpf: rule %s/%s: %w", hook, r.Name(), err)
					}
					k.Rule = uint8(i)
					if j == len(ops)-1 {
						k.End = uint8(endScope)
						if part == 1 {
							k.End = uint8(endRule)
						}
					}
					t.ops = append(t.ops, k)
				}
			}
			t.names[code] = append(t.names[code], r.Name())
		}
		ht.Nops = uint32(len(t.ops)) - ht.First
		t.hooks[code] = ht
		const scopeAttrs = 1<<aBinPath | 1<<aBinName | 1<<aBinPrefix |
			1<<aParPath | 1<<aParName | 1<<aParPrefix
		if ht.Attrs&scopeAttrs != 0 {
			t.scope = true
		}
	}
	return t, nil
}

// execOnly returns the hooks of hooks that the tracepoint tier evaluates
// in the kernel: sched_process_exec alone.
func execOnly(hooks map[string]bool) map[string]bool {
	return map[string]bool{HookSchedProcessExec: hooks[HookSchedProcessExec]}
}

// execRules reports whether the tables hold sched_process_exec's rules.
func (t *ruleTables) execRules() bool {
	if t == nil {
		return false
	}
	_, ok := t.hooks[hookExec]
	return ok
}

// op compiles one operation of hook code; comparisons of integers and
// strings take the next bit.
func (t *ruleTables) op(code uint32, op rules.Op, bit *int, attrs *uint32) (bpf.ProcmonRuleOp, error) {
	var k bpf.ProcmonRuleOp
	switch op.Kind {
	case rules.OpTrue:
		k.Kind = opTrue
	case rules.OpAnd:
		k.Kind = opAnd
	case rules.OpOr:
		k.Kind = opOr
	case rules.OpNot:
		k.Kind = opNot
	case rules.OpMatch:
		a, ok := attrCodes[op.Attr]
		if strings.HasPrefix(op.Attr, "arg") {
			a, ok = aArg, true // arg0..arg31: one attribute, each comparison its bit
		}
		if !ok {
			return k, fmt.Errorf("attribute %q has no kernel form", op.Attr)
		}
		if op.Negate {
			k.Neg = 1
		}
		k.Attr = a
		if a == aECaps || a == aPCaps {
			k.Kind, k.Caps = opCaps, uint64(op.Caps)
			if op.AnyCaps {
				k.Any = 1
			}
			return k, nil
		}
		if *bit >= maxComparisons {
			return k, fmt.Errorf("the hook's rules have more than %d comparisons of ids and paths", maxComparisons)
		}
		k.Kind, k.Bit = opCmp, uint16(*bit)
		*attrs |= 1 << a
		tag := code<<8 | uint32(a)
		set := func(h *bpf.ProcmonRuleHits) { h.W[*bit/64] |= 1 << (*bit % 64) }
		for _, v := range op.Ints {
			key := bpf.ProcmonIntKey{Tag: tag, Val: v}
			if t.ints[key] == nil {
				t.ints[key] = &bpf.ProcmonRuleHits{}
			}
			set(t.ints[key])
		}
		for _, s := range op.Strings {
			if a == aArg && len(s) > MaxKernelString {
				return k, fmt.Errorf("%s value %.40q...: the kernel compares arguments of at most %d bytes", op.Attr, s, MaxKernelString)
			}
			if strings.HasSuffix(op.Attr, "prefix") {
				s = strings.TrimRight(s, "/")
			}
			if len(s) > MaxKernelString || strings.IndexByte(s, 0) >= 0 {
				return k, fmt.Errorf("%s value %.40q...: the kernel compares strings of at most %d bytes without NUL", op.Attr, s, MaxKernelString)
			}
			key := bpf.ProcmonStrKey{Tag: tag}
			for i := 0; i < len(s); i++ {
				key.S[i] = int8(s[i])
			}
			if t.strs[key] == nil {
				t.strs[key] = &bpf.ProcmonRuleHits{}
			}
			set(t.strs[key])
		}
		*bit++
	default:
		return k, fmt.Errorf("operation kind %d", op.Kind)
	}
	return k, nil
}

// size sets the sizes of the table maps (and of exe_paths, which is a
// one-entry preallocated map when no rule needs it) in spec.
func (t *ruleTables) size(spec *ebpf.CollectionSpec) {
	spec.Maps[bpf.ProcmonMapRuleOps].MaxEntries = uint32(max(1, len(t.ops)))
	spec.Maps[bpf.ProcmonMapRuleInts].MaxEntries = uint32(max(1, len(t.ints)))
	spec.Maps[bpf.ProcmonMapRuleStrs].MaxEntries = uint32(max(1, len(t.strs)))
	if !t.scope {
		m := spec.Maps[bpf.ProcmonMapExePaths]
		m.MaxEntries, m.Flags = 1, 0
	}
}

// fill writes the tables into the loaded maps (before the programs are
// attached: the hook tables last, so no program sees a table whose
// operations or values are missing).
func (t *ruleTables) fill(coll *ebpf.Collection) error {
	for i, op := range t.ops {
		if err := coll.Maps[bpf.ProcmonMapRuleOps].Put(uint32(i), op); err != nil {
			return fmt.Errorf("fill rule_ops: %w", err)
		}
	}
	for k, v := range t.ints {
		if err := coll.Maps[bpf.ProcmonMapRuleInts].Put(k, v); err != nil {
			return fmt.Errorf("fill rule_ints: %w", err)
		}
	}
	for k, v := range t.strs {
		if err := coll.Maps[bpf.ProcmonMapRuleStrs].Put(k, v); err != nil {
			return fmt.Errorf("fill rule_strs: %w", err)
		}
	}
	for code, ht := range t.hooks {
		if err := coll.Maps[bpf.ProcmonMapHookTables].Put(code, ht); err != nil {
			return fmt.Errorf("fill hook_tables: %w", err)
		}
	}
	return nil
}

// matchedNames returns the names of the rules of hook code whose bits are
// set.
func (t *ruleTables) matchedNames(code uint32, bits uint64) []string {
	if t == nil || bits == 0 {
		return nil
	}
	var out []string
	for i, n := range t.names[code] {
		if bits&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}
