package ebpf

import (
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/proctrack/proctrack/bpf"
	"github.com/proctrack/proctrack/internal/rulecases"
	"github.com/proctrack/proctrack/rules"
)

// modelEval evaluates hook code's compiled tables on in step by step as
// bpf/procmon.c does (rules_eval): the hits of each attribute value, then
// the operations over a stack of bits. It is the host's check of the
// tables; the VM tests (TestKernelRulesAgree) run the kernel itself.
func modelEval(t *ruleTables, code uint32, in *rules.Input) (matched, scoped uint64, verdict uint32) {
	ht, ok := t.hooks[code]
	if !ok {
		return 0, 0, verdictNone
	}
	var hits bpf.ProcmonRuleHits
	or := func(h *bpf.ProcmonRuleHits) {
		if h != nil {
			for i := range hits.W {
				hits.W[i] |= h.W[i]
			}
		}
	}
	key := func(attr uint8, s string) bpf.ProcmonStrKey {
		k := bpf.ProcmonStrKey{Tag: code<<8 | uint32(attr)}
		for i := 0; i < len(s) && i < ruleStr-1; i++ {
			k.S[i] = int8(s[i])
		}
		return k
	}
	used := func(a uint8) bool { return ht.Attrs&(1<<a) != 0 }
	for a, v := range map[uint8]uint32{aUID: in.UID, aEUID: in.EUID, aGID: in.GID, aEGID: in.EGID} {
		if used(a) {
			or(t.ints[bpf.ProcmonIntKey{Tag: code<<8 | uint32(a), Val: v}])
		}
	}
	str := func(s string, exact, name, prefix uint8) {
		if used(exact) {
			or(t.strs[key(exact, s)])
		}
		if used(name) {
			or(t.strs[key(name, s[strings.LastIndexByte(s, '/')+1:])])
		}
		if used(prefix) && s != "" {
			for i := 0; i <= len(s); i++ {
				if i == len(s) || s[i] == '/' {
					or(t.strs[key(prefix, s[:i])])
				}
			}
		}
	}
	binary := in.Binary
	if code == hookBprm {
		str(in.Path, aPath, aName, aPathPrefix)
		binary = in.Path // the new image, as the kernel sees it
	}
	str(binary, aBinPath, aBinName, aBinPrefix)
	str(in.ParentBinary, aParPath, aParName, aParPrefix)
	if used(aArg) {
		for _, a := range in.Args { // arg_cb: one lookup per argument of at most 255 bytes
			if len(a) < ruleStr {
				or(t.strs[key(aArg, a)])
			}
		}
	}

	var stack uint64
	var scope bool
	for _, op := range t.ops[ht.First : ht.First+ht.Nops] {
		var v uint64
		switch op.Kind {
		case opTrue:
			v = 1
		case opCmp:
			v = (hits.W[op.Bit/64]>>(op.Bit%64))&1 ^ uint64(op.Neg)
		case opCaps:
			set := uint64(in.ECaps)
			if op.Attr == aPCaps {
				set = uint64(in.PCaps)
			}
			if set&op.Caps != 0 || (op.Any != 0 && set != 0) {
				v = 1
			}
			v ^= uint64(op.Neg)
		case opAnd:
			v = stack & (stack >> 1) & 1
			stack >>= 2
		case opOr:
			v = (stack | stack>>1) & 1
			stack >>= 2
		case opNot:
			v = stack&1 ^ 1
			stack >>= 1
		}
		stack = stack<<1 | v
		switch op.End {
		case endScope:
			scope = stack&1 == 1
			stack >>= 1
		case endRule:
			v = stack & 1
			stack >>= 1
			if scope {
				scoped |= 1 << op.Rule
				if v == 1 {
					matched |= 1 << op.Rule
				}
			}
			scope = false
		}
	}
	switch ht.Mode {
	case uint32(SandboxDenyList):
		verdict = verdictAllow
		if matched != 0 {
			verdict = verdictDeny
		}
	case uint32(SandboxAllowList):
		verdict = verdictAllow
		if scoped != 0 && matched == 0 {
			verdict = verdictDeny
		}
	}
	return matched, scoped, verdict
}

// TestCompiledCases compiles each rule of the shared table of rule cases
// into the kernel's tables and evaluates them as the kernel does: the
// answer must be package rules'.
func TestCompiledCases(t *testing.T) {
	n, matches := 0, 0
	for _, c := range rulecases.Cases {
		hook, _ := rules.CanonicalHook(c.Hook)
		if c.In.Name != "" {
			continue // a name apart from the path: userspace input only
		}
		r, err := rules.Compile(hook, "T", c.Rule, rulecases.Defs)
		if err != nil {
			t.Fatalf("%q: %v", c.Rule, err)
		}
		set, _ := rules.NewSet(r)
		tables, err := compileRules(set, map[string]SandboxMode{HookSchedProcessExec: SandboxDenyList}, AllHooks())
		if err != nil {
			t.Fatalf("%q: %v", c.Rule, err)
		}
		in := c.In
		if hook == HookBprmCheck {
			in.Binary = in.Path
		}
		want := r.Match(&in)
		if matched, _, _ := modelEval(tables, hookCodes[hook], &in); (matched == 1) != want {
			t.Errorf("%s: %q on %s: tables say %v, package rules %v", hook, c.Rule, in.String(), matched == 1, want)
		}
		n++
		if want {
			matches++
		}
	}
	if n < 40 || matches == 0 || matches == n {
		t.Errorf("%d cases evaluated, %d matching", n, matches)
	}
}

// TestKernelConstants checks the Go copies of the kernel's rule constants
// against the enums in the BPF object's BTF.
func TestKernelConstants(t *testing.T) {
	spec, err := bpf.LoadProcmon()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{
		"A_UID": aUID, "A_EUID": aEUID, "A_GID": aGID, "A_EGID": aEGID, "A_ECAPS": aECaps, "A_PCAPS": aPCaps,
		"A_PATH": aPath, "A_NAME": aName, "A_PATH_PREFIX": aPathPrefix, "A_BIN_PATH": aBinPath,
		"A_BIN_NAME": aBinName, "A_BIN_PREFIX": aBinPrefix, "A_PAR_PATH": aParPath, "A_PAR_NAME": aParName,
		"A_PAR_PREFIX": aParPrefix, "OP_TRUE": opTrue, "OP_CMP": opCmp, "OP_CAPS": opCaps, "OP_AND": opAnd,
		"OP_OR": opOr, "OP_NOT": opNot, "END_SCOPE": endScope, "END_RULE": endRule,
		"VERDICT_NONE": verdictNone, "VERDICT_ALLOW": verdictAllow, "VERDICT_DENY": verdictDeny,
		"SANDBOX_OFF": uint64(SandboxOff), "SANDBOX_ALLOW": uint64(SandboxAllowList), "SANDBOX_DENY": uint64(SandboxDenyList),
		"BPRM_SETUID": bprmSetuid, "BPRM_SETGID": bprmSetgid, "BPRM_FILELESS": bprmFileless, "BPRM_NOSUID": bprmNosuid,
		"BPRM_PATH_LONG": bprmPathLong, "BPRM_RULES": bprmRules, "HOOK_BPRM": hookBprm, "F_BPRM": fBprm,
		"A_ARG": aArg, "HOOK_EXEC": hookExec, "F_EXEC_RULES": fExecRules,
	}
	got := map[string]uint64{}
	for _, name := range []string{"rule_attr", "rule_op_kind", "rule_end", "verdict", "sandbox_mode", "bprm_flag", "lsm_hook", "rec_flag"} {
		var e *btf.Enum
		if err := spec.Types.TypeByName(name, &e); err != nil {
			t.Fatalf("enum %s: %v", name, err)
		}
		for _, v := range e.Values {
			got[v.Name] = v.Value
		}
	}
	for name, v := range want {
		if g, ok := got[name]; !ok || g != v {
			t.Errorf("%s: Go %d, BPF object %d (found %v)", name, v, g, ok)
		}
	}
	var key *btf.Struct
	if err := spec.Types.TypeByName("str_key", &key); err != nil {
		t.Fatal(err)
	}
	if size, _ := btf.Sizeof(key); size != 4+ruleStr {
		t.Errorf("str_key is %d bytes, want %d", size, 4+ruleStr)
	}
	var hits *btf.Struct
	if err := spec.Types.TypeByName("rule_hits", &hits); err != nil {
		t.Fatal(err)
	}
	if size, _ := btf.Sizeof(hits); size != 8*ruleWords {
		t.Errorf("rule_hits is %d bytes, want %d", size, 8*ruleWords)
	}
}

// TestSandboxVerdicts checks the allow-list and deny-list semantics on the
// compiled tables: an allow-list denies what a rule's scope covers and no
// rule matches; a deny-list denies what a rule matches.
func TestSandboxVerdicts(t *testing.T) {
	set := ruleSet(t,
		rules.Spec{Hook: HookBprmCheck, Name: "HeadReadsLib", Scope: `binary_name == "head"`, Event: `path_prefix == "/usr/lib"`},
		rules.Spec{Hook: HookBprmCheck, Name: "NoTmp", Scope: `parent_binary_name == "sshd"`, Event: `NOT path_prefix in ["/tmp", "/dev/shm"]`},
	)
	cases := []struct {
		in            rules.Input
		allow, deny   uint32
		matched, scop uint64
	}{
		// no rule's scope covers it: allowed by both
		{rules.Input{Path: "/tmp/x", ParentBinary: "/usr/sbin/cron"}, verdictAllow, verdictAllow, 0, 0},
		// covered by NoTmp, which matches: allowed; denied by the deny-list
		{rules.Input{Path: "/usr/bin/ls", ParentBinary: "/usr/sbin/sshd"}, verdictAllow, verdictDeny, 2, 2},
		// covered by NoTmp, no rule matches: denied by the allow-list
		{rules.Input{Path: "/tmp/x", ParentBinary: "/usr/sbin/sshd"}, verdictDeny, verdictAllow, 0, 2},
	}
	for _, mode := range []SandboxMode{SandboxAllowList, SandboxDenyList} {
		tables, err := compileRules(set, map[string]SandboxMode{HookBprmCheck: mode}, AllHooks())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			in := c.in
			in.Binary = in.Path
			m, s, v := modelEval(tables, hookBprm, &in)
			want := c.allow
			if mode == SandboxDenyList {
				want = c.deny
			}
			if m != c.matched || s != c.scop || v != want {
				t.Errorf("%v %s: matched %b scoped %b verdict %d, want %b %b %d", mode, in.String(), m, s, v, c.matched, c.scop, want)
			}
		}
	}
}

// TestCompileErrors checks the kernel's own limits and the sandbox checks.
func TestCompileErrors(t *testing.T) {
	long := "/" + strings.Repeat("a", MaxKernelString)
	set := ruleSet(t, rules.Spec{Hook: HookBprmCheck, Name: "Long", Event: `path == "` + long + `"`})
	if _, err := compileRules(set, nil, AllHooks()); err == nil || !strings.Contains(err.Error(), "at most 255 bytes") {
		t.Errorf("a %d-byte path: %v", len(long), err)
	}
	// a disabled hook's rules are not compiled
	if tb, err := compileRules(set, nil, map[string]bool{}); err != nil || len(tb.ops) != 0 {
		t.Errorf("disabled hook: %v, %d ops", err, len(tb.ops))
	}
	var c Config
	c.Sandbox = map[string]SandboxMode{HookPtraceAccessCheck: SandboxDenyList}
	if _, err := c.sandbox(map[string]bool{}); !errors.Is(err, ErrSandbox) {
		t.Errorf("sandbox on ptrace_access_check: %v", err)
	}
	c.Sandbox = map[string]SandboxMode{HookSetuid: SandboxAllowList}
	hooks := map[string]bool{}
	if m, err := c.sandbox(hooks); err != nil || m[HookSetuid] != SandboxAllowList || !hooks[HookSetuid] {
		t.Errorf("sandbox on setuid: %v %v %v", m, err, hooks)
	}
}
