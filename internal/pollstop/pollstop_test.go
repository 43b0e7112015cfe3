package pollstop

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestStop: a Wait for a socket that stays empty and a Sleep of an hour
// both return at once, stopped, when Stop is called; a Wait for a readable
// socket returns not stopped; a Wait with a timeout returns after it.
func TestStop(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	if stopped, err := s.Wait(fds[0], unix.POLLIN, 10*time.Millisecond); stopped || err != nil {
		t.Errorf("Wait with a timeout: stopped %v, %v", stopped, err)
	}
	if _, err := unix.Write(fds[1], []byte("x")); err != nil {
		t.Fatal(err)
	}
	if stopped, err := s.Wait(fds[0], unix.POLLIN, -1); stopped || err != nil {
		t.Errorf("Wait for a readable socket: stopped %v, %v", stopped, err)
	}
	buf := make([]byte, 1)
	if _, err := unix.Read(fds[0], buf); err != nil {
		t.Fatal(err)
	}

	done := make(chan [2]bool)
	go func() {
		w, _ := s.Wait(fds[0], unix.POLLIN, -1)
		done <- [2]bool{w, s.Sleep(time.Hour)}
	}()
	time.Sleep(20 * time.Millisecond)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-done:
		if !got[0] || !got[1] {
			t.Errorf("Wait stopped %v, Sleep stopped %v after Stop", got[0], got[1])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait and Sleep did not return after Stop")
	}
}

// TestShortSleep: a Sleep of a wakeup gap (which keeps its P) lasts about
// that long, returns stopped at once after Stop, and lets a goroutine that
// is ready run first even with GOMAXPROCS=1.
func TestShortSleep(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))

	const d = 500 * time.Microsecond
	ran := make(chan struct{})
	go close(ran)
	start := time.Now()
	if s.Sleep(d) {
		t.Error("Sleep returned stopped before Stop")
	}
	if took := time.Since(start); took < d {
		t.Errorf("Sleep(%v) returned after %v", d, took)
	}
	select {
	case <-ran:
	default:
		t.Error("a ready goroutine did not run before the Sleep (GOMAXPROCS=1)")
	}

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if !s.Sleep(d) {
		t.Error("Sleep after Stop: not stopped")
	}
}
