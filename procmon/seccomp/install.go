package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"unsafe"

	libseccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/internal/kernel"
)

// ErrUnsupported is matched by Install's error when the running kernel
// lacks what the policy needs (seccomp filters, TSYNC, an action or the log
// flag too new for it).
var ErrUnsupported = errors.New("seccomp: not supported by this kernel")

// libAction maps an action to go-seccomp-bpf's.
var libAction = map[Action]libseccomp.Action{
	ActionErrno:       libseccomp.ActionErrno,
	ActionTrace:       libseccomp.ActionTrace,
	ActionTrap:        libseccomp.ActionTrap,
	ActionKillThread:  libseccomp.ActionKillThread,
	ActionKillProcess: libseccomp.ActionKillProcess,
	ActionLog:         libseccomp.ActionLog,
	ActionAllow:       libseccomp.ActionAllow,
}

// Program validates the policy for the running architecture and assembles
// it into the classic BPF program Install loads (with go-seccomp-bpf: an
// architecture check first, x32 system calls refused with ENOSYS on
// x86_64, then one jump per name, then the default action). The numbers
// are the generated table's (internal/sysnum), which audit and the eBPF
// method name system calls with; go-seccomp-bpf is given each number under
// its own table's name for it.
func (p *Policy) Program() ([]bpf.RawInstruction, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	table, _ := archTable(runtime.GOARCH) // Validate checked it
	info, err := arch.GetInfo(runtime.GOARCH)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	lp := libseccomp.Policy{DefaultAction: libAction[p.DefaultAction]}
	for _, g := range p.Syscalls {
		names := make([]string, len(g.Names))
		for i, n := range g.Names {
			nr, _ := table.Number(n)
			if names[i] = info.SyscallNumbers[int(nr)]; names[i] == "" {
				return nil, fmt.Errorf("seccomp: %s (%s %d) unknown to go-seccomp-bpf's table", n, table.Arch, nr)
			}
		}
		lp.Syscalls = append(lp.Syscalls, libseccomp.SyscallGroup{Action: libAction[g.Action], Names: names})
	}
	insts, err := lp.Assemble()
	if err != nil {
		return nil, fmt.Errorf("seccomp: assemble policy: %w", err)
	}
	raw, err := bpf.Assemble(insts)
	if err != nil {
		return nil, fmt.Errorf("seccomp: assemble BPF: %w", err)
	}
	if len(raw) > 4096 { // BPF_MAXINSNS
		return nil, &PolicyError{Reason: fmt.Sprintf("filter has %d instructions, the kernel takes 4096", len(raw))}
	}
	return raw, nil
}

// Install loads the policy into the kernel for every thread of the process
// (SECCOMP_FILTER_FLAG_TSYNC) after setting no_new_privs, so the filter is
// inherited by every thread and child created later and survives execve;
// it cannot be removed. Nothing is loaded unless the whole policy is valid
// (Validate) and the kernel has every action it uses (Action.MinKernel,
// InstallFloor, LogFlagFloor): a *PolicyError or an error matching
// ErrUnsupported says why. A policy with Enabled false is not installed
// and Install returns nil.
//
// Filters stack: installing a second policy adds to the first, and the
// most restrictive action of all the filters wins.
func (p *Policy) Install() error {
	if !p.Enabled {
		return nil
	}
	raw, err := p.Program()
	if err != nil {
		return err
	}
	if err := p.checkKernel(); err != nil {
		return err
	}
	flags := uintptr(unix.SECCOMP_FILTER_FLAG_TSYNC)
	if p.LogViolations {
		flags |= unix.SECCOMP_FILTER_FLAG_LOG
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, in := range raw {
		filter[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}

	// no_new_privs is per thread: set it on the thread that loads the
	// filter (TSYNC then sets it on every other thread). go-seccomp-bpf's
	// LoadFilter does not lock the thread between the two calls, and takes
	// TSYNC's failure (a positive thread id, no errno) for success: hence
	// the system call is made here.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("seccomp: set no_new_privs: %w", err)
	}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	switch {
	case errno == unix.ENOSYS:
		return fmt.Errorf("%w: seccomp(2): %w", ErrUnsupported, errno)
	case errno == unix.EINVAL:
		return fmt.Errorf("%w: seccomp(2) refused the filter or its flags %#x: %w", ErrUnsupported, flags, errno)
	case errno != 0:
		return fmt.Errorf("seccomp: load filter: %w", errno)
	case r != 0:
		return fmt.Errorf("seccomp: thread %d cannot be synchronized to the filter (TSYNC): it has a filter of its own", r)
	}
	return nil
}

// checkKernel compares every action the policy uses with the running
// kernel's version.
func (p *Policy) checkKernel() error {
	kv, err := RunningKernel()
	if err != nil {
		return err
	}
	need := func(path string, floor KernelVersion, what string) error {
		if kv.Less(floor) {
			return fmt.Errorf("%w: %s: %s needs Linux %s, this is %s", ErrUnsupported, path, what, floor, kv)
		}
		return nil
	}
	if err := need("", InstallFloor, "seccomp(2) with TSYNC"); err != nil {
		return err
	}
	if p.LogViolations {
		if err := need("log_violations", LogFlagFloor, "SECCOMP_FILTER_FLAG_LOG"); err != nil {
			return err
		}
	}
	floor, _ := p.DefaultAction.MinKernel()
	if err := need("default_action", floor, "action "+string(p.DefaultAction)); err != nil {
		return err
	}
	for gi, g := range p.Syscalls {
		floor, _ := g.Action.MinKernel()
		if err := need("syscalls["+strconv.Itoa(gi)+"].action", floor, "action "+string(g.Action)); err != nil {
			return err
		}
	}
	return nil
}

// RunningKernel returns the running kernel's version, from uname(2).
func RunningKernel() (KernelVersion, error) {
	v, err := kernel.Running()
	if err != nil {
		return KernelVersion{}, fmt.Errorf("seccomp: %w", err)
	}
	return v, nil
}
