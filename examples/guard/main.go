// Command guard loads a rule policy (seed 000's YAML format), runs the
// process monitor and prints the events that match a rule.
//
//	go run ./examples/guard -config examples/guard/policy.yaml
//	go run ./examples/guard -config policy.yaml -method audit -json
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
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/proctrack/proctrack/procmon"
	"github.com/proctrack/proctrack/rules"
)

func main() {
	config := flag.String("config", "policy.yaml", "the policy file (YAML)")
	method := flag.String("method", "", "preferred method, over the policy's: ebpf, netlink, audit or proc")
	asJSON := flag.Bool("json", false, "print one JSON object per match")
	duration := flag.Duration("duration", 0, "stop after this long (default: until interrupted)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if err := run(ctx, os.Stdout, os.Stderr, *config, *method, *asJSON); err != nil {
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

// run loads the policy, monitors until ctx ends and prints matches to out;
// status lines go to status.
func run(ctx context.Context, out, status io.Writer, configPath, method string, asJSON bool) error {
	policy, err := procmon.LoadFileConfig(configPath)
	if err != nil {
		return err
	}
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
