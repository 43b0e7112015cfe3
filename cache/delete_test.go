package cache

import (
	"os/exec"
	"testing"
	"time"
)

// TestDeleteKeepsLiveProcess: the seed's Delete(pid) on a process that still
// runs (an exit event for a thread, a caller's mistake) must not mark it
// exited, or the garbage collector would remove a live process.
func TestDeleteKeepsLiveProcess(t *testing.T) {
	s := New(Config{GracePeriod: 20 * time.Millisecond, RevalidateAfter: time.Hour})
	c := start(t, exec.Command("/bin/sleep", "60"), "sleep")
	p := find(t, c.PID)
	s.Add(p)
	s.Delete(c.PID)
	item, found := s.IsInStoreByPID(c.PID)
	if !found || item.Exited != 0 {
		t.Fatalf("live process after Delete: found %v, exited at %d", found, item.Exited)
	}
	time.Sleep(40 * time.Millisecond)
	s.DeleteOldItems()
	if _, found := s.Get(p.Key()); !found {
		t.Fatal("a live process was removed after Delete and the grace period")
	}
	c.Stop()
	s.Delete(c.PID)
	if item, _ := s.Get(p.Key()); item.Exited == 0 {
		t.Error("Delete of an exited process did not mark it exited")
	}
}
