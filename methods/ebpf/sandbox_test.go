package ebpf

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/bpf"
	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/procmon/process"
	"github.com/proctrack/proctrack/rules"
)

// ruleSet compiles rules given as hook, name, scope, event.
func ruleSet(t testing.TB, specs ...rules.Spec) *rules.Set {
	t.Helper()
	var rs []*rules.Rule
	for _, s := range specs {
		r, err := rules.CompileSpec(s, nil)
		if err != nil {
			t.Fatalf("%s/%s: %v", s.Hook, s.Name, err)
		}
		rs = append(rs, r)
	}
	set, err := rules.NewSet(rs...)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// requireLSMTier skips where the LSM tier cannot run (this host: BPF LSM
// programs do not load; the 6.12 VM runs these tests).
func requireLSMTier(t *testing.T) {
	t.Helper()
	if r := ProbeTier(); r.Tier != TierLSM {
		t.Skipf("needs the LSM tier: %s", r.Reason)
	}
}

// copySelf copies the test binary to a new directory under /tmp as name;
// it returns the binary's path and the copy's.
func copySelf(t *testing.T, name string) (self, copied string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp("/tmp", "proctrack-sandbox-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	copied = filepath.Join(tmp, name)
	if err := os.WriteFile(copied, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return self, copied
}

// helperResult runs a helper to its end and returns its pid and output.
func helperResult(t *testing.T, mode string, args ...string) (int, string) {
	t.Helper()
	cmd := helper(mode, args...)
	out, _ := cmd.Output()
	return cmd.Process.Pid, strings.TrimSpace(string(out))
}

// TestSandboxSetuid: a setuid(1000) under a matching deny-list rule fails
// with EPERM and is reported denied, naming the rule; under a rule that
// does not match it succeeds and is sent for the cache only (CacheOnly,
// with the new credentials): it matched no rule.
func TestSandboxSetuid(t *testing.T) {
	requireLSMTier(t)
	for _, c := range []struct {
		name, event string
		denied      bool
	}{
		{"matching", "uid == 1000", true},
		{"not matching", "uid == 2000", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			set := ruleSet(t, rules.Spec{Hook: HookSetuid, Name: "NoUid1000", Event: c.event})
			_, rec := startSource(t, Config{Hooks: map[string]bool{}, Rules: set,
				Sandbox: map[string]SandboxMode{HookSetuid: SandboxDenyList}})
			pid, out := helperResult(t, "setuid")
			if got := strings.Contains(out, "operation not permitted"); got != c.denied {
				t.Errorf("setresuid(1000): %q, want denied %v", out, c.denied)
			}
			ev := rec.WaitFor(process.EventUID, pid, nil, 3*time.Second)
			if ev == nil {
				t.Fatal("no event of the setuid")
			}
			if !c.denied {
				if !ev.CacheOnly || len(ev.Matched) != 0 || ev.Verdict == process.VerdictDenied || ev.Creds == nil || ev.Creds.New.UID != 1000 {
					t.Errorf("a setuid matching no rule: cache only %v, matched %q, verdict %v, creds %+v",
						ev.CacheOnly, ev.Matched, ev.Verdict, ev.Creds)
				}
				return
			}
			if ev.CacheOnly {
				t.Error("the denied setuid is marked CacheOnly")
			}
			if ev.Verdict != process.VerdictDenied || !ev.MatchedInKernel || !slices.Equal(ev.Matched, []string{"NoUid1000"}) {
				t.Errorf("verdict %v in kernel %v matched %q", ev.Verdict, ev.MatchedInKernel, ev.Matched)
			}
			if ev.Creds == nil || ev.Creds.New.UID != 1000 || ev.Creds.Old.UID != 0 || ev.Creds.Flags != process.SetIDRES {
				t.Errorf("creds %+v", ev.Creds)
			}
		})
	}
}

// TestSandboxBprmAllowList: with an allow-list of binary prefixes for the
// children of this test binary, an exec from /tmp fails with EPERM and is
// reported denied; an exec of this binary where it lies is allowed.
func TestSandboxBprmAllowList(t *testing.T) {
	requireLSMTier(t)
	self, copied := copySelf(t, "copy")
	dir := filepath.Dir(self)
	set := ruleSet(t, rules.Spec{Hook: HookBprmCheck, Name: "SystemOnly",
		Scope: `parent_binary_path == "` + self + `"`,
		Event: `path_prefix in ["/usr", "/bin", "/sbin", "` + dir + `"]`})
	_, rec := startSource(t, Config{Hooks: map[string]bool{}, Rules: set,
		Sandbox: map[string]SandboxMode{HookBprmCheck: SandboxAllowList}})

	pid, out := helperResult(t, "exec", copied)
	if !strings.Contains(out, "permission denied") && !strings.Contains(out, "operation not permitted") {
		t.Errorf("exec of %s: %q, want EPERM", copied, out)
	}
	ev := rec.WaitFor(process.EventExec, pid, func(ev *process.Event) bool { return ev.Verdict == process.VerdictDenied }, 3*time.Second)
	if ev == nil {
		t.Fatal("no event of the denied exec")
	}
	if ev.Bprm == nil || ev.Bprm.Path != copied || !slices.Equal(ev.Matched, []string{"SystemOnly"}) {
		t.Errorf("bprm %+v matched %q", ev.Bprm, ev.Matched)
	}

	pid, out = helperResult(t, "exec", self)
	if out != "" {
		t.Errorf("exec of %s: %q", self, out)
	}
	ev = rec.WaitFor(process.EventExec, pid, func(ev *process.Event) bool { return ev.Process != nil && ev.Process.Path == self }, 3*time.Second)
	if ev == nil {
		t.Fatal("no exec event of the allowed exec")
	}
	if ev.Verdict != process.VerdictAllowed || !slices.Equal(ev.Matched, []string{"SystemOnly"}) || ev.Bprm == nil || ev.Bprm.Path != self {
		t.Errorf("verdict %v matched %q bprm %+v", ev.Verdict, ev.Matched, ev.Bprm)
	}
}

// TestSandboxNeedsLSMTier: sandbox mode where the LSM tier does not run is
// an error at Start that says why, never a silent no-op.
func TestSandboxNeedsLSMTier(t *testing.T) {
	// A hook that can never deny is refused before the kernel is asked,
	// with or without privilege.
	src := New(Config{Sandbox: map[string]SandboxMode{HookPrctl: SandboxDenyList}})
	if err := src.Start(t.Context(), nopSink{}); !errors.Is(err, ErrSandbox) {
		_ = src.Close()
		t.Errorf("sandbox on prctl: %v", err)
	}

	// Which tier runs is known only to a process that may load programs.
	proctest.RequireRoot(t, "loading BPF programs to learn the tier")
	cfg := Config{Rules: ruleSet(t, rules.Spec{Hook: HookSetuid, Name: "R", Event: "uid == 1000"}),
		Sandbox: map[string]SandboxMode{HookSetuid: SandboxDenyList}}
	if r := ProbeTier(); r.Tier == TierLSM {
		cfg.Tier = TierTracepoint // the LSM tier runs here: refuse it
	}
	src = New(cfg)
	err := src.Start(t.Context(), nopSink{})
	if err == nil {
		_ = src.Close()
		t.Fatal("sandbox mode started without the LSM tier")
	}
	if !errors.Is(err, ErrSandbox) || !strings.Contains(err.Error(), "LSM tier") {
		t.Errorf("error %q", err)
	}
	t.Logf("error: %v", err)
}

// TestKernelRulesAgree runs a table of rules of every kind (integers,
// capability sets, paths, names, prefixes by whole components, scope
// attributes, NOT, OR, !=) in the kernel and checks that each reported
// event names exactly the rules that package rules matches on the same
// attribute values. Each hook has a rule that always matches, so every
// operation is reported.
func TestKernelRulesAgree(t *testing.T) {
	requireLSMTier(t)
	self, copied := copySelf(t, "ls")
	name, tmp := filepath.Base(self), filepath.Dir(copied)
	specs := []rules.Spec{
		{Hook: HookSetuid, Name: "any", Event: "uid != 4294967295"},
		{Hook: HookSetuid, Name: "to1000", Event: "uid == 1000 AND euid == 1000"},
		{Hook: HookSetuid, Name: "toRoot", Event: "euid == 0"},
		{Hook: HookSetuid, Name: "notRoot", Event: "NOT uid in [0, 0x0]"},
		{Hook: HookSetuid, Name: "mine", Scope: `binary_name == "` + name + `" AND parent_binary_path == "` + self + `"`, Event: "uid == 1000"},
		{Hook: HookSetuid, Name: "otherParent", Scope: `parent_binary_prefix == "/nonexistent"`},
		{Hook: HookSetuid, Name: "prefixRoot", Scope: `binary_prefix == "/"`},
		{Hook: HookSetgid, Name: "any", Event: "gid != 4294967295"},
		{Hook: HookSetgid, Name: "to1000", Event: "gid == 1000 OR egid == 7"},
		{Hook: HookSetgid, Name: "hex", Event: "egid == 0x3e8"},
		{Hook: HookCapset, Name: "any", Event: `ecaps == "ANY_CAPS"`},
		{Hook: HookCapset, Name: "netRaw", Event: `ecaps == "CAP_NET_RAW"`},
		{Hook: HookCapset, Name: "admin", Event: `pcaps in ["CAP_SYS_ADMIN", "CAP_NET_RAW"] AND NOT ecaps == "CAP_SYS_ADMIN"`},
		{Hook: HookCreateUserNS, Name: "any", Event: "euid != 4294967295"},
		{Hook: HookCreateUserNS, Name: "unpriv", Event: `NOT ecaps == "CAP_SYS_ADMIN"`},
		{Hook: HookCreateUserNS, Name: "root", Event: "euid == 0"},
		{Hook: HookBprmCheck, Name: "any", Event: `path_prefix == "/"`},
		{Hook: HookBprmCheck, Name: "tmpLs", Event: `path_prefix == "/tmp" AND name == "ls"`},
		{Hook: HookBprmCheck, Name: "exact", Event: `path == "` + copied + `"`},
		{Hook: HookBprmCheck, Name: "partialComponent", Event: `path_prefix == "/tm"`},
		{Hook: HookBprmCheck, Name: "trailingSlash", Event: `path_prefix == "` + tmp + `/"`},
		{Hook: HookBprmCheck, Name: "rootNotLs", Event: `euid == 0 AND name != "ls"`},
		{Hook: HookBprmCheck, Name: "fromMe", Scope: `parent_binary_name == "` + name + `"`, Event: `ecaps == "CAP_SYS_ADMIN"`},
	}
	set := ruleSet(t, specs...)
	_, rec := startSource(t, Config{Hooks: AllHooks(), Rules: set})

	type op struct {
		mode string
		args []string
		kind process.EventKind
		path string // bprm_check: the binary
	}
	ops := []op{
		{mode: "setuid", kind: process.EventUID},
		{mode: "setgid", kind: process.EventGID},
		{mode: "capset", kind: process.EventCapset},
		{mode: "userns", kind: process.EventUserNS},
		{mode: "exec", args: []string{copied}, kind: process.EventExec, path: copied},
		{mode: "noop", kind: process.EventExec, path: self},
	}
	for _, o := range ops {
		pid, out := helperResult(t, o.mode, o.args...)
		if strings.HasPrefix(out, "error") {
			t.Fatalf("helper %s: %s", o.mode, out)
		}
		hook, _ := rules.HookOf(o.kind)
		ev := rec.WaitFor(o.kind, pid, func(ev *process.Event) bool {
			return o.kind != process.EventExec || (ev.Bprm != nil && ev.Bprm.Path == o.path)
		}, 5*time.Second)
		if ev == nil {
			t.Errorf("%s: no %v event of pid %d", o.mode, o.kind, pid)
			continue
		}
		// The same attribute values, evaluated by package rules.
		in := rules.Input{Binary: self, ParentBinary: self}
		var creds process.Credentials
		switch o.kind {
		case process.EventExec:
			creds = ev.Process.Creds
			in.Path, in.Binary = ev.Bprm.Path, ev.Bprm.Path
		case process.EventUserNS:
			creds = ev.Creds.Old
		default:
			creds = ev.Creds.New
		}
		in.UID, in.EUID, in.GID, in.EGID = creds.UID, creds.EUID, creds.GID, creds.EGID
		in.ECaps, in.PCaps = creds.CapEffective, creds.CapPermitted
		var want []string
		for _, r := range set.Match(hook, &in) {
			want = append(want, r.Name())
		}
		if !ev.MatchedInKernel || !slices.Equal(ev.Matched, want) {
			t.Errorf("%s (%s): kernel matched %q (in kernel %v), package rules %q on %s", o.mode, hook, ev.Matched, ev.MatchedInKernel, want, in.String())
		} else {
			t.Logf("%s: %q", hook, want)
		}
	}
}

// TestRuleCost measures what the kernel's rules add to an exec: the run
// time of the bprm_check program (the kernel's BPF statistics) with eight
// rules (path prefixes, names, a scope on the parent's binary) as an
// allow-list that allows everything it sees, against the same program
// without rules. It asserts only that the programs ran; the figures are
// logged (under TCG in the VM: several times the native cost).
func TestRuleCost(t *testing.T) {
	requireLSMTier(t)
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		t.Skipf("BPF run-time statistics: %v", err)
	}
	defer stats.Close()
	const n = 300
	script := `i=0; while [ $i -lt ` + strconv.Itoa(n) + ` ]; do /bin/true; i=$((i+1)); done`
	var specs []rules.Spec
	for i, p := range []string{"/usr", "/bin", "/sbin", "/opt", "/vmtest", "/lib", "/home", "/root"} {
		specs = append(specs, rules.Spec{Hook: HookBprmCheck, Name: "R" + strconv.Itoa(i),
			Scope: `NOT parent_binary_name == "nonexistent"`, Event: `path_prefix == "` + p + `" OR name == "true"`})
	}
	set := ruleSet(t, specs...)
	var report []string
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"no rules", Config{Hooks: map[string]bool{HookBprmCheck: true}}},
		{"8 rules, allow-list", Config{Hooks: map[string]bool{HookBprmCheck: true}, Rules: set,
			Sandbox: map[string]SandboxMode{HookBprmCheck: SandboxAllowList}}},
	} {
		src := New(c.cfg)
		if err := src.Start(t.Context(), nopSink{}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		wall := time.Since(start) / n
		st, err := src.obj.coll.Programs[bpf.ProcmonProgLsmBprmCheck].Stats()
		_ = src.Close()
		if err != nil {
			t.Fatal(err)
		}
		if st.RunCount < n {
			t.Fatalf("%s: bprm_check ran %d times for %d execs", c.name, st.RunCount, n)
		}
		report = append(report, fmt.Sprintf("%s: bprm_check %v per run (%d runs), exec %v", c.name,
			st.Runtime/time.Duration(st.RunCount), st.RunCount, wall))
	}
	t.Logf("per exec: %s", strings.Join(report, "; "))
}

// TestSandboxDenyEachHook denies one operation on each hook that can deny,
// with a deny-list rule on the value the operation sets: the call fails
// with EPERM and the event says denied.
func TestSandboxDenyEachHook(t *testing.T) {
	requireLSMTier(t)
	for _, c := range []struct {
		hook, event, mode string
		kind              process.EventKind
	}{
		{HookSetuid, "uid == 1000", "setuid", process.EventUID},
		{HookSetgid, "gid == 1000 AND egid == 1000", "setgid", process.EventGID},
		{HookCapset, `NOT ecaps == "CAP_NET_RAW"`, "capset", process.EventCapset},
		{HookCreateUserNS, "euid == 0", "userns", process.EventUserNS},
	} {
		t.Run(c.hook, func(t *testing.T) {
			set := ruleSet(t, rules.Spec{Hook: c.hook, Name: "Deny", Event: c.event})
			_, rec := startSource(t, Config{Hooks: map[string]bool{}, Rules: set,
				Sandbox: map[string]SandboxMode{c.hook: SandboxDenyList}})
			pid, out := helperResult(t, c.mode)
			if !strings.Contains(out, "operation not permitted") {
				t.Errorf("%s: %q, want EPERM", c.mode, out)
			}
			ev := rec.WaitFor(c.kind, pid, nil, 3*time.Second)
			if ev == nil || ev.Verdict != process.VerdictDenied || !slices.Equal(ev.Matched, []string{"Deny"}) {
				t.Errorf("event %+v", ev)
			}
		})
	}
}
