package audit

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/elastic/go-libaudit/v2/rule"
	"github.com/elastic/go-libaudit/v2/rule/flags"
	"github.com/proctrack/proctrack/procmon/process"
	"golang.org/x/sys/unix"
)

// RuleKey is the key (auditctl -k) every rule the source installs carries,
// with a second key naming the instance: auditctl -l shows them as
// "-k proctrack -k proctrack-owner=<pid>-<start ticks>.<n>".
const RuleKey = "proctrack"

// ownerKeyPrefix starts the second key of the source's rules, which names
// the instance that installed them: "proctrack-owner=<pid>-<start ticks>.<n>".
// It lets a Start tell the rules of a live proctrack (another process, or
// another Source of this one) from leftovers of a crashed run.
const ownerKeyPrefix = "proctrack-owner="

// Flags and requests the rules filter on.
const (
	cloneNewUser  = 0x10000000 // CLONE_NEWUSER
	ptraceTraceme = 0
	ptraceAttach  = 16
	ptraceDetach  = 17
	ptraceSeize   = 0x4206
)

// ruleSpec is one rule in auditctl syntax without arch and keys: -F
// arch=<arch> and the -k keys are added per architecture.
type ruleSpec struct {
	syscalls64 string // for b64
	syscalls32 string // for b32 (the i386 names: setuid32...)
	filters    string
}

// ruleSpecs are the rules the source installs, for b64 and b32 each.
var ruleSpecs = []ruleSpec{
	{"execve,execveat", "execve,execveat", "-F success=1"},
	{"exit_group", "exit_group", ""},
	{"setuid,setreuid,setresuid,setfsuid",
		"setuid,setreuid,setresuid,setfsuid,setuid32,setreuid32,setresuid32,setfsuid32", "-F success=1"},
	{"setgid,setregid,setresgid,setfsgid,setgroups",
		"setgid,setregid,setresgid,setfsgid,setgroups,setgid32,setregid32,setresgid32,setfsgid32,setgroups32", "-F success=1"},
	{"capset", "capset", "-F success=1"},
	{"prctl", "prctl", prctlFilter() + " -F success=1"},
	{"ptrace", "ptrace", "-F a0=" + strconv.Itoa(ptraceTraceme) + " -F success=1"},
	{"ptrace", "ptrace", "-F a0=" + strconv.Itoa(ptraceAttach) + " -F success=1"},
	{"ptrace", "ptrace", "-F a0=" + strconv.Itoa(ptraceDetach) + " -F success=1"},
	{"ptrace", "ptrace", "-F a0=" + strconv.Itoa(ptraceSeize) + " -F success=1"},
	{"unshare,clone", "unshare,clone", "-F a0&0x10000000 -F success=1"},
}

// prctlReads are the prctl options that only read state (PR_GET_*,
// PR_CAPBSET_READ): the prctl rule leaves them out, or a program reading
// its bounding set (setpriv, capsh: one call per capability) would flood.
var prctlReads = []int{
	unix.PR_GET_PDEATHSIG, unix.PR_GET_DUMPABLE, unix.PR_GET_UNALIGN, unix.PR_GET_KEEPCAPS,
	unix.PR_GET_FPEMU, unix.PR_GET_FPEXC, unix.PR_GET_TIMING, unix.PR_GET_NAME,
	unix.PR_GET_ENDIAN, unix.PR_GET_SECCOMP, unix.PR_CAPBSET_READ, unix.PR_GET_TSC,
	unix.PR_GET_SECUREBITS, unix.PR_GET_TIMERSLACK, unix.PR_MCE_KILL_GET, unix.PR_GET_CHILD_SUBREAPER,
	unix.PR_GET_NO_NEW_PRIVS, unix.PR_GET_TID_ADDRESS, unix.PR_GET_THP_DISABLE, unix.PR_GET_FP_MODE,
	unix.PR_GET_SPECULATION_CTRL, unix.PR_GET_TAGGED_ADDR_CTRL, unix.PR_GET_IO_FLUSHER, unix.PR_GET_MDWE,
	unix.PR_GET_MEMORY_MERGE, unix.PR_GET_AUXV,
}

// prctlFilter is "-F a0!=<option>" for each option of prctlReads.
func prctlFilter() string {
	parts := make([]string, len(prctlReads))
	for i, op := range prctlReads {
		parts[i] = "-F a0!=" + strconv.Itoa(op)
	}
	return strings.Join(parts, " ")
}

// Rules returns the rules a Source installs, in auditctl syntax, with the
// keys as auditctl would print them (the owner key is shown as
// "proctrack-owner=..."). For documentation and tests.
func Rules() []string {
	return ruleTexts(ownerKeyPrefix + "...")
}

// ruleTexts returns the rules with the owner key given.
func ruleTexts(owner string) []string {
	var out []string
	for _, arch := range []string{"b64", "b32"} {
		for _, r := range ruleSpecs {
			sc := r.syscalls64
			if arch == "b32" {
				sc = r.syscalls32
			}
			s := "-a always,exit -F arch=" + arch + " -S " + sc
			if r.filters != "" {
				s += " " + r.filters
			}
			s += " -k " + RuleKey + " -k " + owner
			out = append(out, s)
		}
	}
	return out
}

// builtRule is a rule in the kernel's wire format, with its text.
type builtRule struct {
	text string
	wire []byte
	b32  bool
}

// buildRules parses and builds the rules with go-libaudit's rule API.
func buildRules(owner string) ([]builtRule, error) {
	texts := ruleTexts(owner)
	out := make([]builtRule, 0, len(texts))
	for _, t := range texts {
		r, err := flags.Parse(t)
		if err != nil {
			return nil, fmt.Errorf("audit: parse rule %q: %w", t, err)
		}
		wire, err := rule.Build(r)
		if err != nil {
			return nil, fmt.Errorf("audit: build rule %q: %w", t, err)
		}
		out = append(out, builtRule{text: t, wire: wire, b32: strings.Contains(t, "arch=b32")})
	}
	return out, nil
}

// ruleKeys returns the keys of a rule in wire format (nil when it has none
// or cannot be decoded).
func ruleKeys(wire []byte) []string {
	cmd, err := rule.ToCommandLine(rule.WireFormat(wire), false)
	if err != nil {
		return nil
	}
	i := strings.LastIndex(cmd, "-F key=")
	if i < 0 {
		return nil
	}
	v := cmd[i+len("-F key="):]
	for _, sep := range []string{" -F ", " -C "} {
		if j := strings.Index(v, sep); j >= 0 {
			v = v[:j]
		}
	}
	return strings.Split(v, "\x01")
}

// instances are the live Sources of this process, by instance number, so
// a Start does not take another live Source's rules for leftovers.
var instances = struct {
	sync.Mutex
	next uint64
	live map[uint64]bool
}{live: map[uint64]bool{}}

// selfKey is this process's identity, computed once.
var selfKey = sync.OnceValue(func() process.Key {
	k, err := process.CurrentKey(os.Getpid())
	if err != nil {
		return process.Key{PID: os.Getpid()}
	}
	return k
})

// newOwner registers a new instance and returns its owner key and number.
func newOwner() (string, uint64) {
	instances.Lock()
	defer instances.Unlock()
	instances.next++
	n := instances.next
	instances.live[n] = true
	return ownerKeyPrefix + selfKey().String() + "." + strconv.FormatUint(n, 10), n
}

// dropOwner unregisters instance n.
func dropOwner(n uint64) {
	instances.Lock()
	delete(instances.live, n)
	instances.Unlock()
}

// isOurs reports whether a rule's keys mark it as installed by proctrack.
func isOurs(keys []string) bool {
	for _, k := range keys {
		if k == RuleKey {
			return true
		}
	}
	return false
}

// isLeftover reports whether a proctrack rule (keys include RuleKey) was
// left by a run that is over: it names no owner, or an owner process that
// is gone (or whose pid was reused), or a Source of this process that is
// closed.
func isLeftover(keys []string) bool {
	for _, k := range keys {
		owner, ok := strings.CutPrefix(k, ownerKeyPrefix)
		if !ok {
			continue
		}
		id, inst, ok := strings.Cut(owner, ".")
		if !ok {
			return true
		}
		pidStr, ticksStr, ok := strings.Cut(id, "-")
		if !ok {
			return true
		}
		pid, err1 := strconv.Atoi(pidStr)
		ticks, err2 := strconv.ParseUint(ticksStr, 10, 64)
		n, err3 := strconv.ParseUint(inst, 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return true
		}
		if self := selfKey(); pid == self.PID && ticks == self.StartTicks {
			instances.Lock()
			defer instances.Unlock()
			return !instances.live[n]
		}
		cur, err := process.CurrentKey(pid)
		return err != nil || cur.StartTicks != ticks
	}
	return true
}
