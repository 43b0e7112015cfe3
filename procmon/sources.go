package procmon

import (
	"fmt"

	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/methods/audit"
	methodproc "github.com/proctrack/proctrack/methods/proc"
)

// sources builds each method's Source from the monitor's Config.
var sources = map[string]func(Config) (methods.Source, error){
	MethodEbpf: func(Config) (methods.Source, error) {
		return nil, fmt.Errorf("%w: ebpf: this build has no eBPF method yet", methods.ErrUnavailable)
	},
	MethodNetlink: func(Config) (methods.Source, error) {
		return nil, fmt.Errorf("%w: netlink: not built yet", methods.ErrUnavailable)
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
