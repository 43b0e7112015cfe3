package cache

import (
	"maps"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/procmon/process"
)

// TestArgsEnvBoundedByConfig: whatever source gave a process, the store
// keeps at most its bounds, flags what it cut, counts each process once,
// and a forked child sharing its parent's lists keeps the parent's flags.
func TestArgsEnvBoundedByConfig(t *testing.T) {
	s := New(Config{MaxArgsBytes: 100, MaxEnvBytes: 64})
	p := synthetic(1, "/usr/bin/big", strings.Repeat("a", 200))
	p.Env = map[string]string{"A": strings.Repeat("1", 40), "B": strings.Repeat("2", 40), "C": "3"}
	s.Add(p)
	it, _ := s.Get(p.Key())
	q := it.Proc
	if !q.ArgsTruncated || len(q.Args) != 2 || len(q.Args[0])+len(q.Args[1])+2 > 100 || !strings.HasPrefix(p.Args[1], "a") {
		t.Errorf("args %q (truncated %v), want the path and a cut first argument", q.Args, q.ArgsTruncated)
	}
	if want := map[string]string{"A": strings.Repeat("1", 40), "C": "3"}; !q.EnvTruncated || !maps.Equal(q.Env, want) {
		t.Errorf("env %v (truncated %v), want %v", q.Env, q.EnvTruncated, want)
	}
	child := synthetic(2, "/usr/bin/big")
	child.PPID, child.Args, child.Env = p.ID, q.Args, q.Env // a fork: the parent's lists
	s.Add(child)
	if !child.ArgsTruncated || !child.EnvTruncated {
		t.Errorf("a forked child sharing its parent's cut lists is not flagged: %v %v", child.ArgsTruncated, child.EnvTruncated)
	}
	// The parent refreshed with the same cut image: counted once.
	again := synthetic(1, "/usr/bin/big", strings.Repeat("a", 200))
	again.Env = map[string]string{"A": strings.Repeat("1", 40), "B": strings.Repeat("2", 40)}
	s.Add(again)
	if st := s.Stats(); st.ArgsTruncated != 2 || st.EnvTruncated != 2 {
		t.Errorf("Stats ArgsTruncated %d EnvTruncated %d, want 2 2 (the parent and the child, once each)", st.ArgsTruncated, st.EnvTruncated)
	}
	// An exec to a small image clears the flags.
	small := synthetic(1, "/usr/bin/small", "x")
	small.Env = map[string]string{"A": "1"}
	s.Add(small)
	it, _ = s.Get(p.Key()) // the cache's new version: q keeps its moment
	q = it.Proc
	if q.ArgsTruncated || q.EnvTruncated || q.Path != "/usr/bin/small" {
		t.Errorf("after an exec to a small image: %s truncated %v %v", q.Path, q.ArgsTruncated, q.EnvTruncated)
	}
}

// TestEnvHeapBounded (issue 18): processes with about 2 MiB of unique
// environment each cost the cache what the bounds allow, not what they
// hold: the heap grows by less than twice the environment bound per
// process (and a little for the rest), a fifteenth of their environments.
func TestEnvHeapBounded(t *testing.T) {
	requireRoot(t)
	const n, size = 16, 1900 << 10
	var pids []int
	for i := range n {
		cmd := exec.Command("/bin/sleep", "60")
		cmd.Env = proctest.BigEnv("heap"+strconv.Itoa(i), size)
		pids = append(pids, start(t, cmd, "sleep").PID)
	}
	s := New(Config{})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, pid := range pids {
		s.Add(find(t, pid))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if limit := int64(n*2*process.DefaultMaxEnvBytes + 512<<10); grew > limit {
		t.Errorf("%d processes with %d KiB of environment each grew the heap by %d KiB, more than %d KiB", n, size>>10, grew>>10, limit>>10)
	}
	if st := s.Stats(); st.EnvTruncated != n {
		t.Errorf("EnvTruncated %d, want %d", st.EnvTruncated, n)
	}
	for _, pid := range pids {
		it, ok := s.IsInStoreByPID(pid)
		if !ok || !it.Proc.EnvTruncated || len(it.Proc.Env) == 0 {
			t.Errorf("pid %d: %+v %v", pid, it, ok)
		}
	}
	t.Logf("%d processes with %d KiB of environment each: heap grew by %d KiB", n, size>>10, grew>>10)
	runtime.KeepAlive(s)
}
