package ebpf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/bpf"
	"github.com/proctrack/proctrack/internal/kernel"
	"github.com/proctrack/proctrack/internal/loop"
	"github.com/proctrack/proctrack/internal/procfs"
	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/procmon/process"
)

// pollInterval is how often the reader wakes without records, to check the
// kernel's loss counter and the context.
const pollInterval = 200 * time.Millisecond

// kernelBTF is where the kernel's BTF is; CO-RE needs it.
const kernelBTF = "/sys/kernel/btf/vmlinux"

// Source is the eBPF monitoring method (methods.Source). Create it with New.
type Source struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	state   int // stateNew, stateRunning, stateClosed
	report  TierReport
	obj     *objects
	rd      *ringbuf.Reader
	cancel  context.CancelFunc // ends the run's context
	stopCtx func() bool        // unregisters the context watch
	wg      sync.WaitGroup

	c counters
}

const (
	stateNew = iota
	stateRunning
	stateClosed
)

// counters are updated by the source's goroutines and read by Stats and
// Counters.
type counters struct {
	events, lost, lostTimes, errors         atomic.Uint64
	records, lostKinds                      [recKinds]atomic.Uint64
	pathCut, argsCut, completed, incomplete atomic.Uint64
	seeded, gcRuns, gcRemoved               atomic.Uint64
}

// Counters are the source's detailed counters (Stats has the summary).
type Counters struct {
	// Records received from the kernel, by kind.
	Exec, Fork, Exit, Syscall, LSM uint64
	// Lost records by kind (the kernel's counter of full ring buffer).
	LostExec, LostFork, LostExit, LostSyscall, LostLSM uint64
	// PathCut and ArgsCut count records whose executable path or argument
	// list the kernel had to cut (or could not read); Completed counts
	// fields then read from /proc, Incomplete the events delivered with
	// Process.Incomplete set.
	PathCut, ArgsCut, Completed, Incomplete uint64
	// Seeded is how many /proc processes were added to the in-kernel map of
	// executable paths at start (LSM tier, rules with scope attributes);
	// GCRuns and GCRemoved count its garbage collections and the stale
	// entries they removed.
	Seeded, GCRuns, GCRemoved uint64
}

// New returns a Source configured by cfg. It loads nothing until Start.
func New(cfg Config) *Source {
	if cfg.GCPeriod <= 0 {
		cfg.GCPeriod = DefaultGCPeriod
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Source{cfg: cfg, log: log}
}

// FlushesSink marks the Source as a methods.Batcher: it calls Flush(true)
// on a sink that implements methods.Flusher once a look has read the ring
// buffer empty (in a burst the looks are 1-16 ms apart, up to 128 ms in a
// storm that lasts, see burstGaps), after
// every record when every record wakes the reader (WakeupGap < 0), and
// when it stops. The monitor's consumer is then woken once per batch, or
// less often during a burst, rather than once per event.
func (s *Source) FlushesSink() {}

// Name returns process.MethodEbpf.
func (s *Source) Name() string { return process.MethodEbpf }

// unavailable returns an error matching methods.ErrUnavailable.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: ebpf: "+format, append([]any{kernel.ErrUnavailable}, args...)...)
}

// Start probes the tier, loads and attaches the programs and starts
// delivering events to sink. It returns an error matching
// methods.ErrUnavailable, with the reason, when BPF cannot run here: no
// privilege (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN), a pid namespace
// other than the initial one (the programs' pids are the host's), no
// kernel BTF, no ring buffer, a verifier rejection (its last lines
// included), or, with Config.Tier TierLSM, no LSM tier. A bad Config is
// another error.
func (s *Source) Start(ctx context.Context, sink methods.Sink) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateRunning:
		return fmt.Errorf("ebpf: source already started: %w", methods.ErrClosed)
	case stateClosed:
		return fmt.Errorf("ebpf: source closed (a Source starts once): %w", methods.ErrClosed)
	}
	hooks, err := s.cfg.hooks()
	if err != nil {
		return err
	}
	if s.cfg.Tier != "" && s.cfg.Tier != TierLSM && s.cfg.Tier != TierTracepoint {
		return fmt.Errorf("ebpf: unknown tier %q (want %q, %q or \"\")", s.cfg.Tier, TierLSM, TierTracepoint)
	}
	// The configuration is judged before the kernel is asked: a sandbox
	// or a rule set that cannot work is an error whatever the privilege.
	sandbox, err := s.cfg.sandbox(hooks)
	if err != nil {
		return err
	}
	tables, err := compileRules(s.cfg.Rules, sandbox, hooks)
	if err != nil {
		return err
	}
	if err := kernel.CheckBPFPrivileges("BPF tracing programs"); err != nil {
		return unavailable("%w", err)
	}
	if err := checkPidNamespace(); err != nil {
		return unavailable("%w", err)
	}
	if _, err := os.Stat(kernelBTF); err != nil {
		return unavailable("no kernel BTF, which CO-RE programs need: %w", err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return unavailable("remove the memlock limit: %w", err)
	}
	if err := features.HaveMapType(ebpf.RingBuf); err != nil {
		return unavailable("no BPF ring buffer (Linux 5.8 or later): %w", err)
	}
	// The tracepoint tier evaluates sched_process_exec's rules alone in
	// the kernel (and reports everything else for userspace).
	tpTables, err := compileRules(s.cfg.Rules, sandbox, execOnly(hooks))
	if err != nil {
		return err
	}
	obj, report, err := s.open(hooks, tables, tpTables, needsLSM(sandbox))
	s.report = report
	if err != nil {
		return err
	}
	if report.Tier != TierLSM {
		tables = tpTables
	}
	if tables.scope {
		n, err := seedExePaths(obj.coll.Maps[bpf.ProcmonMapExePaths], procfs.DefaultRoot)
		if err != nil {
			s.log.Warn("ebpf: seed the map of executable paths", "err", err, "seeded", n)
		}
		s.c.seeded.Store(uint64(n))
	}
	rd, err := ringbuf.NewReader(obj.coll.Maps[bpf.ProcmonMapEvents])
	if err != nil {
		obj.close()
		return unavailable("open the ring buffer: %w", err)
	}
	dec := &decoder{
		boot:     processBoot(),
		complete: !s.cfg.NoProcCompletion,
		proc:     procfs.NewReader(procfs.DefaultRoot),
		cgroups:  newCgroupCache(procfs.DefaultRoot),
		hostMnt:  procfs.ReadNamespaces(procfs.DefaultRoot, os.Getpid())[1],
		c:        &s.c,
		rules:    tables,
		bprm:     hooks[HookBprmCheck],
		log:      s.log,
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.obj, s.rd = obj, rd
	s.stopCtx = context.AfterFunc(ctx, func() { _ = rd.Close() })
	s.state = stateRunning
	s.wg.Add(1)
	go s.readLoop(ctx.Done(), rd, dec, sink, obj.coll.Maps[bpf.ProcmonMapLost], obj.coll.Variables[bpf.ProcmonVarQuietUntilNs])
	if tables != nil && tables.scope {
		s.wg.Add(1)
		go s.gcLoop(ctx, obj.coll.Maps[bpf.ProcmonMapExePaths])
	}
	s.log.Info("ebpf: started", "tier", report.Tier, "status", report.String(), "programs", obj.attached)
	return nil
}

// open chooses the tier and loads it (with tables on the LSM tier,
// tpTables on the tracepoint tier), falling back to the tracepoint tier
// when the LSM tier's programs do not load, unless Config.Tier asks for it
// or lsmSandbox names sandboxed hooks only the LSM tier can enforce.
func (s *Source) open(hooks map[string]bool, tables, tpTables *ruleTables, lsmSandbox []string) (*objects, TierReport, error) {
	sandbox := len(lsmSandbox) > 0
	var rep TierReport
	if s.cfg.Tier == TierTracepoint {
		rep = TierReport{Tier: TierTracepoint, Reason: "lsm tier not tried: Config.Tier is tracepoint"}
		rep.Kernel, _ = kernel.Release()
	} else {
		rep = hostProber.run()
	}
	if sandbox && rep.Tier != TierLSM {
		return nil, rep, fmt.Errorf("ebpf: %w: sandbox mode on %s needs the LSM tier, and %s", ErrSandbox, strings.Join(lsmSandbox, ", "), rep.Reason)
	}
	if s.cfg.Tier == TierLSM && rep.Tier != TierLSM {
		return nil, rep, unavailable("lsm tier requested, but %s", rep.Reason)
	}
	if rep.Tier == TierLSM {
		obj, err := load(TierLSM, hooks, &s.cfg, tables)
		if err == nil {
			return obj, rep, nil
		}
		if sandbox {
			return nil, rep, fmt.Errorf("ebpf: %w: the LSM tier does not load: %w", ErrSandbox, err)
		}
		if s.cfg.Tier == TierLSM {
			return nil, rep, unavailable("lsm tier: %w", err)
		}
		rep.Tier, rep.Reason = TierTracepoint, "lsm tier skipped: "+err.Error()
	}
	obj, err := load(TierTracepoint, hooks, &s.cfg, tpTables)
	if err != nil {
		if tpTables.execRules() {
			return nil, rep, fmt.Errorf("ebpf: %w: sched_process_exec: the tracepoint tier does not load: %w", ErrSandbox, err)
		}
		return nil, rep, unavailable("%w", err)
	}
	return obj, rep, nil
}

// readLoop delivers the ring buffer's records until the reader is closed.
// quietUntil is the programs' quiet_until_ns (nil: not writable here).
//
// Once it has read the ring buffer empty after records, it looks again
// after a sleep on a Go timer (sleeping in the reader's own epoll_wait, a
// blocking system call out of the Go runtime's poller, cost more CPU per
// look: with sleeps of 1-8 ms on a shared machine, 99-103 µs of monitor CPU per exec of a
// storm against 59 µs on the timer, in alternating runs on the shared
// machine), reading without waiting, until a look finds nothing; then it waits in the reader
// (epoll_wait) for the kernel to wake it, up to the poll interval. The
// first sleep after a wakeup is the wakeup gap; each look that finds
// records doubles it, up to burstGaps gaps, and longBurstGaps once the
// burst has lasted longBurstAfter gaps at stormRate or more, so that a
// storm costs about ten looks a second, not a thousand (see sleepCap).
func (s *Source) readLoop(stop <-chan struct{}, rd *ringbuf.Reader, dec *decoder, sink methods.Sink, lostMap *ebpf.Map, quietUntil *ebpf.Variable) {
	defer s.wg.Done()
	var (
		rec       ringbuf.Record
		lastLost  uint64
		loss      pendingLoss // seen in the kernel's counters, not yet reported
		poll      = s.cfg.poll()
		gap       = min(s.cfg.wakeupGap(), pollInterval)
		caps      = s.cfg.burstSleep(gap)
		burstAt   time.Time // when the reader first found the ring buffer empty in this burst
		looked    int       // bytes read since the ring buffer was last found empty
		records   int       // records read since then (> 0 with a gap: records that did not wake the reader may follow)
		emptyAt   time.Time // when the ring buffer was last found empty
		crowded   = rd.BufferSize() / 4
		sleep     time.Duration // > 0: look again after sleep, without waiting for a wakeup
		empty     bool          // the last read found the ring buffer empty
		nextCheck = time.Now().Add(pollInterval)
		timer     = time.NewTimer(0)
	)
	defer timer.Stop()
	flusher, _ := sink.(methods.Flusher)
	flush := func(idle bool) {
		if flusher != nil {
			flusher.Flush(idle)
		}
	}
	for {
		if sleep > 0 && empty {
			// Records submitted within sleep from now need not wake the
			// reader (see snooze): it looks again after sleep.
			readerSnooze(quietUntil, sleep)
			timer.Reset(sleep)
			select {
			case <-timer.C:
			case <-stop:
				sleep = 0 // the reader is being closed: wait for it
			}
		}
		if sleep > 0 || (gap > 0 && records > 0) {
			// Records that did not wake the reader may follow: read what is
			// there, without waiting.
			rd.SetDeadline(time.Now())
		} else {
			// The reader waits in whole milliseconds, rounded down
			// (epoll_wait): one more makes the wait end after poll.
			rd.SetDeadline(time.Now().Add(poll + time.Millisecond))
		}
		err := rd.ReadInto(&rec)
		empty = false
		switch {
		case err == nil:
			loss.read(&rec)
			looked += recordBytes(&rec)
			records++
			if k := kindOf(rec.RawSample); int(k) < recKinds {
				s.c.records[k].Add(1)
			}
			ev, err := dec.decode(rec.RawSample)
			if err != nil {
				s.c.errors.Add(1)
				s.log.Debug("ebpf: skipped a record", "err", err)
			} else if ev != nil {
				sink.Event(ev)
				s.c.events.Add(1)
			}
			if gap <= 0 {
				flush(true) // woken for every record: no batches
			}
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The reader returns the timeout once it has read the ring
			// buffer empty.
			now := time.Now()
			if sleep == 0 {
				burstAt = now
			}
			storm := float64(records) >= stormRate*now.Sub(emptyAt).Seconds()
			sleep = lookAgain(sleep, gap > 0 && records > 0, gap, sleepCap(caps, now.Sub(burstAt), sleep, storm, looked > crowded))
			looked, records, emptyAt = 0, 0, now
			empty = true
			loss.drained()
			// A look ends: the sink hands on what it read (the looks
			// are already few in a burst, and a lone exec's event must
			// not wait for the next).
			flush(true)
		case errors.Is(err, ringbuf.ErrClosed):
			flush(true)
			loss.lost += s.checkLost(lostMap, &lastLost)
			loss.drained() // nothing more will be read
			s.reportLoss(sink, &loss)
			return
		default:
			s.c.errors.Add(1)
			s.log.Warn("ebpf: read the ring buffer", "err", err)
			time.Sleep(pollInterval)
		}
		if now := time.Now(); !now.Before(nextCheck) {
			nextCheck = now.Add(pollInterval)
			if n := s.checkLost(lostMap, &lastLost); n > 0 {
				loss.seen(n)
			}
		}
		s.reportLoss(sink, &loss)
	}
}

// The default caps of the reader's sleep between two looks at the ring
// buffer through a burst (Config.BurstSleep sets one cap instead), in wakeup
// gaps: at most burstGaps (16 ms with the default gap) until the burst has
// lasted longBurstAfter gaps (64 ms), then at most longBurstGaps (128 ms)
// while its records come at stormRate or more.
// Each look costs the monitor a few hundred µs on the development VM,
// mostly the Go runtime's: the timer, the threads it wakes for the reader,
// the consumer and the detailer, and sysmon woken from its deep sleep
// (about 14 context switches a look; README, "Measured here"). A 1,000-exec
// storm took about 60 looks with the 16 ms cap throughout, 12 with 200 ms;
// so short bursts keep the 16 ms cap (events at most about 16 ms late),
// and a storm that lasts goes on at the longer cap. The 16 ms cap is under
// the 20 ms a lone exec is allowed (TestLoneExecLatency in procmon); 128
// ms keeps a storm's events well within the 200 ms poll interval. A look
// that read more than a quarter of the ring buffer halves the sleep
// instead (sleepCap): a /bin/true takes about 1.1 KB of it (its fork,
// exec and exit records), a process with the longest path, arguments and
// working directory about 25 KB, so 8 MiB holds 128 ms of about 60,000 of
// the former a second, but only of 2,600 of the latter.
const (
	burstGaps      = 16
	longBurstAfter = 64
	longBurstGaps  = 128
)

// burstCaps are the reader's longest sleeps between looks through a burst
// (see burstGaps): short until the burst has lasted after, then long.
type burstCaps struct{ short, long, after time.Duration }

// at returns the longest sleep in a burst that has lasted age.
func (c burstCaps) at(age time.Duration) time.Duration {
	if age < c.after {
		return c.short
	}
	return c.long
}

// stormRate is the rate of records (per second, since the look before)
// at which a look lets the sleep grow past the short cap (burstCaps.at):
// about 700 short-lived processes a second. A slower trickle of records
// (a busy machine's background) keeps every look finding some, so that
// the burst never ends: it keeps the short cap, and a lone exec among it
// comes at most about 16 ms late, not 128.
const stormRate = 2000

// sleepCap returns the longest next sleep of a burst that has lasted age:
// caps.at(age) when the records came at stormRate or more (storm), else
// caps.short; or half the last sleep when the look read more than a
// quarter of the ring buffer (crowded): at that rate a sleep twice as
// long could fill it, and the records that find it full are lost.
func sleepCap(caps burstCaps, age, last time.Duration, storm, crowded bool) time.Duration {
	switch {
	case crowded:
		return last / 2
	case storm:
		return caps.at(age)
	}
	return caps.short
}

// lookAgain returns how long the reader sleeps before it looks at the ring
// buffer again (0: it waits for the kernel to wake it), given the last
// sleep (0: none, the reader was woken or is starting) and whether records
// were read since the ring buffer was last found empty. After a wakeup the
// reader sleeps one gap; each look that finds records doubles the sleep, up
// to burst (sleepCap), never under one gap; a look that finds nothing ends
// the looking. gap <= 0 (the kernel wakes the reader for every record)
// never sleeps.
func lookAgain(last time.Duration, read bool, gap, burst time.Duration) time.Duration {
	switch {
	case gap <= 0 || !read:
		return 0
	case last == 0:
		return gap
	}
	return max(gap, min(2*last, burst, pollInterval))
}

// readerSnooze is snooze; TestWakeupGap turns it off to see the kernel's
// own writes.
var readerSnooze = snooze

// snooze sets the programs' quiet_until_ns to now + sleep (CLOCK_MONOTONIC,
// as bpf_ktime_get_ns), so that records submitted while the reader sleeps
// do not wake it: it looks at the ring buffer once sleep has passed. It is
// a store into the programs' memory-mapped global data, no system call.
// Without it, a record that comes after the gap since the kernel last woke
// the reader wakes it (an inter-processor interrupt in the submitting
// process) even while the reader is polling: two wakeups per short-lived
// process (its fork and its exit), where the reader polling through a
// storm needs none. A nil or unwritable variable is left alone.
func snooze(quietUntil *ebpf.Variable, sleep time.Duration) {
	if quietUntil == nil || quietUntil.ReadOnly() {
		return
	}
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) == nil {
		_ = quietUntil.Set(uint64(ts.Nano() + sleep.Nanoseconds()))
	}
}

// pendingLoss is a loss the kernel's counters showed and the sink has not
// been told of yet. The loss is reported once the records that were queued
// when it was seen (which hold every record submitted before the lost ones)
// have been delivered: the monitor's repair then reads /proc after the
// events that came before the lost ones, not while they are still queued.
// (Repaired while they were queued, a process whose fork was still in the
// ring buffer and whose exit was lost stayed live in the cache for tens of
// seconds.) The first record read after the loss was seen tells how many
// bytes follow it (ringbuf.Record.Remaining, from a producer position read
// after the loss); the loss is due once those are read, or the ring buffer
// is found empty.
type pendingLoss struct {
	lost   uint64 // records lost, not yet reported
	behind int    // bytes still to read before reporting, once known
	known  bool   // a record was read since the loss was seen: behind is set
}

// seen adds n records lost.
func (p *pendingLoss) seen(n uint64) {
	p.lost += n
	p.known = false
}

// read counts a record read from the ring buffer.
func (p *pendingLoss) read(rec *ringbuf.Record) {
	switch {
	case p.lost == 0:
	case !p.known:
		p.behind, p.known = rec.Remaining, true
	default:
		p.behind -= recordBytes(rec)
	}
}

// recordBytes returns the room a record took in the ring buffer: the
// kernel stores it with an 8-byte header, padded to 8 bytes.
func recordBytes(rec *ringbuf.Record) int { return 8 + (len(rec.RawSample)+7)&^7 }

// drained notes that the ring buffer was found empty.
func (p *pendingLoss) drained() { p.behind, p.known = 0, true }

// due reports whether the loss is to be reported now.
func (p *pendingLoss) due() bool { return p.lost > 0 && p.known && p.behind <= 0 }

// reportLoss tells the sink of a pending loss whose backlog has been read.
func (s *Source) reportLoss(sink methods.Sink, p *pendingLoss) {
	if !p.due() {
		return
	}
	s.c.lost.Add(p.lost)
	s.c.lostTimes.Add(1)
	sink.Lost(p.lost, "ring buffer full")
	p.lost = 0
}

// checkLost reads the kernel's per-CPU loss counters and returns how many
// records were lost since the last check.
func (s *Source) checkLost(m *ebpf.Map, last *uint64) uint64 {
	var total uint64
	for k := range uint32(recKinds) {
		var perCPU []uint64
		if err := m.Lookup(k, &perCPU); err != nil {
			continue
		}
		var n uint64
		for _, v := range perCPU {
			n += v
		}
		s.c.lostKinds[k].Store(n)
		total += n
	}
	if total <= *last {
		return 0
	}
	d := total - *last
	*last = total
	return d
}

// gcLoop garbage-collects the map of executable paths every GCPeriod,
// until ctx ends (Start's context, or Close).
func (s *Source) gcLoop(ctx context.Context, exes *ebpf.Map) {
	defer s.wg.Done()
	loop.Every(ctx, s.cfg.GCPeriod, func() {
		n, err := gcExePaths(exes, procfs.DefaultRoot)
		s.c.gcRuns.Add(1)
		s.c.gcRemoved.Add(uint64(n))
		if err != nil {
			s.log.Warn("ebpf: garbage-collect the map of executable paths", "err", err)
		}
	})
}

// Close detaches the programs, stops the reader and waits for the
// source's goroutines. It may be called more than once.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateRunning {
		s.state = stateClosed
		return nil
	}
	s.state = stateClosed
	s.stopCtx()
	s.cancel()
	errRd := s.rd.Close()
	s.wg.Wait()
	errObj := s.obj.close()
	s.obj, s.rd = nil, nil
	return errors.Join(errRd, errObj)
}

// Stats returns the source's counters: events delivered, records the kernel
// lost (ring buffer full) and the times a loss was reported, records that
// could not be decoded.
func (s *Source) Stats() methods.Stats {
	return methods.Stats{
		Events:    s.c.events.Load(),
		Lost:      s.c.lost.Load(),
		LostTimes: s.c.lostTimes.Load(),
		Errors:    s.c.errors.Load(),
	}
}

// Counters returns the source's detailed counters.
func (s *Source) Counters() Counters {
	return Counters{
		Exec: s.c.records[recExec].Load(), Fork: s.c.records[recFork].Load(),
		Exit: s.c.records[recExit].Load(), Syscall: s.c.records[recSyscall].Load(),
		LSM:      s.c.records[recLSM].Load(),
		LostExec: s.c.lostKinds[recExec].Load(), LostFork: s.c.lostKinds[recFork].Load(),
		LostExit: s.c.lostKinds[recExit].Load(), LostSyscall: s.c.lostKinds[recSyscall].Load(),
		LostLSM: s.c.lostKinds[recLSM].Load(),
		PathCut: s.c.pathCut.Load(), ArgsCut: s.c.argsCut.Load(),
		Completed: s.c.completed.Load(), Incomplete: s.c.incomplete.Load(),
		Seeded: s.c.seeded.Load(), GCRuns: s.c.gcRuns.Load(), GCRemoved: s.c.gcRemoved.Load(),
	}
}

// Tier returns the tier running (TierLSM or TierTracepoint), or "" before
// Start or after a failed Start.
func (s *Source) Tier() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.obj == nil {
		return ""
	}
	return s.report.Tier
}

// Report returns the tier probe's outcome of the last Start (the zero value
// before Start).
func (s *Source) Report() TierReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.report
}

// Status returns one line saying which tier runs and why the other was
// skipped, e.g. "tracepoint tier: lsm tier skipped: kernel 6.1 < 6.2".
func (s *Source) Status() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.obj != nil:
		return s.report.String()
	case s.report.Tier != "":
		return "not running; probe said: " + s.report.String()
	}
	return "not started"
}

// Programs returns the names of the attached BPF programs, in attach order.
func (s *Source) Programs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.obj == nil {
		return nil
	}
	return slices.Clone(s.obj.attached)
}

// processBoot returns the boot instant exactly as package process computes
// it (so StartedAt matches the other methods'), derived from this process's
// own entry; procfs.BootTime when that fails.
func processBoot() time.Time {
	p := process.NewProcess(os.Getpid(), "")
	if p.Starttime != 0 && !p.StartedAt.IsZero() {
		return p.StartedAt.Add(-time.Duration(p.Starttime) * (time.Second / procfs.UserHZ))
	}
	return procfs.BootTime()
}
