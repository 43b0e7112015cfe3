package cache

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/proctrack/proctrack/procmon/process"
)

// templates reads the user-space processes of this machine, with their
// checksums, as models for synthetic ones.
func templates(tb testing.TB) []*process.Process {
	tb.Helper()
	pids, err := process.PIDs()
	if err != nil {
		tb.Fatal(err)
	}
	s := New(Config{})
	s.AddChecksumHash(process.HashSHA256)
	var out []*process.Process
	for _, pid := range pids {
		if p := process.ReadProcess(pid); p != nil && !p.KernelThread {
			s.ComputeChecksums(p)
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		tb.Fatal("no user-space process")
	}
	return out
}

// population returns n processes shaped like a desktop or server's: they
// run the binaries of the templates, in a tree of depth about seven, with
// the templates' arguments (every second one with a unique extra argument,
// as a session or worker id) and environments (every tenth with a unique
// extra variable), and the checksums of their binary.
func population(tpl []*process.Process, n int) []*process.Process {
	out := make([]*process.Process, n)
	for i := range out {
		t := tpl[i%len(tpl)]
		p := process.NewProcessEmpty(5_000_000+i, t.Comm)
		p.Starttime = int64(100_000 + i)
		if i > 0 {
			p.PPID = 5_000_000 + (i-1)/4
		}
		p.Path, p.RealPath, p.CWD, p.Root, p.Cgroup = t.Path, t.RealPath, t.CWD, t.Root, t.Cgroup
		p.Creds, p.NS, p.UID, p.ExeDev, p.ExeInode = t.Creds, t.NS, t.UID, t.ExeDev, t.ExeInode
		p.StartedAt = t.StartedAt
		p.Args = append([]string(nil), t.Args...)
		if i%2 == 0 {
			p.Args = append(p.Args, "--id="+strconv.Itoa(i))
		}
		p.Env = make(map[string]string, len(t.Env)+1)
		for k, v := range t.Env {
			p.Env[k] = v
		}
		if i%10 == 0 {
			p.Env["SESSION_ID"] = strconv.Itoa(i)
		}
		p.Checksums = map[string]string{}
		for k, v := range t.Checksums {
			p.Checksums[k] = v
		}
		out[i] = p
	}
	return out
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkMemory10k caches 10,000 processes and reports the heap they cost
// in all (processes, strings, indexes) and per entry.
func BenchmarkMemory10k(b *testing.B) {
	tpl := templates(b)
	const n = 10_000
	var total uint64
	for b.Loop() {
		before := heap()
		s := New(Config{MaxEntries: 2 * n})
		for _, p := range population(tpl, n) {
			s.Add(p)
		}
		after := heap()
		if s.Len() != n {
			b.Fatalf("Len %d", s.Len())
		}
		total = after - before
		runtime.KeepAlive(s)
	}
	b.ReportMetric(float64(total)/(1<<20), "MB/10k")
	b.ReportMetric(float64(total)/n, "B/entry")
}

// BenchmarkMemoryNaive10k is the same population held in a plain map, the
// obvious design, for comparison.
func BenchmarkMemoryNaive10k(b *testing.B) {
	tpl := templates(b)
	const n = 10_000
	var total uint64
	for b.Loop() {
		before := heap()
		m := make(map[process.Key]*process.Process)
		for _, p := range population(tpl, n) {
			m[p.Key()] = p
		}
		total = heap() - before
		runtime.KeepAlive(m)
	}
	b.ReportMetric(float64(total)/(1<<20), "MB/10k")
	b.ReportMetric(float64(total)/n, "B/entry")
}

// BenchmarkAdd adds new processes (with their interning and ancestry from
// the cache) to a store of up to 10,000.
func BenchmarkAdd(b *testing.B) {
	tpl := templates(b)
	pop := population(tpl, 10_000)
	s := New(Config{MaxEntries: 1 << 20})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(pop) {
			b.StopTimer()
			pop, i = population(tpl, 10_000), 0
			s = New(Config{MaxEntries: 1 << 20})
			b.StartTimer()
		}
		s.Add(pop[i])
		i++
	}
}

// BenchmarkIsInStoreByPID looks a live cached process up by pid: with the
// kernel's exit counter (a started store: no system call while the pid's
// slot is unchanged), confirmed by one statx of /proc/<pid> (no counter:
// a store not started, or NoExitCounter), and with the directory's inode
// unknown so that /proc/<pid>/stat is read (the first lookup after Add, or
// after the kernel remade the inode).
func BenchmarkIsInStoreByPID(b *testing.B) {
	for _, bc := range []struct {
		name            string
		counter, forget bool
	}{{"counter", true, false}, {"confirmed", false, false}, {"stat", false, true}} {
		b.Run(bc.name, func(b *testing.B) {
			s := New(Config{})
			if bc.counter {
				if err := s.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				if s.counter.Load() == nil {
					b.Skip("the exit counter does not run here")
				}
			}
			self := process.FindProcess(os.Getpid(), false)
			s.Add(self)
			e := s.byKey[self.Key()]
			b.ReportAllocs()
			for b.Loop() {
				if bc.forget {
					e.ident.Store(0)
				}
				if _, ok := s.IsInStoreByPID(self.ID); !ok {
					b.Fatal("not found")
				}
			}
		})
	}
}
