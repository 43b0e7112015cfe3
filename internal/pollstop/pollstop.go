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
	"time"

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

// Sleep waits d, or until Stop is called, and reports whether it was.
func (s *Stopper) Sleep(d time.Duration) (stopped bool) {
	ts := unix.NsecToTimespec(d.Nanoseconds())
	fds := []unix.PollFd{{Fd: int32(s.efd), Events: unix.POLLIN}}
	_, _ = unix.Ppoll(fds, &ts, nil)
	return fds[0].Revents != 0
}

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
