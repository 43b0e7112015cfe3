// Package sockfds lists the socket descriptors of every process on the
// machine in one read, with a BPF iterator (bpf/sockfds.c, iter/task_file):
// what a scan of /proc/*/fd learns with one readlink per descriptor (60-100
// ms for 15,000 descriptors on the development VM), in a few milliseconds.
//
// Threads whose fd table is their own (unshare(CLONE_FILES), clone without
// CLONE_FILES) are listed under their thread id; threads sharing their
// leader's table are not listed again. Open fails with an error matching
// ErrUnavailable where the iterator cannot load (no CAP_BPF+CAP_PERFMON or
// CAP_SYS_ADMIN, no kernel BTF, a kernel without task_file iterators) or
// this process is outside the initial pid namespace (the program reports
// the initial namespace's pids); callers then read /proc.
package sockfds

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/bpf"
	"github.com/proctrack/proctrack/internal/kernel"
	"github.com/proctrack/proctrack/internal/loop"
)

// ErrUnavailable is matched by Open's error when the iterator cannot be
// used here (kernel.ErrUnavailable).
var ErrUnavailable = kernel.ErrUnavailable

// recSize is the size of struct sock_fd.
const recSize = 24

// SockFD is one socket descriptor.
type SockFD struct {
	PID   int32  // the process (thread group id)
	TID   int32  // the task whose fd table holds it (PID unless the thread has its own table)
	FD    int32  // the descriptor
	Inode uint64 // the socket's inode, as "socket:[inode]" in /proc
}

// Lister runs the iterator. Its methods are safe for concurrent use; after
// Close, Each returns an error. Listers share one loaded program: the first
// Open loads it, the last Close unloads it.
type Lister struct {
	mu  sync.Mutex
	sh  *program // nil once closed
	buf []byte
}

// program is the loaded iterator program.
type program struct {
	objs bpf.SockfdsObjects
	iter *link.Iter
}

var shared loop.Shared[*program]

func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: socket iterator: "+format, append([]any{ErrUnavailable}, args...)...)
}

// Open returns a Lister, loading the iterator program unless another
// Lister holds it.
func Open() (*Lister, error) {
	p, err := shared.Acquire(load)
	if err != nil {
		return nil, err
	}
	return &Lister{sh: p}, nil
}

// load loads and attaches the program.
func load() (*program, error) {
	if err := kernel.CheckBPFPrivileges("the socket iterator"); err != nil {
		return nil, unavailable("%w", err)
	}
	if ino, outside := kernel.OutsideInitialNS(kernel.PidNS); outside {
		return nil, unavailable("this process is in pid namespace %d, the program reports the initial namespace's pids", ino)
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return nil, unavailable("no kernel BTF, which iterators need: %w", err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, unavailable("remove the memlock limit: %w", err)
	}
	p := &program{}
	if err := bpf.LoadSockfdsObjects(&p.objs, nil); err != nil {
		return nil, unavailable("load: %s", kernel.DescribeLoadError(err))
	}
	it, err := link.AttachIter(link.IterOptions{Program: p.objs.SockFds})
	if err != nil {
		_ = p.objs.Close()
		return nil, unavailable("attach iter/task_file: %w", err)
	}
	p.iter = it
	return p, nil
}

// Each runs the iterator once and calls fn for every socket descriptor,
// after the whole listing was read (fn may take its time).
func (l *Lister) Each(fn func(SockFD)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sh == nil {
		return fmt.Errorf("socket iterator: closed")
	}
	r, err := l.sh.iter.Open()
	if err != nil {
		return fmt.Errorf("socket iterator: open: %w", err)
	}
	l.buf = l.buf[:0]
	for {
		if len(l.buf) == cap(l.buf) {
			l.buf = append(l.buf, make([]byte, max(64<<10, cap(l.buf)))...)[:len(l.buf)]
		}
		n, err := r.Read(l.buf[len(l.buf):cap(l.buf)])
		l.buf = l.buf[:len(l.buf)+n]
		if err == io.EOF || (err == nil && n == 0) {
			break
		}
		if errors.Is(err, unix.EAGAIN) {
			continue // the kernel pauses a read after a million objects with no output
		}
		if err != nil {
			_ = r.Close()
			return fmt.Errorf("socket iterator: read: %w", err)
		}
	}
	if err := r.Close(); err != nil {
		return fmt.Errorf("socket iterator: close: %w", err)
	}
	b := l.buf
	for ; len(b) >= recSize; b = b[recSize:] {
		fn(SockFD{
			PID:   int32(binary.NativeEndian.Uint32(b[0:])),
			TID:   int32(binary.NativeEndian.Uint32(b[4:])),
			FD:    int32(binary.NativeEndian.Uint32(b[8:])),
			Inode: binary.NativeEndian.Uint64(b[16:]),
		})
	}
	return nil
}

// Close releases the program (the last Lister's Close unloads it). It may
// be called more than once.
func (l *Lister) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sh == nil {
		return nil
	}
	l.sh, l.buf = nil, nil
	return shared.Release(func(p *program) error {
		err := p.iter.Close()
		_ = p.objs.Close()
		return err
	})
}
