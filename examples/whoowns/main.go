// Command whoowns lists every socket on the machine with the process that
// owns it, like `ss -tunap` or `lsof -i`, and can watch new ones appear.
//
//	go run ./examples/whoowns                  # every TCP, UDP, UDP-Lite, raw and ICMP socket
//	go run ./examples/whoowns --watch          # then print new sockets every second
//	go run ./examples/whoowns --watch --interval 200ms --duration 10s
//
// Sockets come from sock_diag dumps (raw and ICMP from /proc/net); owners
// from the sockets package's inode lookup (one /proc scan fills its cache).
// Without root, other users' sockets show no owner.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/proctrack/proctrack/examples/internal/cli"
	"github.com/proctrack/proctrack/sockets"
)

func main() {
	watch := flag.Bool("watch", false, "after the table, print new sockets as they appear")
	interval := flag.Duration("interval", time.Second, "how often --watch polls (at least 10ms)")
	duration := flag.Duration("duration", 0, "stop --watch after this long (0: until interrupted)")
	cli.Parse()
	cli.AtLeast("interval", *interval, 10*time.Millisecond) // a tighter poll only burns CPU
	cli.NotNegative("duration", *duration)
	ctx, stop := cli.Context(*duration)
	defer stop()
	r := newResolver(*interval)
	defer r.Close()
	if err := run(ctx, os.Stdout, r, *watch, *interval); err != nil {
		fmt.Fprintln(os.Stderr, "whoowns:", err)
		os.Exit(1)
	}
}

// newResolver returns a Resolver that scans /proc at most once per half
// interval: sockets no process holds (kernel sockets, another pid
// namespace's) would otherwise cost a scan each.
func newResolver(interval time.Duration) *sockets.Resolver {
	return sockets.New(sockets.Config{MinScanInterval: interval / 2, NegativeTTL: interval / 2})
}

// sockKey identifies a socket across polls.
type sockKey struct {
	proto         sockets.Proto
	local, remote string
	inode         uint64
}

func keyOf(s sockets.Socket) sockKey {
	return sockKey{s.Proto, s.Local.String(), s.Remote.String(), s.Inode}
}

// run prints the table, then with watch the new sockets every interval
// until ctx ends.
func run(ctx context.Context, w io.Writer, r *sockets.Resolver, watch bool, interval time.Duration) error {
	socks, err := r.Sockets()
	if err != nil {
		return err
	}
	sort.Slice(socks, func(i, j int) bool { return less(socks[i], socks[j]) })
	r.Refresh()
	fmt.Fprintf(w, "%-8s %-46s %-46s %-11s %-8s %s\n", "PROTO", "LOCAL", "REMOTE", "STATE", "PID", "PROCESS")
	seen := make(map[sockKey]bool, len(socks))
	for _, s := range socks {
		seen[keyOf(s)] = true
		fmt.Fprintln(w, line(r, s))
	}
	if !watch {
		return nil
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		socks, err := r.Sockets()
		if err != nil {
			return err
		}
		now := make(map[sockKey]bool, len(socks))
		var fresh []sockets.Socket
		for _, s := range socks {
			k := keyOf(s)
			now[k] = true
			if !seen[k] {
				fresh = append(fresh, s)
			}
		}
		seen = now
		if len(fresh) > 0 {
			r.Refresh() // one scan names every new socket
		}
		for _, s := range fresh {
			fmt.Fprintln(w, line(r, s))
		}
	}
}

func less(a, b sockets.Socket) bool {
	if a.Proto != b.Proto {
		return a.Proto < b.Proto
	}
	if a.Local.Addr().Is4() != b.Local.Addr().Is4() {
		return a.Local.Addr().Is4()
	}
	if c := a.Local.Compare(b.Local); c != 0 {
		return c < 0
	}
	return a.Remote.Compare(b.Remote) < 0
}

// line formats one socket with its owner ("-" when none is found: kernel
// sockets, TIME-WAIT, other users' sockets without root).
func line(r *sockets.Resolver, s sockets.Socket) string {
	proto := s.Proto.String()
	if !s.Local.Addr().Is4() {
		proto += "6"
	}
	pid, name := "-", "-"
	if s.Inode != 0 {
		if p, ok := r.Owner(s.Inode); ok {
			pid = fmt.Sprint(p.ID)
			name = p.Comm
			if p.Path != "" {
				name = filepath.Base(p.Path)
			}
		}
	}
	return fmt.Sprintf("%-8s %-46s %-46s %-11s %-8s %s", proto, s.Local, s.Remote, s.State, pid, name)
}
