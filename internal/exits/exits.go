// Package exits tells, without a system call, that a pid still names the
// process it named when it was last confirmed: the kernel counts every
// task's exit in a slot of its pid (bpf/exits.c, a tracepoint on
// sched_process_exit), in a BPF array this process maps into its memory.
//
// The rule the cache and the socket resolver build on: read Gen(pid), then
// confirm from /proc that pid names the process and that it is neither
// exiting nor a zombie (Confirm does both). While Gen(pid) returns the
// value read then, no task with a pid in that slot has exited, so the
// process has not exited and its pid cannot have been given to another
// (a pid is freed only after its task ran do_exit, where the tracepoint
// runs). A changed value (the process exited, or another pid of the slot
// did) sends the caller back to /proc.
//
// One BPF program serves every Counter of the process: the first Start
// loads it, the last Close unloads it. Where it cannot load (no
// CAP_BPF+CAP_PERFMON or CAP_SYS_ADMIN, no tracepoint, a pid namespace
// other than the initial one, whose pids /proc does not show), Start
// returns an error matching ErrUnavailable and Gen returns 0: callers
// confirm every lookup from /proc as before.
package exits

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/bpf"
	"github.com/proctrack/proctrack/internal/kernel"
	"github.com/proctrack/proctrack/internal/loop"
	"github.com/proctrack/proctrack/internal/procfs"
)

// ErrUnavailable is matched by Start's error when the counter cannot run
// here (kernel.ErrUnavailable).
var ErrUnavailable = kernel.ErrUnavailable

// countBits is how many low bits of a Gen value hold the slot's count; the
// bits above hold the loaded program's epoch, so that a value recorded
// under one load never matches one read under another (exits that happen
// while no program runs are not counted).
const countBits = 40

// pfExiting is PF_EXITING (include/linux/sched.h), set by do_exit before
// the tracepoint runs.
const pfExiting = 0x4

// program is the loaded BPF program and its mapped counters.
type program struct {
	objs  bpf.ExitsObjects
	link  link.Link
	slots []uint64 // the mapped array: unmapped by a cleanup once unreachable
	mask  uint32
	epoch uint64      // shifted left by countBits
	live  atomic.Bool // cleared before the program is detached
}

var (
	shared loop.Shared[*program]
	epochs uint64 // written by load, under shared's lock
)

// acquire returns the loaded program, loading it for the first user.
func acquire() (*program, error) { return shared.Acquire(load) }

// release drops one user; the last one detaches and unloads the program.
func release() {
	_ = shared.Release(func(p *program) error {
		p.live.Store(false)
		_ = p.link.Close()
		return p.objs.Close() // the mapping keeps the array until it is unmapped
	})
}

func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: exit counter: "+format, append([]any{ErrUnavailable}, args...)...)
}

// load loads, attaches and maps the program.
func load() (*program, error) {
	if err := kernel.CheckBPFPrivileges("the exit counter"); err != nil {
		return nil, unavailable("%w", err)
	}
	if ino, outside := kernel.OutsideInitialNS(kernel.PidNS); outside {
		return nil, unavailable("this process is in pid namespace %d: the kernel counts the initial namespace's pids, /proc shows others", ino)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, unavailable("remove the memlock limit: %w", err)
	}
	spec, err := bpf.LoadExits()
	if err != nil {
		return nil, fmt.Errorf("exit counter: read the embedded BPF object: %w", err)
	}
	n := spec.Maps[bpf.ExitsMapExitCounts].MaxEntries
	p := &program{mask: n - 1}
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
		return nil, unavailable("load: %s", kernel.DescribeLoadError(err))
	}
	b, err := unix.Mmap(p.objs.ExitCounts.FD(), 0, int(n)*8, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		_ = p.objs.Close()
		return nil, unavailable("map the counters: %w", err)
	}
	p.slots = unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), n)
	// Readers hold p while they read the mapping: it is unmapped only once
	// no reader can reach p.
	runtime.AddCleanup(p, func(b []byte) { _ = unix.Munmap(b) }, b)
	p.link, err = link.Tracepoint("sched", "sched_process_exit", p.objs.CountExit, nil)
	if err != nil {
		_ = p.objs.Close()
		return nil, unavailable("attach to sched/sched_process_exit: %w", err)
	}
	epochs++
	p.epoch = epochs << countBits
	p.live.Store(true)
	return p, nil
}

// Counter is one user's hold on the kernel's exit counts. The zero value
// is not usable: create it with New. Its methods are safe for concurrent
// use.
type Counter struct {
	run  loop.Runner
	prog atomic.Pointer[program]
}

// New returns a Counter. It loads nothing: see Start.
func New() *Counter { return &Counter{} }

// Start loads the program (or joins the one another Counter loaded) and
// holds it until ctx ends or Close is called. The error matches
// ErrUnavailable when the counter cannot run here; the Counter is then
// closed and Gen returns 0. A Counter starts once (loop.Runner's rule).
func (c *Counter) Start(ctx context.Context) error {
	if c.run.Running() {
		return fmt.Errorf("exit counter: %w", loop.ErrStarted)
	}
	p, err := acquire()
	if err != nil {
		_ = c.run.Close()
		return err
	}
	c.prog.Store(p)
	stop := func() {
		c.prog.Store(nil)
		release()
	}
	if err := c.run.Start(ctx, stop); err != nil {
		c.prog.Store(nil)
		release()
		return fmt.Errorf("exit counter: %w", err)
	}
	return nil
}

// Close releases the program (the last Counter's Close unloads it). Gen
// returns 0 afterwards. Close may be called more than once.
func (c *Counter) Close() error { return c.run.Close() }

// Gen returns the generation of pid's slot: a value that changes whenever
// a task whose pid shares the slot exits, never 0 while the Counter runs.
// It returns 0 when the Counter does not run (not started, closed, or
// unavailable). It makes no system call.
func (c *Counter) Gen(pid int) uint64 {
	p := c.prog.Load()
	if p == nil {
		return 0
	}
	n := atomic.LoadUint64(&p.slots[uint32(pid)&p.mask])
	// Read after the count: a program detached since may have missed exits.
	if !p.live.Load() {
		return 0
	}
	runtime.KeepAlive(p)
	return p.epoch | n&(1<<countBits-1)
}

// Confirm returns the generation to record for the process that has pid
// and started at start (clock ticks, /proc/<pid>/stat field 22): Gen(pid)
// read before one read of /proc/<pid>/stat, which must show that process,
// neither exiting (PF_EXITING) nor a zombie. It returns 0 when it does not
// (another process, gone, exiting) or the Counter does not run. While
// Gen(pid) returns the recorded value, pid names that process.
func (c *Counter) Confirm(pid int, start uint64) uint64 {
	g := c.Gen(pid)
	if g == 0 || start == 0 {
		return 0
	}
	s, _, err := procfs.ReadStat(procfs.DefaultRoot, pid)
	if err != nil || !Running(s, start) {
		return 0
	}
	return g
}

// Running reports whether stat s shows the process that started at start,
// neither exiting nor a zombie: what must hold after a Gen value is read
// for it to be recorded.
func Running(s *procfs.Stat, start uint64) bool {
	return s.StartTicks == start && s.State != 'Z' && s.State != 'X' && s.Flags&pfExiting == 0
}
