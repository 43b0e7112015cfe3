package ebpf

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"

	"github.com/proctrack/proctrack/bpf"
	"github.com/proctrack/proctrack/internal/kernel"
	"github.com/proctrack/proctrack/internal/sysnum"
)

// Programs of the process events, loaded on both tiers.
var processPrograms = []string{bpf.ProcmonProgHandleExit, bpf.ProcmonProgHandleFork, bpf.ProcmonProgHandleExec}

// lsmPrograms maps each hook to its LSM program.
var lsmPrograms = map[string]string{
	HookSetuid:            bpf.ProcmonProgLsmSetuid,
	HookSetgid:            bpf.ProcmonProgLsmSetgid,
	HookCapset:            bpf.ProcmonProgLsmCapset,
	HookPrctl:             bpf.ProcmonProgLsmPrctl,
	HookCreateUserNS:      bpf.ProcmonProgLsmUsernsCreate,
	HookPtraceAccessCheck: bpf.ProcmonProgLsmPtraceAccessCheck,
	HookBprmCheck:         bpf.ProcmonProgLsmBprmCheck,
}

// objects are the loaded collection and its links.
type objects struct {
	coll     *ebpf.Collection
	links    []link.Link
	attached []string // program names, in attach order
}

// close detaches every program and frees the maps.
func (o *objects) close() error {
	var errs []error
	for i := len(o.links) - 1; i >= 0; i-- {
		if err := o.links[i].Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach %s: %w", o.attached[i], err))
		}
	}
	o.links = nil
	if o.coll != nil {
		o.coll.Close()
		o.coll = nil
	}
	return errors.Join(errs...)
}

// describedError is an error with its own text (a description of err, such
// as the verifier's last lines) that still matches err.
type describedError struct {
	text string
	err  error
}

func (e *describedError) Error() string { return e.text }
func (e *describedError) Unwrap() error { return e.err }

// programsFor returns the programs a tier loads for the enabled hooks.
// bprm_check also runs for IMA digests and for the executable paths of the
// scope attributes (needBprm).
func programsFor(tier string, hooks map[string]bool, needBprm bool) []string {
	progs := append([]string(nil), processPrograms...)
	switch tier {
	case TierLSM:
		for _, h := range HookNames {
			if lsmPrograms[h] != "" && (hooks[h] || (h == HookBprmCheck && needBprm)) {
				progs = append(progs, lsmPrograms[h])
			}
		}
	case TierTracepoint:
		// The sys_exit program decodes amd64's and arm64's registers
		// (bpf/syscall_arch.h) with their tables; other architectures get
		// the process events only.
		if nativeSyscalls == nil {
			break
		}
		for _, h := range HookNames {
			if hooks[h] && h != HookBprmCheck && h != HookSchedProcessExec {
				progs = append(progs, bpf.ProcmonProgHandleSysExit)
				break
			}
		}
	}
	return progs
}

// load loads and attaches the programs of tier, with the rule tables (nil
// for none): every hook's on the LSM tier, sched_process_exec's alone on
// the tracepoint tier (the caller compiles them so).
func load(tier string, hooks map[string]bool, cfg *Config, tables *ruleTables) (*objects, error) {
	spec, err := bpf.LoadProcmon()
	if err != nil {
		return nil, fmt.Errorf("read the embedded BPF object: %w", err)
	}
	if tables == nil {
		tables = &ruleTables{}
	}
	tables.size(spec)
	ring := cfg.ringSize(os.Getpagesize())
	spec.Maps[bpf.ProcmonMapEvents].MaxEntries = ring
	groupDead := exitHasGroupDead()
	if groupDead {
		spec.Maps[bpf.ProcmonMapExited].MaxEntries = 1 // unused: the tracepoint says which exit is the last
	}
	for name, v := range map[string]any{
		bpf.ProcmonVarExitHasGroupDead: groupDead,
		bpf.ProcmonVarImaHash:          cfg.IMAHash && tier == TierLSM,
		bpf.ProcmonVarWantCwd:          !cfg.NoCWD,
		bpf.ProcmonVarWakeupBytes:      cfg.wakeupBytes(ring),
		bpf.ProcmonVarWakeupGapNs:      uint64(cfg.wakeupGap().Nanoseconds()),
		bpf.ProcmonVarWantExePaths:     tables.scope,
		bpf.ProcmonVarExecRules:        tables.execRules(),
		bpf.ProcmonVarExePathsAtExec:   tables.scope && tier == TierTracepoint,
	} {
		vs, ok := spec.Variables[name]
		if !ok {
			return nil, fmt.Errorf("BPF object has no variable %s", name)
		}
		if err := vs.Set(v); err != nil {
			return nil, fmt.Errorf("set %s: %w", name, err)
		}
	}
	progs := programsFor(tier, hooks, cfg.IMAHash || tables.scope)
	keep := make(map[string]bool, len(progs))
	for _, p := range progs {
		keep[p] = true
	}
	for name := range spec.Programs {
		if !keep[name] {
			delete(spec.Programs, name)
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{})
	if err != nil {
		return nil, &describedError{"load the " + tier + " tier's programs: " + kernel.DescribeLoadError(err), err}
	}
	o := &objects{coll: coll}
	if err := tables.fill(coll); err != nil {
		o.close()
		return nil, err
	}
	if keep[bpf.ProcmonProgHandleSysExit] {
		if err := fillFilters(coll, hooks); err != nil {
			o.close()
			return nil, err
		}
	}
	for _, name := range progs {
		prog := coll.Programs[name]
		var l link.Link
		if prog.Type() == ebpf.LSM {
			l, err = link.AttachLSM(link.LSMOptions{Program: prog})
		} else {
			l, err = link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
		}
		if err != nil {
			o.close()
			return nil, fmt.Errorf("attach %s: %w", name, err)
		}
		o.links = append(o.links, l)
		o.attached = append(o.attached, name)
	}
	return o, nil
}

// fillFilters writes the system call filters for the enabled hooks.
func fillFilters(coll *ebpf.Collection, hooks map[string]bool) error {
	for mapName, t := range map[string]*sysnum.Table{
		bpf.ProcmonMapSysNative: nativeSyscalls,
		bpf.ProcmonMapSysCompat: compatSyscalls,
	} {
		m := coll.Maps[mapName]
		for nr, code := range filterTable(t, hooks) {
			if nr >= syscallSlots {
				return fmt.Errorf("system call %d over the filter's %d slots", nr, syscallSlots)
			}
			if err := m.Put(nr, code); err != nil {
				return fmt.Errorf("fill %s[%d]: %w", mapName, nr, err)
			}
		}
	}
	return nil
}

// exitHasGroupDead reports whether the kernel's sched_process_exit
// tracepoint passes group_dead (newer kernels, such as 6.18): the exit
// program then uses it instead of reading signal->live.
func exitHasGroupDead() bool {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return false
	}
	var td *btf.Typedef
	if err := spec.TypeByName("btf_trace_sched_process_exit", &td); err != nil {
		return false
	}
	ptr, ok := td.Type.(*btf.Pointer)
	if !ok {
		return false
	}
	fp, ok := ptr.Target.(*btf.FuncProto)
	// (void *__data, struct task_struct *p, bool group_dead)
	return ok && len(fp.Params) >= 3
}

// checkPidNamespace returns why the source cannot run in this process's pid
// namespace, or nil. The programs report pids as the initial pid namespace
// numbers them (task->tgid), and the source and the monitor read /proc
// with them: in a child pid namespace (a container without --pid=host)
// those pids name other processes or none. It reads only /proc/self.
func checkPidNamespace() error {
	ino, outside := kernel.OutsideInitialNS(kernel.PidNS)
	if !outside {
		return nil // the initial one, or unknown (then /proc is missing and Start says so later)
	}
	return fmt.Errorf("the BPF programs report pids of the initial pid namespace, and this process is in pid namespace %d, whose pids and /proc differ: run it in the host's pid namespace (e.g. docker run --pid=host)", ino)
}
