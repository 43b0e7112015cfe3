// Package pollstop lets a reader goroutine that waits for a descriptor with
// poll(2), outside the Go runtime's poller, be stopped by another
// goroutine: the wait also watches an eventfd that Stop signals.
//
// The netlink and audit methods read their sockets this way so that the
// kernel's messages, queued while the reader sleeps between bursts, wake
// no thread (a descriptor in the runtime's poller wakes one per message).
package pollstop

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Stopper is an eventfd a waiting goroutine watches. Its methods may be
// called from any goroutine; Close only once no Wait or Sleep runs.
type Stopper struct {
	efd int
}

// New returns a Stopper, not stopped.
func New() (*Stopper, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	return &Stopper{efd: efd}, nil
}

// Wait waits until fd has one of events (POLLIN, POLLOUT; errors and
// hang-ups always count), timeout passes (-1: no limit), or Stop is
// called. It reports whether Stop was called; with stopped false the
// caller tries its operation again (a timeout or an interrupted wait looks
// the same).
func (s *Stopper) Wait(fd int, events int16, timeout time.Duration) (stopped bool, err error) {
	ms := -1
	if timeout >= 0 {
		ms = int((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: events}, {Fd: int32(s.efd), Events: unix.POLLIN}}
	if _, err := unix.Poll(fds, ms); err != nil && !errors.Is(err, unix.EINTR) {
		return false, fmt.Errorf("poll: %w", err)
	}
	return fds[1].Revents != 0, nil
}

// Sleep waits d, or until Stop is called, and reports whether it was. A
// signal to the thread (the runtime's preemption signal) cuts it short.
//
// A sleep of at most rawSleepMax (the readers' wakeup gap, by default)
// keeps its P meanwhile: the ppoll(2) is a raw system call,
// without telling the scheduler, as a short computation would. Through the
// scheduler, a P left in a system call while other goroutines ran (the
// consumer of the reader's events) was taken away by the runtime's monitor
// thread (sysmon), which then polled every 20 µs again for a millisecond:
// in a storm of events, more wakeups of that thread than of the reader.
// With GOMAXPROCS=1 Sleep first yields the P (runtime.Gosched) to the
// goroutines that are ready to run, so that the events the reader just
// handed on are taken before it sleeps; with more, they run on another P
// (a yield there woke an idle thread to take this goroutine, and put this
// one to sleep: two thread switches more per sleep).
func (s *Stopper) Sleep(d time.Duration) (stopped bool) {
	ts := unix.NsecToTimespec(d.Nanoseconds())
	fd := unix.PollFd{Fd: int32(s.efd), Events: unix.POLLIN}
	if d > rawSleepMax {
		fds := []unix.PollFd{fd}
		_, _ = unix.Ppoll(fds, &ts, nil)
		return fds[0].Revents != 0
	}
	if runtime.GOMAXPROCS(0) == 1 {
		runtime.Gosched()
	}
	_, _, _ = unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&fd)), 1,
		uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	return fd.Revents != 0
}

// rawSleepMax is the longest Sleep that keeps its P (a longer one lets the
// scheduler give it to another goroutine meanwhile).
const rawSleepMax = time.Millisecond

// Stop wakes every Wait and Sleep, now and later.
func (s *Stopper) Stop() error {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	if _, err := unix.Write(s.efd, one[:]); err != nil {
		return fmt.Errorf("signal eventfd: %w", err)
	}
	return nil
}

// Close closes the eventfd.
func (s *Stopper) Close() error { return unix.Close(s.efd) }
