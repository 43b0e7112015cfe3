package cache

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/procmon/process"
)

func TestAddLookupAncestry(t *testing.T) {
	s := New(Config{})
	c := start(t, exec.Command("/bin/sh", "-c", "exec /bin/sleep 60"), "sleep")
	s.Add(find(t, c.PID))
	item, found := s.IsInStoreByPID(c.PID)
	if !found {
		t.Fatal("not found")
	}
	p := item.Proc
	if p.Parent == nil || p.Parent.ID != os.Getpid() {
		t.Fatalf("Parent %+v, want the test process", p.Parent)
	}
	if len(p.Tree) == 0 || p.Tree[0].Value != uint32(os.Getpid()) || p.Tree[len(p.Tree)-1].Value != 1 && p.Tree[len(p.Tree)-1].Value != uint32(os.Getpid()) {
		t.Errorf("Tree %v", treeOf(p))
	}
	reads := s.Stats().AncestorReads
	if reads == 0 {
		t.Error("the ancestors were not read from /proc the first time")
	}
	// A sibling: every ancestor is cached now.
	c2 := start(t, exec.Command("/bin/sleep", "60"), "sleep")
	s.Add(find(t, c2.PID))
	if got := s.Stats().AncestorReads; got != reads {
		t.Errorf("sibling's ancestors read from /proc again: %d reads, had %d", got, reads)
	}
	item2, _ := s.IsInStoreByPID(c2.PID)
	if item2.Proc.Parent != p.Parent {
		t.Error("siblings do not share the cached parent")
	}
	if item2.Proc.Tree[0] != p.Tree[0] {
		t.Error("siblings do not share the parent's tree item")
	}
}

func treeOf(p *process.Process) []string {
	var out []string
	for _, it := range p.Tree {
		out = append(out, strconv.Itoa(int(it.Value))+":"+it.Key)
	}
	return out
}

func TestExecInPlace(t *testing.T) {
	s := New(Config{})
	c := start(t, exec.Command("/bin/sh", "-c", "read x; exec /bin/sleep 60"), "")
	before := find(t, c.PID)
	s.Add(before)
	shPath := before.Path
	parent := before.Parent
	if _, err := c.Stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	proctest.WaitComm(t, c.PID, "sleep")
	after := find(t, c.PID)
	if after.Key() != before.Key() {
		t.Fatalf("exec changed the key: %s -> %s", before.Key(), after.Key())
	}
	item, needsUpdate, found := s.IsInStore(c.PID, after)
	if !found || !needsUpdate {
		t.Fatalf("IsInStore after exec: found %v needsUpdate %v", found, needsUpdate)
	}
	s.Update(item.Proc, after)
	item, found = s.Get(after.Key())
	sleep, _ := filepath.EvalSymlinks("/bin/sleep")
	if !found || item.Proc.Path != sleep || item.Execs != 1 {
		t.Fatalf("after exec: %+v", item)
	}
	if len(item.PrevPaths) != 1 || item.PrevPaths[0] != shPath {
		t.Errorf("PrevPaths %v, want [%s]", item.PrevPaths, shPath)
	}
	if item.Proc.Key() != before.Key() || item.Proc.Parent != parent || len(item.Proc.Tree) != len(before.Tree) {
		t.Error("exec replaced the entry instead of its image")
	}
	// The version cached before the exec is a moment of the process, and
	// stays what it was.
	if item.Proc == before || before.Path != shPath {
		t.Errorf("the exec changed the earlier version: %q", before.Path)
	}
	if s.Len() != len(before.Tree)+1 {
		t.Errorf("Len %d: the exec added an entry (tree %v)", s.Len(), treeOf(before))
	}
}

func TestExitGraceRemoval(t *testing.T) {
	s := New(Config{GracePeriod: 100 * time.Millisecond})
	c := start(t, exec.Command("/bin/sleep", "60"), "sleep")
	s.Add(find(t, c.PID))
	n := s.Len()
	c.Stop()
	s.Delete(c.PID)
	item, found := s.IsInStoreByPID(c.PID)
	if !found || item.Exited == 0 {
		t.Fatalf("exited process not findable during the grace period: %+v %v", item, found)
	}
	s.DeleteOldItems()
	if s.Len() != n {
		t.Fatal("removed before the grace period ended")
	}
	time.Sleep(150 * time.Millisecond)
	if _, found := s.IsInStoreByPID(c.PID); found {
		t.Error("found after the grace period")
	}
	s.DeleteOldItems()
	if s.Len() != n-1 || s.Stats().Removed != 1 {
		t.Errorf("Len %d Removed %d, want %d 1", s.Len(), s.Stats().Removed, n-1)
	}
}

// TestPIDReuseWithoutEvents (issue 18): a cached process is killed and its
// pid taken by a new process at once, with no event telling the store;
// IsInStoreByPID never returns the old process, at any delay after the
// reuse: confirmed by statx (a store not started, or NoExitCounter) and by
// the kernel's exit counter (a started store; issue 15).
func TestPIDReuseWithoutEvents(t *testing.T) {
	requireRoot(t)
	for _, mode := range []string{"statx", "no-counter", "counter"} {
		t.Run(mode, func(t *testing.T) {
			for _, delay := range []time.Duration{0, 20 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond} {
				s := New(Config{NoExitCounter: mode == "no-counter"})
				if mode != "statx" {
					if err := s.Start(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
				counted := s.counter.Load() != nil
				if counted != (mode == "counter") {
					t.Fatalf("exit counter held: %v", counted)
				}
				c := start(t, exec.Command("/bin/sleep", "60"), "sleep")
				old := find(t, c.PID)
				s.Add(old)
				for range 2 {
					if item, found := s.IsInStoreByPID(c.PID); !found || item.Proc != old {
						t.Fatalf("live process not found by pid: %+v %v", item, found)
					}
				}
				if counted && s.byKey[old.Key()].gen.Load() == 0 {
					t.Fatal("the exit counter's value was not recorded")
				}
				c.Stop()
				time.Sleep(20 * time.Millisecond) // a clock tick: the new process's Key differs (see process.Key)
				fresh := proctest.ForcePID(t, c.PID, func() *exec.Cmd { return exec.Command("/bin/cat") })
				time.Sleep(delay)
				if item, found := s.IsInStoreByPID(c.PID); found {
					t.Errorf("%v after the reuse: pid %d answered with the old process %s (now %s)", delay, c.PID, item.Proc.Key(), find(t, fresh.PID).Key())
				}
				if st := s.Stats(); st.PIDReuses != 1 {
					t.Errorf("%v after the reuse: PIDReuses %d, want 1", delay, st.PIDReuses)
				}
				fresh.Stop()
				_ = s.Close()
			}
		})
	}
}

// TestExitNoticedWithoutEvents: with no event source, lookups and the
// garbage collector notice exits through /proc.
func TestExitNoticedWithoutEvents(t *testing.T) {
	s := New(Config{GracePeriod: time.Hour, GCPeriod: time.Nanosecond})
	c := start(t, exec.Command("/bin/sleep", "60"), "sleep")
	s.Add(find(t, c.PID))
	c.Stop()
	item, found := s.IsInStoreByPID(c.PID)
	if !found || item.Exited == 0 {
		t.Errorf("lookup after exit: found %v exited %d", found, item.Exited)
	}
	c2 := start(t, exec.Command("/bin/sleep", "60"), "sleep")
	s.Add(find(t, c2.PID))
	c2.Stop()
	s.DeleteOldItems()
	it, _ := s.Get(find(t, os.Getpid()).Key())
	if it.Exited != 0 {
		t.Error("the live test process was marked exited")
	}
	if s.Stats().Exits < 2 {
		t.Errorf("Exits %d, want 2", s.Stats().Exits)
	}
}

// TestAncestorKeptAndReparent: an exited parent stays while its orphan runs;
// the orphan is reparented to a subreaper and keeps its lineage.
func TestAncestorKeptAndReparent(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot become a subreaper: %v", err)
	}
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	s := New(Config{GracePeriod: time.Millisecond})
	sh := start(t, exec.Command("/bin/sh", "-c", "/bin/sleep 60 & echo $!; read x"), "")
	line, err := sh.Out.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	orphanPID, _ := strconv.Atoi(line[:len(line)-1])
	defer func() {
		_ = syscall.Kill(orphanPID, syscall.SIGKILL)
		_, _ = syscall.Wait4(orphanPID, nil, 0, nil)
	}()
	proctest.WaitComm(t, orphanPID, "sleep")
	s.Add(find(t, orphanPID))
	shKey := find(t, sh.PID).Key()
	sh.Stop() // the parent exits; the sleep is reparented to us
	s.Exit(shKey)
	time.Sleep(5 * time.Millisecond)
	s.DeleteOldItems()
	if _, found := s.Get(shKey); !found {
		t.Fatal("exited parent removed while its child runs")
	}
	now := find(t, orphanPID)
	if now.PPID != os.Getpid() {
		t.Fatalf("orphan's PPID %d, want the subreaper %d", now.PPID, os.Getpid())
	}
	s.UpdateItem(now)
	item, _ := s.IsInStoreByPID(orphanPID)
	if item.Proc.PPID != os.Getpid() || item.Proc.Parent == nil || item.Proc.Parent.Key() != shKey {
		t.Errorf("after reparenting: PPID %d Parent %+v, want PPID %d and the original parent", item.Proc.PPID, item.Proc.Parent, os.Getpid())
	}
	// Once the orphan exits too, both go.
	_ = syscall.Kill(orphanPID, syscall.SIGKILL)
	_, _ = syscall.Wait4(orphanPID, nil, 0, nil)
	s.Delete(orphanPID)
	time.Sleep(5 * time.Millisecond)
	s.DeleteOldItems()
	if _, found := s.Get(shKey); found {
		t.Error("parent kept after its last descendant exited")
	}
}

func TestMaxEntries(t *testing.T) {
	s := New(Config{MaxEntries: 100})
	for i := 0; i < 50; i++ {
		p := synthetic(i, "/usr/bin/old")
		s.Add(p)
		s.Exit(p.Key())
	}
	for i := 50; i < 300; i++ {
		s.Add(synthetic(i, "/usr/bin/live"))
	}
	st := s.Stats()
	if st.Entries > 100 || st.Evicted == 0 {
		t.Fatalf("Entries %d Evicted %d", st.Entries, st.Evicted)
	}
	if st.Exited != 0 {
		t.Errorf("%d exited entries survived while live ones were evicted", st.Exited)
	}
	if _, found := s.Get(synthetic(299, "/usr/bin/live").Key()); !found {
		t.Error("the newest entry was evicted")
	}
}

func TestConcurrentAddLookup(t *testing.T) {
	s := New(Config{MaxEntries: 500})
	pids, err := process.PIDs()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				switch i % 4 {
				case 0:
					if p := process.FindProcess(pids[(i+w)%len(pids)], false); p != nil {
						s.Add(p)
					}
				case 1:
					s.Add(synthetic(w*1000+i, "/usr/bin/x", strconv.Itoa(i)))
				case 2:
					if item, ok := s.IsInStoreByPID(pids[i%len(pids)]); ok {
						_ = item.Proc.Path + item.Proc.Serialize().Path
					}
				case 3:
					s.DeleteOldItems()
					s.Range(func(ExecEventItem) bool { return true })
				}
			}
		}(w)
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.Len() == 0 {
		t.Error("nothing cached")
	}
}

// TestStartCloseCycles starts and stops the collector 200 times, ending
// every other run by its context, and checks that no goroutine or file
// descriptor is left, that a running store refuses a second Start, and
// that a store whose context ended can be started again (it could not:
// Start said "already started" with nothing running).
func TestStartCloseCycles(t *testing.T) {
	s := New(Config{GCPeriod: time.Millisecond})
	proctest.CheckCycles(t, 200, func(i int) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := startRetry(s, ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx); !errors.Is(err, ErrStarted) {
			t.Fatalf("second Start: %v, want ErrStarted", err)
		}
		if i%2 == 0 {
			cancel() // the next cycle's Start waits for this run to end
			return
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})
	_ = s.Close()
}

// startRetry starts s, waiting for a run whose context ended to finish.
func startRetry(s *EventsStore, ctx context.Context) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := s.Start(ctx)
		if !errors.Is(err, ErrStarted) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPutGone: PutGone caches a process without a start time under start
// time 0, where Put reads the start time its pid has in /proc (here a live
// process's, which a younger process of a reused pid would give).
func TestPutGone(t *testing.T) {
	c := start(t, exec.Command("/bin/sleep", "60"), "sleep")
	live, err := process.CurrentKey(c.PID)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{})
	p := process.NewProcessWithParent(c.PID, os.Getpid(), "sleep")
	if got := s.PutGone(p); got.Starttime != 0 || got.Key() != (process.Key{PID: c.PID}) {
		t.Errorf("PutGone cached %v, want %v without a start time", got.Key(), process.Key{PID: c.PID})
	}
	if _, ok := s.Get(live); ok {
		t.Errorf("PutGone cached the live process's identity %v", live)
	}
	q := process.NewProcessWithParent(c.PID, os.Getpid(), "sleep")
	if got := s.Put(q); got.Key() != live {
		t.Errorf("Put cached %v, want the start time from /proc: %v", got.Key(), live)
	}
}

// TestPrevPathsShared: the exec history an item hands out is shared with
// the store, not copied, and neither a caller's append to it nor a later
// exec changes what the other sees.
func TestPrevPathsShared(t *testing.T) {
	s := New(Config{})
	k := synthetic(1, "/p0").Key()
	s.Put(synthetic(1, "/p0"))
	var want []string // the store's history: every path but the current one, the last maxPrevPaths
	for i := 1; i < 3*maxPrevPaths; i++ {
		s.Put(synthetic(1, "/p"+strconv.Itoa(i)))
		want = append(want, "/p"+strconv.Itoa(i-1))
		if len(want) > maxPrevPaths {
			want = want[1:]
		}
		it, ok := s.Get(k)
		if !ok || !slices.Equal(it.PrevPaths, want) {
			t.Fatalf("after exec %d: %v %v, want %v", i, it.PrevPaths, ok, want)
		}
		before := slices.Clone(it.PrevPaths)
		mine := append(it.PrevPaths, "/mine") // a caller's append
		s.Put(synthetic(1, "/next"))          // an exec
		next, _ := s.Get(k)
		if slices.Contains(next.PrevPaths, "/mine") {
			t.Fatalf("a caller's append reached the store: %v", next.PrevPaths)
		}
		if !slices.Equal(it.PrevPaths, before) || !slices.Equal(mine, append(before, "/mine")) {
			t.Fatalf("an exec changed an item handed out before: %v (was %v), the caller's append %v", it.PrevPaths, before, mine)
		}
		s.Put(synthetic(1, "/p"+strconv.Itoa(i))) // back, for the next round's history
		want = append(want, "/p"+strconv.Itoa(i), "/next")
		if len(want) > maxPrevPaths {
			want = want[len(want)-maxPrevPaths:]
		}
	}
}
