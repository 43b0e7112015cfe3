package rules

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

var defs = &Defs{
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

// TestMatch runs the shared table of rules and inputs
// (internal/rulecases, run in package rules_test) through Match; see
// TestCases in cases_test.go.

func TestErrors(t *testing.T) {
	cases := []struct {
		hook, rule string
		kind       error
		msg        string // the whole message after the rule's name
	}{
		{"setuid", "uid == AND euid == 0", ErrSyntax, `line 1, column 8: expected a value after "==", found "AND"`},
		{"setuid", "uid == 1000 AND", ErrSyntax, `line 1, column 16: expected an attribute, NOT or "(", found the end of the rule`},
		{"setuid", "uid == 1000\n  AND euid = 0", ErrSyntax, `line 2, column 12: expected "==", found a single "="`},
		{"setuid", "(uid == 1", ErrSyntax, `line 1, column 10: expected ")" to close the "(" at line 1, column 1, found the end of the rule`},
		{"setuid", "uid == 1 euid == 2", ErrSyntax, `line 1, column 10: expected AND, OR or the end of the rule, found "euid"`},
		{"setuid", "uid 1", ErrSyntax, `line 1, column 5: expected "==", "!=" or "in" after "uid", found "1"`},
		{"setuid", `uid == "1000"`, ErrAttribute, `line 1, column 8: expected an integer for uid, found "1000"`},
		{"setuid", `uid == 4294967296`, ErrAttribute, `line 1, column 8: expected an integer from 0 to 4294967295 for uid, found 4294967296`},
		{"setuid", `uid == 0755`, ErrSyntax, `line 1, column 8: expected a decimal or 0x-prefixed hexadecimal integer, found "0755"`},
		{"setuid", `gid == 1`, ErrAttribute, `line 1, column 1: hook setuid has no attribute "gid" (it has uid, euid, binary_path, binary_name, binary_prefix, parent_binary_path, parent_binary_name, parent_binary_prefix)`},
		{"setuid", `foo == 1`, ErrAttribute, `line 1, column 1: expected an attribute (uid, euid, binary_path, binary_name, binary_prefix, parent_binary_path, parent_binary_name, parent_binary_prefix) or a macro, found "foo"`},
		{"capset", `ecaps == "CAP_NOPE"`, ErrAttribute, `line 1, column 10: expected a capability name (capabilities(7)), several joined by "|", or "ANY_CAPS" for ecaps, found "CAP_NOPE"`},
		{"capset", `ecaps == "CAP_SYS_ADMIN | CAP_NOPE"`, ErrAttribute, `line 1, column 10: expected a capability name (capabilities(7)), several joined by "|", or "ANY_CAPS" for ecaps, found "CAP_SYS_ADMIN | CAP_NOPE"`},
		{"sched_process_exec", `arg32 == "-r"`, ErrAttribute, `line 1, column 1: expected an attribute (arg0..arg31, binary_path, binary_name, binary_prefix, parent_binary_path, parent_binary_name, parent_binary_prefix) or a macro, found "arg32"`},
		{"sched_process_exec", `arg0 == 1`, ErrAttribute, `line 1, column 9: expected a string in quotes for arg0..arg31, found "1"`},
		{"bprm_check", `arg0 == "-r"`, ErrAttribute, `line 1, column 1: hook bprm_check has no attribute "arg0" (it has path, name, path_prefix, euid, egid, ecaps, binary_path, binary_name, binary_prefix, parent_binary_path, parent_binary_name, parent_binary_prefix)`},
		{"capset", `ecaps == 21`, ErrAttribute, `line 1, column 10: expected a capability name in quotes ("CAP_SYS_ADMIN" or "ANY_CAPS") for ecaps, found "21"`},
		{"bprm_check", `path_prefix == "tmp"`, ErrAttribute, `line 1, column 16: expected an absolute path (starting with "/") for path_prefix, found "tmp"`},
		{"bprm_check", `path == "/tmp`, ErrSyntax, `line 1, column 9: expected a closing " for the string started here`},
		{"bprm_check", `path in ["/a" "/b"]`, ErrSyntax, `line 1, column 15: expected "," or "]" in the list, found "/b"`},
		{"bprm_check", `path in [,]`, ErrSyntax, `line 1, column 10: expected a value or a list name in the list, found ","`},
		{"bprm_check", `path in "/a"`, ErrSyntax, `line 1, column 9: expected "[", "(" or a list name after "in", found "/a"`},
		{"bprm_check", `path == "/a" && name == "b"`, ErrSyntax, `line 1, column 14: expected an attribute, a value, an operator or a parenthesis, found '&'`},
		{"bprm_check", `shells`, ErrSyntax, `line 1, column 1: expected an attribute, NOT or "(", found list "shells" (a list goes after "in")`},
		{"bprm_check", `is_root AND bad`, ErrSyntax, ""},
		{"nope", `uid == 1`, ErrUnknownHook, `expected a hook name (one of setuid, setgid, capset, prctl, create_user_ns, ptrace_access_check, bprm_check, sched_process_exec), found "nope"`},
		{"prctl", `euid == 0`, ErrAttribute, ""},
		// ANY stands alone.
		{"setuid", `ANY AND uid == 0`, ErrSyntax, `line 1, column 1: expected an attribute, NOT or "(", found "ANY" (ANY stands alone: the whole expression, matching everything)`},
		{"setuid", `uid == 0 OR any`, ErrSyntax, `line 1, column 13: expected an attribute, NOT or "(", found "any" (ANY stands alone: the whole expression, matching everything)`},
		// Long values are quoted as an excerpt.
		{"bprm_check", `path_prefix == "` + strings.Repeat("x", 4000) + `"`, ErrAttribute,
			`line 1, column 16: expected an absolute path (starting with "/") for path_prefix, found "` + strings.Repeat("x", 64) + `"... (4000 bytes)`},
		{"setuid", strings.Repeat("u", 4000) + ` == 1`, ErrAttribute,
			`line 1, column 1: expected an attribute (uid, euid, binary_path, binary_name, binary_prefix, parent_binary_path, parent_binary_name, parent_binary_prefix) or a macro, found "` + strings.Repeat("u", 64) + `"... (4000 bytes)`},
	}
	d := &Defs{Lists: defs.Lists, Macros: map[string]string{"is_root": "euid ==", "bad": "x"}}
	for _, c := range cases {
		_, err := Compile(c.hook, "R", c.rule, d)
		if err == nil {
			t.Errorf("%s: %q compiled", c.hook, c.rule)
			continue
		}
		if !errors.Is(err, c.kind) {
			t.Errorf("%s: %q: %v does not match %v", c.hook, c.rule, err, c.kind)
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%q: %T is not *Error", c.rule, err)
			continue
		}
		if c.msg == "" {
			continue
		}
		want := `rule "R" (` + c.hook + `), ` + c.msg
		if c.kind == ErrUnknownHook {
			want = `rule "R" (` + c.hook + `): ` + c.msg
		}
		if err.Error() != want {
			t.Errorf("%q:\n got %s\nwant %s", c.rule, err, want)
		}
	}
}

func TestErrorInMacro(t *testing.T) {
	d := &Defs{Macros: map[string]string{"is_root": "euid =="}}
	_, err := Compile("setuid", "R", "uid == 1 AND is_root", d)
	want := `rule "R" (setuid), line 1, column 14 (in macro "is_root"): expected a value after "==", found the end of the macro`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	d = &Defs{Macros: map[string]string{"a": "b", "b": "a"}}
	if _, err := Compile("setuid", "R", "a", d); !errors.Is(err, ErrDefs) || !strings.Contains(err.Error(), "uses itself") {
		t.Fatalf("cycle: %v", err)
	}
}

func TestScope(t *testing.T) {
	r, err := CompileSpec(Spec{Hook: "setuid", Name: "S", Event: "euid == 0", Scope: `binary_name == "bash"`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Match(&Input{Binary: "/bin/bash"}) || r.Match(&Input{Binary: "/bin/sh"}) || r.Match(&Input{Binary: "/bin/bash", EUID: 1}) {
		t.Fatal("scope not applied")
	}
	_, err = CompileSpec(Spec{Hook: "setuid", Name: "S", Scope: "euid == 0", ScopePos: Pos{Line: 7, Column: 14}}, nil)
	want := `rule "S" (setuid scope), line 7, column 14: attribute "euid" is not a scope attribute (binary_path, binary_name, binary_prefix, parent_binary_path, parent_binary_name, parent_binary_prefix)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestPosAdd(t *testing.T) {
	base := Pos{Line: 10, Column: 14}
	if got := (Pos{1, 5}).Add(base); got != (Pos{10, 18}) {
		t.Errorf("line 1: %v", got)
	}
	if got := (Pos{3, 5}).Add(base); got != (Pos{12, 5}) {
		t.Errorf("line 3: %v", got)
	}
	if got := (Pos{3, 5}).Add(Pos{}); got != (Pos{3, 5}) {
		t.Errorf("zero base: %v", got)
	}
}

func TestLimits(t *testing.T) {
	long := strings.Repeat("uid == 1 OR ", MaxOps/2) + "uid == 2"
	if _, err := Compile("setuid", "L", long, nil); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "MaxOps") {
		t.Errorf("ops: %v", err)
	}
	ok := strings.Repeat("uid == 1 OR ", MaxOps/2-1) + "uid == 2"
	if _, err := Compile("setuid", "L", ok, nil); err != nil {
		t.Errorf("ops at the limit: %v", err)
	}
	many := &Defs{Lists: map[string][]string{"many": make([]string, MaxValues+1)}}
	for i := range many.Lists["many"] {
		many.Lists["many"][i] = strconv.Itoa(i)
	}
	if err := many.Validate(); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "MaxValues") {
		t.Errorf("values in a list: %v", err)
	}
	if _, err := Compile("setuid", "L", "uid in [0] OR uid in many", &Defs{Lists: map[string][]string{"many": many.Lists["many"][:MaxValues]}}); err != nil {
		t.Errorf("values at the limit: %v", err)
	}
	deep := strings.Repeat("(", MaxDepth+1) + "uid == 1" + strings.Repeat(")", MaxDepth+1)
	if _, err := Compile("setuid", "L", deep, nil); !errors.Is(err, ErrLimit) {
		t.Errorf("depth: %v", err)
	}
	if _, err := Compile("setuid", "L", strings.Repeat(" ", MaxRuleBytes+1), nil); !errors.Is(err, ErrLimit) {
		t.Errorf("bytes: %v", err)
	}
	var rs []*Rule
	for i := 0; i <= MaxRulesPerHook; i++ {
		r, err := Compile("setuid", "R"+strings.Repeat("x", i), "uid == 1", nil)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	if _, err := NewSet(rs[:MaxRulesPerHook]...); err != nil {
		t.Errorf("rules at the limit: %v", err)
	}
	if _, err := NewSet(rs...); !errors.Is(err, ErrLimit) {
		t.Errorf("rules: %v", err)
	}
	if _, err := NewSet(rs[0], rs[0]); !errors.Is(err, ErrDuplicate) || err.Error() != `rule "R" (setuid): duplicate rule name: another rule of the hook has it` {
		t.Errorf("duplicate: %v", err)
	}
	macros := map[string]string{}
	for i := 0; i <= MaxMacroDepth; i++ {
		macros["m"+string(rune('a'+i))] = "m" + string(rune('a'+i+1))
	}
	macros["m"+string(rune('a'+MaxMacroDepth+1))] = "uid == 1"
	if _, err := Compile("setuid", "L", "ma", &Defs{Macros: macros}); !errors.Is(err, ErrLimit) {
		t.Errorf("macro depth: %v", err)
	}
}

func TestDefsValidate(t *testing.T) {
	bad := []*Defs{
		{Lists: map[string][]string{"uid": {"1"}}},
		{Lists: map[string][]string{"AND": {"1"}}},
		{Lists: map[string][]string{"1x": {"1"}}},
		{Lists: map[string][]string{"x": nil}},
		{Lists: map[string][]string{"x": {"1"}}, Macros: map[string]string{"x": "uid == 1"}},
		{Macros: map[string]string{"m": "uid = 1"}},
		{Macros: map[string]string{"m": " "}},
		{Macros: map[string]string{"m-x": "uid == 1"}},
		{Macros: map[string]string{"ANY": "uid == 1"}},
		{Lists: map[string][]string{strings.Repeat("l", 1<<20) + "-": {"1"}}},
	}
	for _, d := range bad {
		err := d.Validate()
		if err == nil {
			t.Errorf("%.200v validated", d)
		} else if len(err.Error()) > 200 {
			t.Errorf("a %d-byte error: %.200s...", len(err.Error()), err)
		}
	}
	if err := defs.Validate(); err != nil {
		t.Error(err)
	}
}

func TestHasPathPrefix(t *testing.T) {
	for _, c := range []struct {
		p, pre string
		want   bool
	}{
		{"/tmp", "/tmp", true}, {"/tmp/ls", "/tmp", true}, {"/tmp/ls", "/tmp/", true},
		{"/tmpfoo/ls", "/tmp", false}, {"/x", "/", true}, {"", "/", false}, {"/usr/bin", "/usr/bin/ls", false},
	} {
		if got := HasPathPrefix(c.p, c.pre); got != c.want {
			t.Errorf("HasPathPrefix(%q, %q) = %v", c.p, c.pre, got)
		}
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"uid == 1000 AND euid == 0", `NOT ecaps == "CAP_SYS_ADMIN"`, `path_prefix == "/tmp" AND name == "ls"`,
		`(uid in [1, 0x2]) OR NOT euid != 3`, `path in shells`, `root_tmp OR is_root`, `"\"`, "((((", "uid == 0x",
		`ecaps in ["ANY_CAPS", "CAP_BPF"]`, "uid == 99999999999999999999",
	} {
		f.Add("bprm_check", s)
		f.Add("setuid", s)
	}
	f.Fuzz(func(t *testing.T, hook, text string) {
		r, err := CompileSpec(Spec{Hook: hook, Name: "F", Event: text, Scope: text}, defs)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%T %v", err, err)
			}
			_ = e.Error()
			return
		}
		if r.Ops() > MaxOps {
			t.Fatalf("%d ops", r.Ops())
		}
		r.Match(&Input{Path: "/tmp/ls", ECaps: 1})
		r.Match(&Input{})
	})
}

// TestLongList checks that a list of thousands of values (Bombini has no
// limit; a GTFOBins policy exceeds 64) compiles and matches, inline and
// through a list definition.
func TestLongList(t *testing.T) {
	var vals []string
	for i := range 5000 {
		vals = append(vals, fmt.Sprintf("bin%d", i))
	}
	defs := &Defs{Lists: map[string][]string{"gtfo": vals}}
	if err := defs.Validate(); err != nil {
		t.Fatal(err)
	}
	inline := `name in ["` + strings.Join(vals, `", "`) + `"]`
	for _, text := range []string{"name in gtfo", inline} {
		r, err := Compile("bprm_check", "L", text, defs)
		if err != nil {
			t.Fatalf("%.40s: %v", text, err)
		}
		for _, c := range []struct {
			path string
			want bool
		}{{"/usr/bin/bin4999", true}, {"/bin0", true}, {"/usr/bin/bin5000", false}} {
			in := &Input{Path: c.path}
			if got := r.Match(in); got != c.want {
				t.Errorf("%.20s on %s = %v", text, c.path, got)
			}
			_, ev := r.Postfix()
			if got := EvalPostfix(ev, in); got != c.want {
				t.Errorf("%.20s postfix on %s = %v", text, c.path, got)
			}
		}
	}
}
