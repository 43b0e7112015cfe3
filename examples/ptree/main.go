// Command ptree prints processes as a tree with their credentials: every
// process on the machine, or one process and its ancestors.
//
//	go run ./examples/ptree            # the whole machine
//	go run ./examples/ptree -pid 1234  # one process and its ancestry
//	go run ./examples/ptree -json      # one JSON object per process
//
// Without root, other users' paths and environments are not readable; they
// are printed empty.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/proctrack/proctrack/examples/internal/cli"
	"github.com/proctrack/proctrack/procmon"
)

func main() {
	pid := flag.Int("pid", 0, "print this process and its ancestors only")
	asJSON := flag.Bool("json", false, "print one JSON object per process")
	cli.Parse()
	if *pid < 0 {
		cli.Fail("-pid %d: a process id is more than zero (0: every process)", *pid)
	}
	if err := run(os.Stdout, *pid, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "ptree:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, pid int, asJSON bool) error {
	procs, err := collect(pid)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(w)
		for _, p := range procs {
			if err := enc.Encode(p.Serialize()); err != nil {
				return err
			}
		}
		return nil
	}
	children := map[int][]*procmon.Process{}
	byPID := map[int]bool{}
	for _, p := range procs {
		byPID[p.ID] = true
	}
	var roots []*procmon.Process
	for _, p := range procs {
		if byPID[p.PPID] && p.PPID != p.ID {
			children[p.PPID] = append(children[p.PPID], p)
		} else {
			roots = append(roots, p)
		}
	}
	fmt.Fprintf(w, "%-8s %-8s %-23s %-12s %s\n", "PID", "PPID", "UID/EUID/SUID/FSUID", "CONTAINER", "PROCESS")
	var walk func(p *procmon.Process, depth int)
	walk = func(p *procmon.Process, depth int) {
		fmt.Fprintln(w, line(p, depth))
		for _, c := range children[p.ID] {
			walk(c, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	return nil
}

// collect reads every process, or pid and its ancestors (oldest first).
func collect(pid int) ([]*procmon.Process, error) {
	if pid > 0 {
		var chain []*procmon.Process
		for cur := pid; cur > 0 && len(chain) < 256; {
			p := procmon.FindProcess(cur, false)
			if p == nil {
				if len(chain) == 0 {
					return nil, fmt.Errorf("no process %d", pid)
				}
				break
			}
			chain = append(chain, p)
			cur = p.PPID
		}
		slices.Reverse(chain)
		return chain, nil
	}
	pids, err := procmon.PIDs()
	if err != nil {
		return nil, err
	}
	procs := make([]*procmon.Process, 0, len(pids))
	for _, id := range pids {
		if p := procmon.FindProcess(id, false); p != nil { // nil: exited meanwhile
			procs = append(procs, p)
		}
	}
	return procs, nil
}

func line(p *procmon.Process, depth int) string {
	ids := "?"               // exited before its credentials were read
	c, ok := p.Credentials() // read on first use
	if ok {
		ids = fmt.Sprintf("%d/%d/%d/%d", c.UID, c.EUID, c.SUID, c.FSUID)
	}
	container := "-"
	if _, id, _ := p.CgroupInfo(); id != "" { // read on first use
		container = id[:12]
	}
	name := p.Path
	if name == "" || p.KernelThread {
		name = "[" + p.Comm + "]"
	}
	if len(p.Args) > 1 {
		args := strings.Join(p.Args[1:], " ")
		if len(args) > 100 {
			args = args[:100] + "..."
		}
		name += " " + args
	}
	var extra []string
	if eff := c.CapEffective; eff != 0 && eff != c.CapBounding {
		extra = append(extra, "caps="+strings.ToLower(strings.ReplaceAll(eff.String(), "CAP_", "")))
	} else if eff != 0 {
		extra = append(extra, "caps=all")
	}
	if c.NoNewPrivs {
		extra = append(extra, "no_new_privs")
	}
	if userNS := p.Namespaces().User; userNS != procmon.InitUserNS && userNS != 0 {
		extra = append(extra, fmt.Sprintf("userns=%d", userNS))
	}
	if p.Fileless {
		extra = append(extra, "memfd")
	} else if p.ExeDeleted {
		extra = append(extra, "deleted")
	}
	if len(extra) > 0 {
		name += "  {" + strings.Join(extra, " ") + "}"
	}
	return fmt.Sprintf("%-8d %-8d %-23s %-12s %s%s", p.ID, p.PPID, ids, container, strings.Repeat("  ", depth), name)
}
