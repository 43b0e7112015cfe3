package sockets

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
)

// TestResolverCycles starts and stops 200 Resolvers that each opened their
// sock_diag socket, the exit counter and the socket iterator, ending every other one by its context: no goroutine or
// descriptor is left (the end of the context left the socket open), and
// every later call fails or finds nothing (a Lookup after Close reopened
// the socket).
func TestResolverCycles(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	local := netip.MustParseAddrPort(l.Addr().String())
	proctest.CheckCycles(t, 200, func(i int) {
		r := New(Config{CleanPeriod: time.Millisecond})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		// A dump through sock_diag opens the Resolver's socket (a Lookup
		// would too, and scan /proc for the owner).
		socks, err := r.Sockets()
		if err != nil || !slices.ContainsFunc(socks, func(s Socket) bool { return s.Local == local }) {
			t.Fatalf("the listener is not among %d sockets: %v", len(socks), err)
		}
		// What the first lookup opens (the exit counter) and the first
		// full scan (the socket iterator), where they load; every tenth
		// cycle, as loading a BPF program takes tens of ms.
		if i%10 == 0 && os.Geteuid() == 0 && (r.exitCounter() == nil || r.lister() == nil) {
			t.Fatal("no exit counter or socket iterator as root")
		}
		if i%2 == 0 {
			cancel()
			<-r.run.Done()
		} else if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.Lookup(TCP, local, netip.AddrPort{}); !errors.Is(err, ErrClosed) {
			t.Fatalf("Lookup after the end: %v, want ErrClosed", err)
		}
		if _, err := r.Sockets(); !errors.Is(err, ErrClosed) {
			t.Fatalf("Sockets after the end: %v, want ErrClosed", err)
		}
		if _, ok := r.PIDOfInode(1); ok {
			t.Fatal("PIDOfInode found an owner after the end")
		}
		if r.counter.Load() != nil || r.exitCounter() != nil || r.lister() != nil {
			t.Fatal("the exit counter or the socket iterator is held after the end")
		}
		if err := r.Start(context.Background()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Start after the end: %v, want ErrClosed", err)
		}
		if i%2 == 1 {
			if err := r.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		} // else: the end of the context alone released everything
	})
}

// TestDefaultReplacedWhenClosed: closing the package's Resolver (as
// CacheCleanerTask's end does) leaves a working one on the same cache.
func TestDefaultReplacedWhenClosed(t *testing.T) {
	old := Default()
	r := New(Config{})
	SetDefault(r)
	defer SetDefault(old)
	_ = r.Close()
	d := Default()
	if d == r || d.Cache() != r.Cache() {
		t.Fatalf("Default after Close: same %v, same cache %v", d == r, d.Cache() == r.Cache())
	}
	if _, err := d.Sockets(); err != nil {
		t.Errorf("Sockets on the new default: %v", err)
	}
}
