package sockebpf

import (
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/proctrack/proctrack/cache"
	"github.com/proctrack/proctrack/procmon/process"
	"github.com/proctrack/proctrack/sockets"
)

// BenchmarkResolverLookupColdWithMap: connection -> process through a
// fresh Resolver configured with the Map, with an empty process cache too:
// one sock_diag query, one map read, no fd scan, but the owner's process
// and each of its ancestors read from /proc (the cache resolves parents).
func BenchmarkResolverLookupColdWithMap(b *testing.B) {
	benchCold(b, true, false)
}

// BenchmarkResolverLookupColdWithMapWarmAncestors: the same with a
// process cache that knows the owner's ancestors but not the owner, as in
// a running firewall: the socket caches are empty and the owner is read
// from /proc. (A new cache, holding this test process and its ancestors,
// is made outside the timer for each lookup.)
func BenchmarkResolverLookupColdWithMapWarmAncestors(b *testing.B) {
	benchCold(b, true, true)
}

// BenchmarkResolverLookupColdWithoutMap: the baseline of the previous one,
// without the Map (the owner is found by a /proc fd scan).
func BenchmarkResolverLookupColdWithoutMap(b *testing.B) {
	benchCold(b, false, true)
}

func benchCold(b *testing.B, withMap, sharedCache bool) {
	m := openMap(b)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	c, stop := startChild(b, "tcphold", ln.Addr().String())
	defer stop()
	srv := netip.MustParseAddrPort(ln.Addr().String())
	var scans uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var store *cache.EventsStore
		if sharedCache {
			b.StopTimer()
			store = cache.New(cache.Config{})
			if p := process.FindProcess(os.Getpid(), false); p == nil {
				b.Fatal("no /proc entry of the test process")
			} else {
				store.Put(p)
			}
			b.StartTimer()
		}
		cfg := sockets.Config{Cache: store}
		if withMap {
			cfg.SocketMap = m
		}
		r := sockets.New(cfg)
		p, _, err := r.Lookup(sockets.TCP, c.local, srv)
		if err != nil || p.ID != c.pid {
			b.Fatalf("%v %v", p, err)
		}
		st := r.Stats()
		scans += st.FullScans + st.PartialScans
		_ = r.Close()
	}
	b.ReportMetric(float64(scans)/float64(b.N), "scans/op")
	if withMap && scans != 0 {
		b.Fatalf("%d scans", scans)
	}
}

// BenchmarkMapLookup: one 5-tuple lookup in the kernel map.
func BenchmarkMapLookup(b *testing.B) {
	m := openMap(b)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	c := runChild(b, "tcp", ln.Addr().String())
	srv := netip.MustParseAddrPort(ln.Addr().String())
	for b.Loop() {
		if pid, _, ok := m.Lookup(sockets.TCP, c.local, srv); !ok || pid != c.pid {
			b.Fatal(pid, ok)
		}
	}
}
