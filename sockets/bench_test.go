package sockets

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

// The benchmark fleet: 200 helper processes holding 25 sockets (5,000)
// and 50 other descriptors (10,000, /dev/null) each.
const (
	fleetProcs = 200
	fleetBatch = "batch 8 7 5 5 0 50" // 8+7+5+5 = 25 sockets, 50 /dev/null
)

type benchSock struct {
	s   Socket
	pid int
}

var (
	fleetOnce sync.Once
	fleet     []*helper
	fleetSock []benchSock
	fleetErr  string
)

func startFleet(b *testing.B) []benchSock {
	requireRoot(b)
	fleetOnce.Do(func() {
		for i := 0; i < fleetProcs; i++ {
			h := spawnHelper(b)
			fleet = append(fleet, h)
			h.do(fleetBatch)
		}
		pids := make(map[int]bool)
		for _, h := range fleet {
			pids[h.pid] = true
		}
		truth := procTruth(b)
		socks, err := New(Config{}).Sockets()
		if err != nil {
			fleetErr = err.Error()
			return
		}
		for _, s := range socks {
			for pid := range truth[s.Inode] {
				if pids[pid] && s.Inode != 0 {
					fleetSock = append(fleetSock, benchSock{s, pid})
				}
			}
		}
	})
	if fleetErr != "" {
		b.Fatal(fleetErr)
	}
	if len(fleetSock) < fleetProcs*25 {
		b.Fatalf("fleet holds %d sockets, want %d", len(fleetSock), fleetProcs*25)
	}
	return fleetSock
}

func stopFleet() {
	for _, h := range fleet {
		h.kill()
	}
	fleet = nil
}

// BenchmarkPIDOfInodeCold: an empty cache, one lookup: a full /proc scan,
// newest processes first, answered when the owner is seen (each fleet
// socket in turn, so the owner is anywhere in the fleet). The rest of the
// scan finishes in the background, outside the timed part (Forget waits
// for it).
func BenchmarkPIDOfInodeCold(b *testing.B) {
	socks := startFleet(b)
	r := New(Config{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r.Forget()
		b.StartTimer()
		s := socks[(i*37)%len(socks)]
		if pid, ok := r.PIDOfInode(s.s.Inode); !ok || pid != s.pid {
			b.Fatalf("inode %d: %d %v, want %d", s.s.Inode, pid, ok, s.pid)
		}
	}
}

// BenchmarkPIDOfInodeWarm: cached inodes, trusted within Revalidate: the
// owner's pid checked by the exit counter (no system call; "statx" without
// it: NoExitCounter), no readlink. Revalidate is longer than the run so
// that the figure does not depend on how fast the loop goes round the
// 5,000 sockets against the 100 ms window.
func BenchmarkPIDOfInodeWarm(b *testing.B) {
	b.Run("counter", func(b *testing.B) { benchWarm(b, Config{Revalidate: time.Hour}) })
	b.Run("statx", func(b *testing.B) { benchWarm(b, Config{Revalidate: time.Hour, NoExitCounter: true}) })
}

// BenchmarkGetPIDFromINodeWarm: the seed's GetPIDFromINode of cached
// inodes, each with its seed key, on a Default trusting descriptors for the
// run (as BenchmarkPIDOfInodeWarm) with the exit counter ("counter") and
// without it ("statx"), and on one with the default Config ("default":
// the counter, and one readlink per socket every 100 ms, which going round
// 5,000 sockets makes a large share of the figure).
func BenchmarkGetPIDFromINodeWarm(b *testing.B) {
	socks := startFleet(b)
	keys := make([]string, len(socks))
	for i, s := range socks {
		keys[i] = strconv.FormatUint(s.s.Inode, 10) + s.s.Local.String() + s.s.Remote.String()
	}
	prev := Default()
	defer SetDefault(prev)
	for _, bc := range []struct {
		name string
		cfg  Config
	}{
		{"counter", Config{Revalidate: time.Hour}},
		{"statx", Config{Revalidate: time.Hour, NoExitCounter: true}},
		{"default", Config{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := New(bc.cfg)
			defer r.Close()
			SetDefault(r)
			r.PIDOfInode(socks[0].s.Inode)
			r.waitScan()
			for i, s := range socks {
				GetPIDFromINode(int(s.s.Inode), keys[i])
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				j := i % len(socks)
				if pid := GetPIDFromINode(int(socks[j].s.Inode), keys[j]); pid != socks[j].pid {
					b.Fatalf("inode %d: %d, want %d", socks[j].s.Inode, pid, socks[j].pid)
				}
			}
		})
	}
}

// BenchmarkPIDOfInodeWarmValidated: cached inodes, every hit confirmed by
// one readlink (Revalidate < 0).
func BenchmarkPIDOfInodeWarmValidated(b *testing.B) {
	benchWarm(b, Config{Revalidate: -1})
}

func benchWarm(b *testing.B, cfg Config) {
	socks := startFleet(b)
	r := New(cfg)
	r.PIDOfInode(socks[0].s.Inode)
	r.waitScan() // the scan that answered early has filled the cache
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := socks[i%len(socks)]
		if pid, ok := r.PIDOfInode(s.s.Inode); !ok || pid != s.pid {
			b.Fatalf("inode %d: %d %v, want %d", s.s.Inode, pid, ok, s.pid)
		}
	}
	b.StopTimer()
	if st := r.Stats(); st.FullScans > 1+uint64(b.N)/1000 {
		b.Fatalf("warm lookups scanned: %+v", st)
	}
}

// BenchmarkFullScan: one whole /proc scan (Refresh), what a cold lookup
// cost before it answered early, and what it still costs in all.
func BenchmarkFullScan(b *testing.B) {
	startFleet(b)
	r := New(Config{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Refresh()
	}
}

// BenchmarkUnknownInodeRepeated: the same unknown inode over and over
// (the negative cache).
func BenchmarkUnknownInodeRepeated(b *testing.B) {
	startFleet(b)
	r := New(Config{})
	const bogus = 1<<32 - 11
	r.PIDOfInode(bogus)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, ok := r.PIDOfInode(bogus); ok {
			b.Fatal("found")
		}
	}
}

// BenchmarkThousandDistinct: from an empty cache, 1,000 distinct inodes in
// a row (the first miss's scan fills the cache for the other 999).
func BenchmarkThousandDistinct(b *testing.B) {
	socks := startFleet(b)
	r := New(Config{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Forget()
		for j := 0; j < 1000; j++ {
			s := socks[(i*1000+j*5)%len(socks)]
			if pid, ok := r.PIDOfInode(s.s.Inode); !ok || pid != s.pid {
				b.Fatalf("inode %d: %d %v, want %d", s.s.Inode, pid, ok, s.pid)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/1000-lookups")
}

// BenchmarkLookupWarm: connection -> process end to end (sock_diag exact
// query, cached inode, cached process).
func BenchmarkLookupWarm(b *testing.B) {
	socks := startFleet(b)
	r := New(Config{})
	for _, s := range socks[:1] {
		r.Lookup(s.s.Proto, s.s.Local, s.s.Remote)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := socks[i%len(socks)]
		p, _, err := r.Lookup(s.s.Proto, s.s.Local, s.s.Remote)
		if err != nil || p.ID != s.pid {
			b.Fatalf("%v -> %v: %v %v, want %d", s.s.Local, s.s.Remote, p, err, s.pid)
		}
	}
}

// BenchmarkLookupCold: connection -> process from empty caches (a full
// scan and a /proc read of the process each time), with a new Resolver
// each time. Another Resolver holds the BPF programs (the exit counter, the
// socket iterator), as in a process where one runs: the new ones share
// them instead of loading them (tens of ms each).
func BenchmarkLookupCold(b *testing.B) {
	socks := startFleet(b)
	keep := New(Config{})
	defer keep.Close()
	keep.exitCounter()
	keep.lister()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := New(Config{})
		s := socks[i%len(socks)]
		p, _, err := r.Lookup(s.s.Proto, s.s.Local, s.s.Remote)
		if err != nil || p.ID != s.pid {
			b.Fatalf("%v: %v %v", s.s.Local, p, err)
		}
		b.StopTimer()
		r.Close() // waits for the rest of the scan, untimed
		b.StartTimer()
	}
}
