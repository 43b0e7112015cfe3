package procmon

import (
	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/methods/audit"
	methodebpf "github.com/proctrack/proctrack/methods/ebpf"
	"github.com/proctrack/proctrack/methods/netlink"
	methodproc "github.com/proctrack/proctrack/methods/proc"
)

// sources builds each method's Source from the monitor's Config.
var sources = map[string]func(Config) (methods.Source, error){
	MethodEbpf: func(cfg Config) (methods.Source, error) {
		e := cfg.Ebpf
		if e.Logger == nil {
			e.Logger = cfg.Logger
		}
		if e.Rules == nil {
			e.Rules = cfg.Rules
		}
		e.Sandbox = cfg.sandbox()
		return methodebpf.New(e), nil
	},
	MethodNetlink: func(cfg Config) (methods.Source, error) {
		n := cfg.Netlink
		if n.Logger == nil {
			n.Logger = cfg.Logger
		}
		return netlink.New(n), nil
	},
	MethodAudit: func(cfg Config) (methods.Source, error) {
		a := cfg.Audit
		if a.Logger == nil {
			a.Logger = cfg.Logger
		}
		return audit.New(a), nil
	},
	MethodProc: func(cfg Config) (methods.Source, error) {
		return methodproc.New(methodproc.Config{Interval: cfg.ProcInterval}), nil
	},
}
