// Command guard loads a rule policy (seed 000's YAML format), runs the
// process monitor and prints the events that match a rule.
//
//	go run ./examples/guard -config examples/guard/policy.yaml
//	go run ./examples/guard -config policy.yaml -method audit -json
//
// Each match prints the rule, the hook, the process and its credentials:
//
//	RootShell (bprm_check) pid=4242 ppid=4200 path=/usr/bin/bash uid=0 euid=0 gid=0 egid=0 ecaps=0x1ffffffffff method=ebpf
//
// policy.yaml, next to this file, reports root shells, unexpected switches
// to uid 0, user namespaces created without CAP_SYS_ADMIN and programs run
// from temporary directories. Rules only report: nothing is denied (sandbox
// blocks are validated, and enforcement comes with the eBPF LSM tier).
//
// Rules are evaluated here, on the events the monitor delivers: the
// credentials and binary are read from the event's process as the consumer
// sees it, which a later event of the same process may already have
// changed. Evaluation inside the monitor, when each event is received, is
// exact; see the rules package.
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
			for _, name := range ev.Matched {
				mt := match(&ev, name, hook, &in)
				if asJSON {
					if err := enc.Encode(mt); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(out, "%s (%s) pid=%d ppid=%d path=%s uid=%d euid=%d gid=%d egid=%d ecaps=%#x method=%s\n",
					mt.Rule, mt.Hook, mt.PID, mt.PPID, mt.Path, mt.UID, mt.EUID, mt.GID, mt.EGID, uint64(in.ECaps), mt.Method)
			}
		}
	}
}

// match describes a matched event.
func match(ev *procmon.Event, rule, hook string, in *rules.Input) Match {
	mt := Match{Time: ev.Time, Rule: rule, Hook: hook, Method: ev.Method, PID: ev.PID,
		Path: in.Binary, Parent: in.ParentBinary, UID: in.UID, EUID: in.EUID, GID: in.GID, EGID: in.EGID,
		ECaps: in.ECaps.Names()}
	if p := ev.Process; p != nil {
		p.RLock()
		mt.PPID = p.PPID
		p.RUnlock()
	}
	return mt
}
