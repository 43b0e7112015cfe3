// Command guard loads a rule policy (seed 000's YAML format), runs the
// process monitor and prints the events that match a rule.
//
//	go run ./examples/guard -config examples/guard/policy.yaml
//	go run ./examples/guard -config policy.yaml -method audit -json
//
// -config is required: guard has no default policy, since a path relative
// to the working directory would find the example's policy from one
// directory only. Bad input — no -config, an unknown -method, an argument
// that is not a flag, a policy file that is missing, over 4 MiB or wrong
// (its error gives the line and column) — is a one-line error on stderr
// and exit status 2, as for the flag package's own errors; a monitor that
// cannot start exits with status 1.
//
// Each match prints the rule, the hook, the process and its credentials,
// and for a sandboxed hook the verdict:
//
//	RootShell (bprm_check) pid=4242 ppid=4200 path=/usr/bin/bash uid=0 euid=0 gid=0 egid=0 ecaps=0x1ffffffffff method=ebpf
//	NoExecFromTmp (bprm_check) DENIED pid=4250 ppid=4200 path=/tmp/x uid=1000 euid=1000 gid=1000 egid=1000 ecaps=0x0 method=ebpf
//
// policy.yaml, next to this file, reports root shells, unexpected switches
// to uid 0, user namespaces created without CAP_SYS_ADMIN and programs run
// from temporary directories; it denies nothing. sandbox.yaml denies execs
// from temporary directories: it needs the eBPF LSM tier (Linux >= 6.2 with
// bpf in the LSM list), and elsewhere guard stops at once saying why.
//
// The monitor matched the rules (in the kernel on the LSM tier) when it
// received each event; the details printed are read from the event's
// process when guard prints them.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/proctrack/proctrack/examples/internal/cli"
	"github.com/proctrack/proctrack/procmon"
	"github.com/proctrack/proctrack/rules"
)

func main() {
	config := flag.String("config", "", "the policy file (YAML), required: examples/guard/policy.yaml reports, examples/guard/sandbox.yaml denies")
	method := flag.String("method", "", "preferred method, over the policy's: ebpf, netlink, audit or proc")
	asJSON := flag.Bool("json", false, "print one JSON object per match")
	duration := flag.Duration("duration", 0, "stop after this long (default: until interrupted)")
	cli.Parse()
	cli.NotNegative("duration", *duration)
	policy, err := load(*config, *method, flag.Args())
	if err != nil {
		cli.Fail("%v", err)
	}
	ctx, stop := cli.Context(*duration)
	defer stop()
	if err := run(ctx, os.Stdout, os.Stderr, policy, *method, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "guard:", err)
		os.Exit(1)
	}
}

// Match is one matched event, as -json prints it.
type Match struct {
	Time   time.Time `json:"time"`
	Rule   string    `json:"rule"`
	Hook   string    `json:"hook"`
	Method string    `json:"method"`
	PID    int       `json:"pid"`
	PPID   int       `json:"ppid"`
	Path   string    `json:"path"`
	Parent string    `json:"parent,omitempty"`
	UID    uint32    `json:"uid"`
	EUID   uint32    `json:"euid"`
	GID    uint32    `json:"gid"`
	EGID   uint32    `json:"egid"`
	ECaps  []string  `json:"ecaps"`
	// Verdict is "allowed" or "denied" on a sandboxed hook.
	Verdict string `json:"verdict,omitempty"`
	// InKernel says the kernel evaluated the rule (eBPF LSM tier).
	InKernel bool `json:"in_kernel,omitempty"`
}

// load checks the command line (the -config and -method values and the
// arguments left after the flags) and loads the policy. Its errors are
// usage errors.
func load(configPath, method string, args []string) (*procmon.FileConfig, error) {
	switch {
	case configPath == "":
		return nil, errors.New("-config is required: the policy file, e.g. -config examples/guard/policy.yaml")
	case method != "" && !slices.Contains(procmon.Methods, method):
		return nil, fmt.Errorf("-method %q: expected one of %s", method, strings.Join(procmon.Methods, ", "))
	case len(args) > 0:
		return nil, fmt.Errorf("unexpected argument %q: guard takes flags only (-config, -method, -json, -duration)", args[0])
	}
	return procmon.LoadFileConfig(configPath)
}

// run monitors with the policy until ctx ends and prints matches to out;
// status lines go to status.
func run(ctx context.Context, out, status io.Writer, policy *procmon.FileConfig, method string, asJSON bool) error {
	cfg := policy.MonitorConfig()
	if method != "" {
		cfg.Method = method
	}
	m, err := procmon.New(cfg)
	if err != nil {
		return err
	}
	if err := m.Start(ctx); err != nil {
		return err
	}
	defer m.Close()
	for _, s := range m.Status().Methods {
		if s.State == "skipped" {
			fmt.Fprintf(status, "method %s skipped: %s\n", s.Method, s.Reason)
		}
	}
	set := policy.Rules()
	for _, h := range rules.Hooks {
		for _, r := range set.Rules(h) {
			fmt.Fprintf(status, "rule %s\n", r)
		}
	}
	fmt.Fprintf(status, "monitoring with %s, %d rules\n", m.Method(), set.Len())
	enc := json.NewEncoder(out)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-m.Events():
			if !ok {
				return nil
			}
			if len(ev.Matched) == 0 {
				continue
			}
			// The monitor matched the rules when it received the event;
			// the details printed are read now.
			hook, in, _ := rules.FromEvent(&ev)
			if ev.Bprm != nil {
				in.Path, in.Binary = ev.Bprm.Path, ev.Bprm.Path // a denied exec did not change the process
			}
			verdict := ""
			if ev.Verdict == procmon.VerdictDenied {
				verdict = " DENIED"
			}
			for _, name := range ev.Matched {
				mt := match(&ev, name, hook, &in)
				if asJSON {
					if err := enc.Encode(mt); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(out, "%s (%s)%s pid=%d ppid=%d path=%s uid=%d euid=%d gid=%d egid=%d ecaps=%#x method=%s\n",
					mt.Rule, mt.Hook, verdict, mt.PID, mt.PPID, mt.Path, mt.UID, mt.EUID, mt.GID, mt.EGID, uint64(in.ECaps), mt.Method)
			}
		}
	}
}

// match describes a matched event.
func match(ev *procmon.Event, rule, hook string, in *rules.Input) Match {
	mt := Match{Time: ev.Time, Rule: rule, Hook: hook, Method: ev.Method, PID: ev.PID,
		Path: in.Binary, Parent: in.ParentBinary, UID: in.UID, EUID: in.EUID, GID: in.GID, EGID: in.EGID,
		ECaps: in.ECaps.Names(), Verdict: ev.Verdict.String(), InKernel: ev.MatchedInKernel}
	if p := ev.Process; p != nil {
		mt.PPID = p.PPID
	}
	return mt
}
