package seccomp

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/proctrack/proctrack/internal/cfgtext"
	"github.com/proctrack/proctrack/internal/kernel"
	"github.com/proctrack/proctrack/internal/sysnum"
)

// Action is what a filter does to a system call: one of the Action*
// constants, spelled as in the policy YAML.
type Action string

// The actions of a policy, as seed 002 lists them. What each does to the
// caller, and the kernel it needs, is in the package documentation and in
// MinKernel.
const (
	// ActionErrno fails the call with EPERM without running it.
	ActionErrno Action = "errno"
	// ActionTrace notifies a ptrace tracer (PTRACE_O_TRACESECCOMP);
	// without one the call fails with ENOSYS.
	ActionTrace Action = "trace"
	// ActionTrap sends SIGSYS to the calling thread without running the
	// call; the Go runtime then crashes the process.
	ActionTrap Action = "trap"
	// ActionKillThread kills the calling thread at once, as if by an
	// uncatchable SIGSYS; the other threads go on (a Go program usually
	// deadlocks or crashes).
	ActionKillThread Action = "kill_thread"
	// ActionKillProcess kills the whole process at once (SIGSYS, core).
	ActionKillProcess Action = "kill_process"
	// ActionLog runs the call and logs it to the kernel audit log.
	ActionLog Action = "log"
	// ActionAllow runs the call.
	ActionAllow Action = "allow"
)

// Actions lists every action, most restrictive first.
var Actions = []Action{ActionKillProcess, ActionKillThread, ActionTrap, ActionErrno, ActionTrace, ActionLog, ActionAllow}

// KernelVersion is a Linux version, major.minor; its String method returns
// "major.minor" and Less compares.
type KernelVersion = kernel.Version

// InstallFloor is the oldest kernel Install works on: it loads the filter
// with the seccomp(2) system call and SECCOMP_FILTER_FLAG_TSYNC, both new in
// Linux 3.17.
var InstallFloor = KernelVersion{Major: 3, Minor: 17}

// LogFlagFloor is the oldest kernel that takes SECCOMP_FILTER_FLAG_LOG
// (Policy.LogViolations).
var LogFlagFloor = KernelVersion{Major: 4, Minor: 14}

// MinKernel returns the oldest kernel on which Install accepts a policy
// using a: kill_process and log are new in 4.14; the others date from
// seccomp filters themselves (3.5, as SECCOMP_RET_KILL for kill_thread) but
// Install needs 3.17 (InstallFloor). ok is false for an unknown action.
func (a Action) MinKernel() (v KernelVersion, ok bool) {
	switch a {
	case ActionKillProcess, ActionLog:
		return KernelVersion{Major: 4, Minor: 14}, true
	case ActionErrno, ActionTrace, ActionTrap, ActionKillThread, ActionAllow:
		return InstallFloor, true
	}
	return KernelVersion{}, false
}

// Valid reports whether a is one of Actions.
func (a Action) Valid() bool { return slices.Contains(Actions, a) }

// SyscallGroup applies one action to a list of system calls.
type SyscallGroup struct {
	// Action is taken when the call is one of Names.
	Action Action `yaml:"action"`
	// Names are system call names of the running architecture ("openat");
	// at least one.
	Names []string `yaml:"names"`
}

// Policy is a seccomp policy in seed 002's shape. Build it with ParsePolicy
// or DefaultPolicy, or fill it in Go and let Install (or Validate) check it.
//
// The groups are matched in order: the first group naming the call gives
// the action; a call no group names gets DefaultAction.
type Policy struct {
	// Enabled is false to keep the policy from being installed: Install
	// then does nothing. ParsePolicy sets it to true unless the document
	// says `enabled: false`.
	Enabled bool `yaml:"enabled"`
	// DefaultAction is taken for a call no group names. Required.
	DefaultAction Action `yaml:"default_action"`
	// Syscalls are the groups, matched in order. At least one.
	Syscalls []SyscallGroup `yaml:"syscalls"`
	// LogViolations (an extension of seed 002, `log_violations` in YAML)
	// installs the filter with SECCOMP_FILTER_FLAG_LOG: the kernel then
	// logs every action but allow to the audit log (when the action is in
	// /proc/sys/kernel/seccomp/actions_logged), so errno, trap and trace
	// denials become visible to a Watcher too. Without it only log,
	// kill_thread and kill_process are logged. Needs Linux 4.14.
	LogViolations bool `yaml:"log_violations"`

	// pos holds where each entry was in the parsed document, by path.
	pos map[string]position
}

type position struct{ line, column int }

// ErrInvalidPolicy is matched (errors.Is) by every error ParsePolicy,
// Validate and Install return for a policy that is wrong, as opposed to a
// kernel that refuses it.
var ErrInvalidPolicy = errors.New("invalid seccomp policy")

// MaxPolicyBytes is the largest policy LoadPolicy and ParsePolicy accept:
// 4 MiB, checked before parsing (a file by its size, or after reading
// MaxPolicyBytes+1 bytes of it). A larger one is refused with a
// *PolicyError matching ErrInvalidPolicy and ErrTooLarge.
const MaxPolicyBytes = cfgtext.MaxBytes

// ErrTooLarge is matched by the error for a policy over MaxPolicyBytes
// (the same value as procmon.ErrTooLarge).
var ErrTooLarge = cfgtext.ErrTooLarge

// PolicyError is a policy mistake: which entry, where in the document when
// it was parsed, and why. It matches ErrInvalidPolicy.
type PolicyError struct {
	// Path names the entry: "default_action", "syscalls[1].names[2]"; ""
	// for the document as a whole.
	Path string
	// Line and Column locate the entry in the YAML (1-based; 0 when
	// unknown: a Policy built in Go, or a YAML syntax error, for which the
	// parser reports the line only).
	Line, Column int
	// Reason says what is wrong. Names and values in it, and in Path, are
	// cut to 64 bytes followed by "..." and their length.
	Reason string

	// err is a second sentinel the error matches (ErrTooLarge), or nil.
	err error
}

// Error returns "seccomp policy: <path>: <reason> (line L, column C)".
func (e *PolicyError) Error() string {
	var b strings.Builder
	b.WriteString("seccomp policy: ")
	if e.Path != "" {
		b.WriteString(cfgtext.Clip(e.Path))
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	switch {
	case e.Line > 0 && e.Column > 0:
		fmt.Fprintf(&b, " (line %d, column %d)", e.Line, e.Column)
	case e.Line > 0:
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	return b.String()
}

// Unwrap returns ErrInvalidPolicy, and ErrTooLarge for a policy over
// MaxPolicyBytes.
func (e *PolicyError) Unwrap() []error {
	if e.err != nil {
		return []error{ErrInvalidPolicy, e.err}
	}
	return []error{ErrInvalidPolicy}
}

// LoadPolicy reads a policy file of at most MaxPolicyBytes and parses it
// (ParsePolicy). Errors name the file.
func LoadPolicy(path string) (*Policy, error) {
	data, err := cfgtext.ReadFile(path)
	if errors.Is(err, cfgtext.ErrTooLarge) {
		return nil, fmt.Errorf("%s: %w", path, &PolicyError{Reason: err.Error(), err: cfgtext.ErrTooLarge})
	}
	if err != nil {
		return nil, fmt.Errorf("seccomp policy: %w", err)
	}
	p, err := ParsePolicy(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// ParsePolicy reads a policy from YAML (or JSON), with or without the
// top-level `seccomp:` key:
//
//	seccomp:
//	  enabled: true            # optional, default true
//	  default_action: errno    # required
//	  log_violations: true     # optional extension: SECCOMP_FILTER_FLAG_LOG
//	  syscalls:                # at least one group
//	    - action: allow
//	      names: [read, write, openat]
//
// It validates the policy for the running architecture (Validate) and
// returns a *PolicyError naming the first wrong entry with its line and
// column: an unknown key, a missing default_action, an unknown action, an
// empty names list, an unknown or repeated system call name; a YAML syntax
// error gives the line of the problem (in a policy of at most 64 KiB;
// above, yaml.v3's line, that of the enclosing block). A policy over
// MaxPolicyBytes is refused before it is parsed.
func ParsePolicy(data []byte) (*Policy, error) {
	if err := cfgtext.Check(data); err != nil {
		return nil, &PolicyError{Reason: err.Error(), err: ErrTooLarge}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err.Error() == "EOF" {
			return nil, &PolicyError{Reason: "empty document"}
		}
		line, problem := cfgtext.YAMLSyntax(data, err)
		return nil, &PolicyError{Line: line, Reason: "YAML syntax: " + problem}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, &PolicyError{Reason: "empty document", Line: root.Line, Column: root.Column}
	}
	if root.Kind != yaml.MappingNode {
		return nil, nodeErr("", root, "want a mapping, got "+kindName(root))
	}
	if v := mapValue(root, "seccomp"); v != nil {
		if len(root.Content) != 2 {
			for i := 0; i < len(root.Content); i += 2 {
				if k := root.Content[i]; k.Value != "seccomp" {
					return nil, nodeErr(k.Value, k, "unknown key beside seccomp")
				}
			}
		}
		root = v
		if root.Kind != yaml.MappingNode {
			return nil, nodeErr("seccomp", root, "want a mapping, got "+kindName(root))
		}
	}

	p := &Policy{Enabled: true, pos: map[string]position{}}
	p.pos[""] = position{root.Line, root.Column}
	haveDefault := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "enabled", "log_violations":
			b, err := boolValue(k.Value, v)
			if err != nil {
				return nil, err
			}
			if k.Value == "enabled" {
				p.Enabled = b
			} else {
				p.LogViolations = b
			}
		case "default_action":
			s, err := scalar("default_action", v)
			if err != nil {
				return nil, err
			}
			p.DefaultAction, haveDefault = Action(s), true
			p.pos["default_action"] = position{v.Line, v.Column}
		case "syscalls":
			if v.Kind != yaml.SequenceNode {
				if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
					break
				}
				return nil, nodeErr("syscalls", v, "want a list of {action, names}, got "+kindName(v))
			}
			p.pos["syscalls"] = position{v.Line, v.Column}
			for gi, gn := range v.Content {
				g, err := parseGroup(p, gi, gn)
				if err != nil {
					return nil, err
				}
				p.Syscalls = append(p.Syscalls, g)
			}
		default:
			return nil, nodeErr(k.Value, k, "unknown key (want enabled, default_action, syscalls, log_violations)")
		}
	}
	if !haveDefault {
		return nil, p.errorf("default_action", "missing (it is required)")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

func parseGroup(p *Policy, gi int, gn *yaml.Node) (SyscallGroup, error) {
	path := "syscalls[" + strconv.Itoa(gi) + "]"
	var g SyscallGroup
	if gn.Kind != yaml.MappingNode {
		return g, nodeErr(path, gn, "want a mapping {action, names}, got "+kindName(gn))
	}
	p.pos[path] = position{gn.Line, gn.Column}
	for i := 0; i+1 < len(gn.Content); i += 2 {
		k, v := gn.Content[i], gn.Content[i+1]
		switch k.Value {
		case "action":
			s, err := scalar(path+".action", v)
			if err != nil {
				return g, err
			}
			g.Action = Action(s)
			p.pos[path+".action"] = position{v.Line, v.Column}
		case "names":
			np := path + ".names"
			p.pos[np] = position{v.Line, v.Column}
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				g.Names = []string{}
				break
			}
			if v.Kind != yaml.SequenceNode {
				return g, nodeErr(np, v, "want a list of system call names, got "+kindName(v))
			}
			g.Names = make([]string, 0, len(v.Content))
			for ni, nn := range v.Content {
				ep := np + "[" + strconv.Itoa(ni) + "]"
				s, err := scalar(ep, nn)
				if err != nil {
					return g, err
				}
				p.pos[ep] = position{nn.Line, nn.Column}
				g.Names = append(g.Names, s)
			}
		case "names_with_args":
			return g, nodeErr(path+".names_with_args", k, "argument conditions are not supported")
		default:
			return g, nodeErr(path+"."+k.Value, k, "unknown key (want action, names)")
		}
	}
	return g, nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		return cfgtext.Quote(n.Value)
	}
	return "nothing"
}

func nodeErr(path string, n *yaml.Node, reason string) error {
	return &PolicyError{Path: path, Line: n.Line, Column: n.Column, Reason: reason}
}

func scalar(path string, n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", nodeErr(path, n, "want a string, got "+kindName(n))
	}
	return n.Value, nil
}

func boolValue(path string, n *yaml.Node) (bool, error) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		return false, nodeErr(path, n, "want true or false, got "+kindName(n))
	}
	return b, nil
}

// errorf returns a *PolicyError for path, located when the policy was
// parsed.
func (p *Policy) errorf(path, format string, args ...any) error {
	e := &PolicyError{Path: path, Reason: fmt.Sprintf(format, args...)}
	if pos, ok := p.pos[path]; ok {
		e.Line, e.Column = pos.line, pos.column
	}
	return e
}

// Validate checks the policy for the running architecture (runtime.GOARCH);
// see ValidateArch.
func (p *Policy) Validate() error { return p.ValidateArch(runtime.GOARCH) }

// ValidateArch checks the policy for an architecture (a GOARCH, "amd64" or
// "arm64", or a kernel name, "x86_64" or "aarch64"): a known default
// action, at least one group, and in each group a known action and at least
// one name, every name a system call of that architecture, none twice in a
// group. It returns a *PolicyError naming the first wrong entry.
func (p *Policy) ValidateArch(goarch string) error {
	info, err := archTable(goarch)
	if err != nil {
		return err
	}
	if p.DefaultAction == "" {
		return p.errorf("default_action", "missing (it is required)")
	}
	if !p.DefaultAction.Valid() {
		return p.errorf("default_action", "unknown action %s (want one of %s)", cfgtext.Quote(string(p.DefaultAction)), actionList())
	}
	if len(p.Syscalls) == 0 {
		return p.errorf("syscalls", "no groups (want at least one {action, names})")
	}
	for gi, g := range p.Syscalls {
		path := "syscalls[" + strconv.Itoa(gi) + "]"
		if g.Action == "" {
			return p.errorf(path, "action missing (it is required)")
		}
		if !g.Action.Valid() {
			return p.errorf(path+".action", "unknown action %s (want one of %s)", cfgtext.Quote(string(g.Action)), actionList())
		}
		if len(g.Names) == 0 {
			if _, ok := p.pos[path+".names"]; ok {
				return p.errorf(path+".names", "empty (want at least one system call name)")
			}
			return p.errorf(path, "names missing or empty (want at least one system call name)")
		}
		seen := make(map[string]int, len(g.Names))
		for ni, name := range g.Names {
			np := path + ".names[" + strconv.Itoa(ni) + "]"
			if _, ok := info.Number(name); !ok {
				return p.errorf(np, "unknown syscall %s for %s", cfgtext.Quote(name), info.Arch)
			}
			if prev, dup := seen[name]; dup {
				return p.errorf(np, "syscall %s repeats names[%d]", cfgtext.Quote(name), prev)
			}
			seen[name] = ni
		}
	}
	return nil
}

// archTable returns the generated system call table (internal/sysnum) of
// an architecture a policy can be installed on: amd64 (x86_64) or arm64
// (aarch64), by GOARCH or kernel name.
func archTable(name string) (*sysnum.Table, error) {
	t := sysnum.Native(name)
	if t == nil {
		t = sysnum.ByArch(name)
	}
	if t == nil || (t != sysnum.AMD64 && t != sysnum.ARM64) {
		return nil, &PolicyError{Reason: fmt.Sprintf("architecture %q: unsupported (want amd64 or arm64)", name)}
	}
	return t, nil
}

func actionList() string {
	s := make([]string, len(Actions))
	for i, a := range Actions {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// Clone returns a deep copy of p.
func (p *Policy) Clone() *Policy {
	c := *p
	c.Syscalls = make([]SyscallGroup, len(p.Syscalls))
	for i, g := range p.Syscalls {
		c.Syscalls[i] = SyscallGroup{Action: g.Action, Names: slices.Clone(g.Names)}
	}
	c.pos = nil
	return &c
}

// YAML returns the policy as a document ParsePolicy reads back, under the
// `seccomp:` key.
func (p *Policy) YAML() ([]byte, error) {
	out, err := yaml.Marshal(map[string]*Policy{"seccomp": p})
	if err != nil {
		return nil, fmt.Errorf("seccomp policy: %w", err)
	}
	return out, nil
}
