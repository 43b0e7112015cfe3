// Command tail streams process events, as JSON lines or a readable table.
//
//	go run ./examples/tail                 # the best method this machine allows
//	go run ./examples/tail --method proc   # prefer a method (falls back below it)
//	go run ./examples/tail --json          # one JSON object per event
//
// As root it runs the best method available; without privilege it falls
// back (to netlink where the kernel lets an unprivileged process join the
// proc connector, else to /proc scanning) and says so on stderr, with the
// reason each better method was skipped.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/proctrack/proctrack/examples/internal/cli"
	"github.com/proctrack/proctrack/procmon"
)

func main() {
	method := flag.String("method", "", "preferred method: ebpf, netlink, audit or proc (default: the best available)")
	asJSON := flag.Bool("json", false, "print one JSON object per event")
	duration := flag.Duration("duration", 0, "stop after this long (default: until interrupted)")
	cli.Parse()
	cli.NotNegative("duration", *duration)
	ctx, stop := cli.Context(*duration)
	defer stop()
	if err := run(ctx, os.Stdout, os.Stderr, *method, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "tail:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out, status io.Writer, method string, asJSON bool) error {
	m, err := procmon.New(procmon.Config{Method: method})
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
	fmt.Fprintf(status, "monitoring with %s\n", m.Method())
	enc := json.NewEncoder(out)
	if !asJSON {
		fmt.Fprintf(out, "%-12s %-8s %-8s %-8s %-6s %s\n", "TIME", "EVENT", "PID", "PPID", "UID", "PROCESS")
	}
	// The loop ends when ctx is done: the monitor ends and closes Events.
	for ev := range m.Events() {
		if asJSON {
			if err := enc.Encode(jsonEvent(ev)); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintln(out, line(ev))
	}
	st := m.Stats()
	fmt.Fprintf(status, "%d events, %d dropped, %d lost, %d cached processes\n", st.Events, st.Dropped, st.Lost, st.CacheSize)
	return nil
}

// record is the JSON form of an event.
type record struct {
	Time    time.Time           `json:"time"`
	Kind    procmon.EventKind   `json:"kind"`
	Method  string              `json:"method"`
	PID     int                 `json:"pid"`
	Process *procmon.Serialized `json:"process,omitempty"`
	Exit    *int                `json:"exit_code,omitempty"`
	Creds   *procmon.CredChange `json:"creds,omitempty"`
	Comm    string              `json:"comm,omitempty"`
}

func jsonEvent(ev procmon.Event) record {
	r := record{Time: ev.Time, Kind: ev.Kind, Method: ev.Method, PID: ev.PID, Creds: ev.Creds, Comm: ev.Comm}
	if ev.Process != nil {
		r.Process = ev.Process.Serialize()
	}
	if ev.Kind == procmon.EventExit {
		r.Exit = &ev.ExitCode
	}
	return r
}

func line(ev procmon.Event) string {
	ppid, uid, what := 0, 0, ""
	if p := ev.Process; p != nil {
		ppid, uid = p.PPID, p.UID
		what = p.Path
		if what == "" || p.KernelThread {
			what = "[" + p.Comm + "]"
		}
		if len(p.Args) > 1 {
			what += " " + strings.Join(p.Args[1:], " ")
		}
		if p.Incomplete {
			what += " (exited before it could be read)"
		}
	}
	switch ev.Kind {
	case procmon.EventExit:
		what += fmt.Sprintf("  exit=%d", ev.ExitCode)
	case procmon.EventUID, procmon.EventGID:
		if c := ev.Creds; c != nil {
			what += fmt.Sprintf("  uid %d/%d -> %d/%d gid %d/%d -> %d/%d", c.Old.UID, c.Old.EUID, c.New.UID, c.New.EUID,
				c.Old.GID, c.Old.EGID, c.New.GID, c.New.EGID)
		}
	case procmon.EventComm:
		what += "  comm=" + ev.Comm
	}
	return fmt.Sprintf("%-12s %-8s %-8d %-8d %-6d %s", ev.Time.Format("15:04:05.000"), ev.Kind, ev.PID, ppid, uid, what)
}
