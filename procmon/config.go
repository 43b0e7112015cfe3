package procmon

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/proctrack/proctrack/internal/cfgtext"
	methodebpf "github.com/proctrack/proctrack/methods/ebpf"
	"github.com/proctrack/proctrack/rules"
)

// ErrConfig is matched by every error of ParseConfig and LoadConfig that is
// not a rule error (those match the rules package's sentinels) nor a
// failure to open or read the file.
var ErrConfig = errors.New("invalid configuration")

// MaxConfigBytes is the largest configuration LoadConfig and ParseConfig
// accept: 4 MiB, checked before parsing (a file by its size, or after
// reading MaxConfigBytes+1 bytes of it). A larger one is refused with an
// error matching ErrConfig and ErrTooLarge.
const MaxConfigBytes = cfgtext.MaxBytes

// ErrTooLarge is matched by the error for a configuration over
// MaxConfigBytes (and by seccomp's for a policy over its cap: the same
// value as seccomp.ErrTooLarge).
var ErrTooLarge = cfgtext.ErrTooLarge

// FileConfig is the YAML configuration of seed 000: the monitor's settings,
// one block per privilege hook with its rules, and the lists and macros the
// rules use.
//
//	method: ebpf          # preferred method (optional; default the best)
//	ima_hash: true        # IMA digests in exec events (eBPF LSM tier)
//	gc_period: 30         # seconds, or a Go duration ("30s")
//	lists:
//	  shells: ["/bin/bash", "/bin/sh"]
//	macros:
//	  is_root: euid == 0
//	setuid:
//	  enabled: true
//	  sandbox: {enabled: true, deny_list: true}
//	  rules:
//	    - rule: UidTestRule
//	      scope: binary_prefix == "/usr"
//	      event: uid == 1000 AND euid == 0
//
// Every rule has a name, unique in its hook, and an event expression: a
// rule on every event of its hook writes the match-all form, `event: ANY`
// (a rule without event, or with an empty one, is an error, not a rule
// matching everything). scope is optional.
//
// Hook blocks are top-level keys named as the hooks (rules.Hooks); "setcaps"
// is read as "capset". A hook without a block, or with enabled: false, is
// disabled: the eBPF method does not attach it and its rules are not
// evaluated. It can be written as Go structs as well; Compile then checks
// and compiles it.
type FileConfig struct {
	// Method is the preferred method ("" means the best).
	Method string `yaml:"method,omitempty"`
	// IMAHash adds IMA digests to exec events (methods/ebpf Config.IMAHash).
	IMAHash bool `yaml:"ima_hash,omitempty"`
	// GCPeriod is the garbage collection period of the eBPF method's map of
	// executable paths and of the process cache; 0 means their defaults. In
	// YAML: an integer number of seconds (seed 000) or a Go duration.
	GCPeriod time.Duration `yaml:"-"`
	// Lists and Macros are the named lists and macros of the rules.
	Lists  map[string][]string `yaml:"lists,omitempty"`
	Macros map[string]string   `yaml:"macros,omitempty"`
	// Hooks holds the hook blocks by hook name (rules.Hooks).
	Hooks map[string]HookConfig `yaml:"-"`

	// set holds the compiled rules of the enabled hooks (Compile).
	set *rules.Set
}

// HookConfig is the block of one hook.
type HookConfig struct {
	// Enabled turns the hook on.
	Enabled bool `yaml:"enabled"`
	// Sandbox is the hook's sandbox mode (see SandboxConfig).
	Sandbox *SandboxConfig `yaml:"sandbox,omitempty"`
	// Rules are the hook's rules; an event of the hook is reported as
	// matching each rule it satisfies.
	Rules []RuleConfig `yaml:"rules,omitempty"`
}

// SandboxConfig is a hook's sandbox mode (seed 000, Bombini's semantics):
// the hook's rules are enforced in the kernel, and an operation they deny
// fails with EPERM and is still reported (Event.Verdict, Event.Matched).
//
//   - deny_list: false (the default), an allow-list: an operation that the
//     scope of one of the hook's rules covers is denied unless a rule
//     matches it (scope and event). A rule without scope covers every
//     process, so its event lists everything the hook allows.
//   - deny_list: true: an operation a rule matches is denied.
//
// It is accepted on the hooks that can deny (SandboxHooks), which must be
// enabled and have at least one rule. Sandbox mode needs the eBPF method's
// LSM tier (Linux 6.2 or later with bpf in the LSM list): starting a
// monitor with it anywhere else fails (ErrSandbox).
//
// sched_process_exec (Bombini's exec sandbox) only enforces: once enabled
// with rules it is a deny-list without a sandbox block (Bombini's
// default), an allow-list with deny_list: false; enabled: false in its
// block is refused (Bombini ignores it). A denied exec is killed with
// SIGKILL at the exec tracepoint, on both tiers of the eBPF method: it
// needs the eBPF method (ErrSandbox elsewhere), not BPF LSM.
type SandboxConfig struct {
	Enabled  bool `yaml:"enabled"`
	DenyList bool `yaml:"deny_list"`
}

// mode returns the sandbox mode in force for a hook block: the sandbox
// block's on an enabled hook; for sched_process_exec, which only enforces
// (as in Bombini), a deny-list unless the block says deny_list: false,
// once the hook is enabled and has rules.
func (h HookConfig) mode(hook string) methodebpf.SandboxMode {
	switch {
	case !h.Enabled:
		return methodebpf.SandboxOff
	case hook != rules.HookSchedProcessExec:
		return h.Sandbox.Mode()
	case len(h.Rules) == 0:
		return methodebpf.SandboxOff
	case h.Sandbox != nil && !h.Sandbox.DenyList:
		return methodebpf.SandboxAllowList
	}
	return methodebpf.SandboxDenyList
}

// Mode returns the eBPF method's sandbox mode of the block.
func (s *SandboxConfig) Mode() methodebpf.SandboxMode {
	switch {
	case s == nil || !s.Enabled:
		return methodebpf.SandboxOff
	case s.DenyList:
		return methodebpf.SandboxDenyList
	}
	return methodebpf.SandboxAllowList
}

// RuleConfig is one rule: its name, the scope and event expressions in the
// rules package's language. Event is required ("ANY" for every event).
type RuleConfig struct {
	Rule  string `yaml:"rule"`
	Scope string `yaml:"scope,omitempty"`
	Event string `yaml:"event,omitempty"`

	// where the rule, its name and its expressions are in the file, for
	// error positions.
	at, nameAt       rules.Pos
	scopeAt, eventAt *cfgtext.Scalar
}

// filePos converts a position in the value of scalar s (zero: the error
// is about the whole value) to one in the file.
func filePos(s *cfgtext.Scalar, value string, p rules.Pos) rules.Pos {
	if s == nil {
		return p
	}
	off := 0
	if p.Line > 0 {
		if off = cfgtext.Offset(value, p.Line, p.Column); off < 0 {
			return p
		}
	}
	line, col := s.At(off)
	return rules.Pos{Line: line, Column: col}
}

// topKeys are the top-level keys that are not hooks.
var topKeys = []string{"method", "ima_hash", "gc_period", "lists", "macros"}

// LoadConfig reads a YAML configuration file into a Config for New.
func LoadConfig(path string) (Config, error) {
	f, err := LoadFileConfig(path)
	if err != nil {
		return Config{}, err
	}
	return f.MonitorConfig(), nil
}

// ParseConfig parses a YAML configuration into a Config for New.
func ParseConfig(data []byte) (Config, error) {
	f, err := ParseFileConfig(data)
	if err != nil {
		return Config{}, err
	}
	return f.MonitorConfig(), nil
}

// LoadFileConfig reads and compiles a YAML configuration file of at most
// MaxConfigBytes. Errors name the file.
func LoadFileConfig(path string) (*FileConfig, error) {
	data, err := cfgtext.ReadFile(path)
	if errors.Is(err, cfgtext.ErrTooLarge) {
		return nil, fmt.Errorf("%s: procmon: config: %w: %w", path, ErrConfig, err)
	}
	if err != nil {
		return nil, fmt.Errorf("procmon: config: %w", err)
	}
	f, err := ParseFileConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// ParseFileConfig parses and compiles a YAML configuration of at most
// MaxConfigBytes. Errors give the line and column in data: of the
// offending key or value, and for a rule of the offending token inside the
// rule, whatever the style of the YAML scalar holding it (plain, quoted,
// folded over several lines, or a block); a YAML syntax error gives the
// line of the problem (in a file of at most 64 KiB; above, yaml.v3's line,
// that of the enclosing block). Values quoted in errors are cut to 64
// bytes.
func ParseFileConfig(data []byte) (*FileConfig, error) {
	if err := cfgtext.Check(data); err != nil {
		return nil, fmt.Errorf("procmon: config: %w: %w", ErrConfig, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, problem := cfgtext.YAMLSyntax(data, err)
		if line == 0 {
			return nil, fmt.Errorf("procmon: config: %w: YAML syntax: %s", ErrConfig, problem)
		}
		return nil, fmt.Errorf("procmon: config: %w: line %d: YAML syntax: %s", ErrConfig, line, problem)
	}
	f := &FileConfig{}
	if len(doc.Content) == 0 {
		return f, f.Compile()
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, cfgErr(root, "expected a mapping of settings and hooks, found a %s", kindName(root))
	}
	lines := strings.Split(string(data), "\n")
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		key := k.Value
		canon := key
		if h, ok := rules.CanonicalHook(key); ok {
			canon = h
		}
		if prev, dup := seen[canon]; dup {
			return nil, cfgErr(k, "%s repeats the key %s of line %d", cfgtext.Quote(key), cfgtext.Quote(prev.Value), prev.Line)
		}
		seen[canon] = k
		var err error
		switch key {
		case "method":
			err = v.Decode(&f.Method)
			if err == nil && f.Method != "" && !slices.Contains(Methods, f.Method) {
				return nil, cfgErr(v, "expected a method (one of %s), found %s", strings.Join(Methods, ", "), cfgtext.Quote(f.Method))
			}
		case "ima_hash":
			err = v.Decode(&f.IMAHash)
		case "gc_period":
			f.GCPeriod, err = decodePeriod(v)
		case "lists":
			f.Lists, err = decodeLists(v)
		case "macros":
			f.Macros, err = decodeMacros(v)
		default:
			if _, ok := rules.CanonicalHook(key); !ok {
				return nil, cfgErr(k, "unknown key %s: expected one of %s or a hook (%s)",
					cfgtext.Quote(key), strings.Join(topKeys, ", "), strings.Join(rules.Hooks, ", "))
			}
			var h HookConfig
			h, err = decodeHook(v, lines)
			if err == nil {
				if f.Hooks == nil {
					f.Hooks = make(map[string]HookConfig)
				}
				f.Hooks[canon] = h
			}
		}
		if err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) {
				return nil, cfgErr(v, "%s: %s", key, strings.Join(te.Errors, "; "))
			}
			return nil, err
		}
	}
	if err := f.Compile(); err != nil {
		return nil, err
	}
	return f, nil
}

// decodePeriod reads gc_period: seconds or a Go duration.
func decodePeriod(v *yaml.Node) (time.Duration, error) {
	if v.Kind != yaml.ScalarNode {
		return 0, cfgErr(v, "gc_period: expected a number of seconds or a duration, found a %s", kindName(v))
	}
	var d time.Duration
	if n, err := strconv.ParseFloat(v.Value, 64); err == nil {
		d = time.Duration(n * float64(time.Second))
	} else if d, err = time.ParseDuration(v.Value); err != nil {
		return 0, cfgErr(v, "gc_period: expected a number of seconds or a duration (\"30s\"), found %s", cfgtext.Quote(v.Value))
	}
	if d < 0 {
		return 0, cfgErr(v, "gc_period: expected a positive period, found %s", cfgtext.Quote(v.Value))
	}
	return d, nil
}

// decodeLists reads the lists: a mapping of names to items, or Bombini's
// sequence of {list: name, items: [...]}. Items keep their text: numbers
// are read by the attribute they are compared with.
func decodeLists(v *yaml.Node) (map[string][]string, error) {
	if v.Kind != yaml.SequenceNode {
		var m map[string][]string
		err := v.Decode(&m)
		return m, err
	}
	m := map[string][]string{}
	for _, e := range v.Content {
		if err := checkKeys(e, "list", "items"); err != nil {
			return nil, err
		}
		var l struct {
			List  string   `yaml:"list"`
			Items []string `yaml:"items"`
		}
		if err := e.Decode(&l); err != nil {
			return nil, err
		}
		if l.List == "" || len(l.Items) == 0 {
			return nil, cfgErr(e, "lists: expected a name (list:) and items (items: [...])")
		}
		if _, dup := m[l.List]; dup {
			return nil, cfgErr(e, "lists: list %s is defined twice", cfgtext.Quote(l.List))
		}
		m[l.List] = l.Items
	}
	return m, nil
}

// decodeMacros reads the macros: a mapping of names to conditions, or
// Bombini's sequence of {macro: name, condition: ...}.
func decodeMacros(v *yaml.Node) (map[string]string, error) {
	if v.Kind != yaml.SequenceNode {
		var m map[string]string
		err := v.Decode(&m)
		return m, err
	}
	m := map[string]string{}
	for _, e := range v.Content {
		if err := checkKeys(e, "macro", "condition"); err != nil {
			return nil, err
		}
		var d struct {
			Macro     string `yaml:"macro"`
			Condition string `yaml:"condition"`
		}
		if err := e.Decode(&d); err != nil {
			return nil, err
		}
		if d.Macro == "" || d.Condition == "" {
			return nil, cfgErr(e, "macros: expected a name (macro:) and a condition (condition:)")
		}
		if _, dup := m[d.Macro]; dup {
			return nil, cfgErr(e, "macros: macro %s is defined twice", cfgtext.Quote(d.Macro))
		}
		m[d.Macro] = d.Condition
	}
	return m, nil
}

// decodeHook reads a hook block, keeping where each rule's texts are.
func decodeHook(v *yaml.Node, lines []string) (HookConfig, error) {
	var h HookConfig
	if v.Kind != yaml.MappingNode {
		return h, cfgErr(v, "expected a hook block (enabled, sandbox, rules), found a %s", kindName(v))
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		var err error
		switch k.Value {
		case "enabled":
			err = val.Decode(&h.Enabled)
		case "sandbox":
			if err = checkKeys(val, "enabled", "deny_list"); err == nil {
				h.Sandbox = &SandboxConfig{}
				err = val.Decode(h.Sandbox)
			}
		case "rules":
			if val.Kind != yaml.SequenceNode {
				return h, cfgErr(val, "rules: expected a list of rules, found a %s", kindName(val))
			}
			for _, rn := range val.Content {
				r, err := decodeRule(rn, lines)
				if err != nil {
					return h, err
				}
				h.Rules = append(h.Rules, r)
			}
		default:
			return h, cfgErr(k, "unknown key %s in a hook block: expected enabled, sandbox or rules", cfgtext.Quote(k.Value))
		}
		if err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) {
				return h, cfgErr(val, "%s: %s", k.Value, strings.Join(te.Errors, "; "))
			}
			return h, err
		}
	}
	return h, nil
}

// decodeRule reads one rule.
func decodeRule(n *yaml.Node, lines []string) (RuleConfig, error) {
	r := RuleConfig{at: rules.Pos{Line: n.Line, Column: n.Column}}
	if err := checkKeys(n, "rule", "scope", "event"); err != nil {
		return r, err
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			return r, cfgErr(v, "%s: expected a string, found a %s", k.Value, kindName(v))
		}
		switch k.Value {
		case "rule":
			r.Rule, r.nameAt = v.Value, rules.Pos{Line: v.Line, Column: v.Column}
		case "scope":
			r.Scope, r.scopeAt = v.Value, cfgtext.NewScalar(lines, v)
		case "event":
			r.Event, r.eventAt = v.Value, cfgtext.NewScalar(lines, v)
		}
	}
	if r.Rule == "" {
		return r, cfgErr(n, "expected a rule name (rule: Name)")
	}
	return r, nil
}

// checkKeys checks that a mapping has only the given keys.
func checkKeys(n *yaml.Node, keys ...string) error {
	if n.Kind != yaml.MappingNode {
		return cfgErr(n, "expected a mapping with keys %s, found a %s", strings.Join(keys, ", "), kindName(n))
	}
	for i := 0; i < len(n.Content); i += 2 {
		if k := n.Content[i]; !slices.Contains(keys, k.Value) {
			return cfgErr(k, "unknown key %s: expected %s", cfgtext.Quote(k.Value), strings.Join(keys, ", "))
		}
	}
	return nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	return "scalar " + cfgtext.Quote(n.Value)
}

// cfgErr returns an ErrConfig error at a node's position.
func cfgErr(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("procmon: config: %w: line %d, column %d: %s", ErrConfig, n.Line, n.Column, fmt.Sprintf(format, args...))
}

// Compile checks the configuration and compiles the rules of the enabled
// hooks; ParseFileConfig calls it. Use it after building a FileConfig as Go
// structs. Errors of rules read from YAML give file positions.
func (f *FileConfig) Compile() error {
	if f.Method != "" && !slices.Contains(Methods, f.Method) {
		return fmt.Errorf("procmon: config: %w: %w %s (want one of %v)", ErrConfig, ErrUnknownMethod, cfgtext.Quote(f.Method), Methods)
	}
	if f.GCPeriod < 0 {
		return fmt.Errorf("procmon: config: %w: negative gc_period %v", ErrConfig, f.GCPeriod)
	}
	defs := &rules.Defs{Lists: f.Lists, Macros: f.Macros}
	if err := defs.Validate(); err != nil {
		return fmt.Errorf("procmon: config: %w", err)
	}
	var compiled []*rules.Rule
	for _, name := range sortedHooks(f.Hooks) {
		h := f.Hooks[name]
		hook, ok := rules.CanonicalHook(name)
		if !ok {
			return fmt.Errorf("procmon: config: %w: unknown hook %s (want one of %v)", ErrConfig, cfgtext.Quote(name), rules.Hooks)
		}
		if hook == rules.HookSchedProcessExec && h.Sandbox != nil && !h.Sandbox.Enabled {
			return fmt.Errorf("procmon: config: %w: %s: sandbox.enabled is false, but the hook only enforces "+
				"(in Bombini too: sandbox mode is always on, and enabled is not read): its rules kill what they deny; "+
				"write enabled: true, or disable the hook", ErrConfig, hook)
		}
		if h.Sandbox != nil {
			if !slices.Contains(SandboxHooks, hook) {
				return fmt.Errorf("procmon: config: %w: hook %s has no sandbox mode (only %s)", ErrConfig, hook, strings.Join(SandboxHooks, ", "))
			}
			if h.Sandbox.Enabled && !h.Enabled {
				return fmt.Errorf("procmon: config: %w: %s: sandbox enabled on a hook that is not (enabled: true)", ErrConfig, hook)
			}
			if h.Sandbox.Enabled && len(h.Rules) == 0 {
				return fmt.Errorf("procmon: config: %w: %s: sandbox enabled without rules: it would decide nothing", ErrConfig, hook)
			}
		}
		names := make(map[string]RuleConfig, len(h.Rules))
		for _, rc := range h.Rules {
			if err := checkRule(hook, rc, names); err != nil {
				return fmt.Errorf("procmon: config: %w", err)
			}
			names[rc.Rule] = rc
			r, err := rules.CompileSpec(rules.Spec{Hook: hook, Name: rc.Rule, Event: rc.Event, Scope: rc.Scope}, defs)
			if err != nil {
				var re *rules.Error
				if errors.As(err, &re) {
					if re.Field == "scope" {
						re.Pos = filePos(rc.scopeAt, rc.Scope, re.Pos)
					} else {
						re.Pos = filePos(rc.eventAt, rc.Event, re.Pos)
					}
				}
				return fmt.Errorf("procmon: config: %w", err)
			}
			if h.Enabled {
				compiled = append(compiled, r)
			}
		}
	}
	set, err := rules.NewSet(compiled...)
	if err != nil {
		return fmt.Errorf("procmon: config: %w", err)
	}
	f.set = set
	return nil
}

// checkRule checks what the rules package leaves to the configuration: a
// rule has an event expression (ANY for every event), and a name no
// earlier rule of its hook (names) has.
func checkRule(hook string, rc RuleConfig, names map[string]RuleConfig) error {
	if prev, dup := names[rc.Rule]; dup {
		msg := "duplicate rule name: another rule of the hook has it"
		if prev.nameAt.Line > 0 {
			msg = fmt.Sprintf("duplicate rule name: the rule at line %d, column %d has it too", prev.nameAt.Line, prev.nameAt.Column)
		}
		return &rules.Error{Rule: rc.Rule, Hook: hook, Pos: rc.nameAt, Msg: msg, Err: rules.ErrDuplicate}
	}
	if strings.TrimSpace(rc.Event) == "" {
		pos := rc.at
		if rc.eventAt != nil {
			pos = filePos(rc.eventAt, rc.Event, rules.Pos{})
		}
		return &rules.Error{Rule: rc.Rule, Hook: hook, Field: "event", Pos: pos, Err: rules.ErrSyntax,
			Msg: "no event expression: write one, or event: ANY for a rule on every event of the hook"}
	}
	return nil
}

// SandboxHooks are the hooks that accept a sandbox block (those with event
// filtering).
var SandboxHooks = methodebpf.SandboxHooks

// sortedHooks returns the hook names in rules.Hooks order (aliases by
// their hook), unknown names last.
func sortedHooks(m map[string]HookConfig) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	idx := func(k string) int {
		h, _ := rules.CanonicalHook(k)
		if i := slices.Index(rules.Hooks, h); i >= 0 {
			return i
		}
		return len(rules.Hooks)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if d := idx(a) - idx(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return keys
}

// Rules returns the compiled rules of the enabled hooks (nil before
// Compile).
func (f *FileConfig) Rules() *rules.Set { return f.set }

// Enabled reports whether a hook (or its alias) is enabled.
func (f *FileConfig) Enabled(hook string) bool {
	hook, _ = rules.CanonicalHook(hook)
	for name, h := range f.Hooks {
		if c, _ := rules.CanonicalHook(name); c == hook && h.Enabled {
			return true
		}
	}
	return false
}

// MonitorConfig returns the Config for New: Method, Ebpf.Hooks (every hook,
// enabled as the file says: a hook without a block is off), Ebpf.IMAHash,
// Ebpf.GCPeriod, Ebpf.Sandbox, CacheConfig.GCPeriod, Rules and Hooks.
func (f *FileConfig) MonitorConfig() Config {
	var cfg Config
	cfg.Method = f.Method
	cfg.Ebpf.IMAHash = f.IMAHash
	cfg.Ebpf.GCPeriod = f.GCPeriod
	cfg.CacheConfig.GCPeriod = f.GCPeriod
	cfg.Ebpf.Hooks = make(map[string]bool, len(rules.Hooks))
	for _, h := range rules.Hooks {
		cfg.Ebpf.Hooks[h] = f.Enabled(h)
	}
	cfg.Rules = f.Rules()
	cfg.Hooks = f.Hooks
	cfg.Ebpf.Sandbox = cfg.sandbox()
	return cfg
}
