package sockets

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestConcurrentLookups runs lookups, scans, cleaning and Forget at once
// (for the race detector) and checks every answer.
func TestConcurrentLookups(t *testing.T) {
	requireRoot(t)
	var hs []*helper
	for i := 0; i < 3; i++ {
		h := startHelper(t)
		h.do("batch 5 5 5 5 3 0")
		hs = append(hs, h)
	}
	pids := map[int]bool{}
	for _, h := range hs {
		pids[h.pid] = true
	}
	truth := procTruth(t)
	r := New(Config{Revalidate: time.Millisecond, CleanPeriod: 5 * time.Millisecond})
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	socks, err := r.Sockets()
	if err != nil {
		t.Fatal(err)
	}
	var mine []Socket
	for _, s := range socks {
		for pid := range truth[s.Inode] {
			if pids[pid] {
				mine = append(mine, s)
			}
		}
	}
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				s := mine[(g*37+i)%len(mine)]
				switch {
				case g == 0 && i%50 == 0:
					r.Forget()
				case g%2 == 0:
					if pid, ok := r.PIDOfInode(s.Inode); !ok || !truth[s.Inode][pid] {
						t.Errorf("PIDOfInode(%d) = %d %v", s.Inode, pid, ok)
						return
					}
				default:
					p, info, err := r.Lookup(s.Proto, s.Local, s.Remote)
					if err != nil || !truth[info.Inode][p.ID] {
						t.Errorf("Lookup(%v %v %v): %v %+v %v", s.Proto, s.Local, s.Remote, p, info, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

func TestMinScanInterval(t *testing.T) {
	requireRoot(t)
	r := New(Config{MinScanInterval: time.Hour})
	r.PIDOfInode(1<<32 - 21)
	r.PIDOfInode(1<<32 - 22)
	r.PIDOfInode(1<<32 - 23)
	if st := r.Stats(); st.FullScans != 1 || st.Misses != 3 {
		t.Fatalf("%+v", st)
	}
	r.Refresh()
	if st := r.Stats(); st.FullScans != 2 {
		t.Fatalf("Refresh did not scan: %+v", st)
	}
}

func TestCacheCleanerTask(t *testing.T) {
	old := Default()
	r := New(Config{CleanPeriod: time.Millisecond})
	SetDefault(r)
	defer SetDefault(old)
	done := make(chan struct{})
	go func() {
		CacheCleanerTask()
		close(done)
	}()
	InodesCache.Add("x", &InodeItem{Pid: 1})
	deadline := time.Now().Add(5 * time.Second)
	gone := func() bool { _, ok := InodesCache.Get("x"); return !ok }
	for !gone() && time.Now().Before(deadline) {
		// DefaultMaxAge is minutes: age the item instead of waiting.
		if it, ok := InodesCache.Get("x"); ok {
			it.Lock()
			it.LastSeen = 1
			it.Unlock()
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !gone() {
		t.Error("CacheCleanerTask did not expire an old item")
	}
	r.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("CacheCleanerTask did not return after Close")
	}
}
