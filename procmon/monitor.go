package procmon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proctrack/proctrack/cache"
	"github.com/proctrack/proctrack/methods"
	"github.com/proctrack/proctrack/methods/audit"
	methodebpf "github.com/proctrack/proctrack/methods/ebpf"
	"github.com/proctrack/proctrack/methods/netlink"
	"github.com/proctrack/proctrack/procmon/process"
	"github.com/proctrack/proctrack/rules"
)

// Methods lists the monitoring methods, best first: the fallback ladder.
var Methods = []string{MethodEbpf, MethodNetlink, MethodAudit, MethodProc}

// ErrUnknownMethod is returned for a method name not in Methods.
var ErrUnknownMethod = errors.New("unknown monitoring method")

// ErrClosed is returned by Start and SetMethod once the monitor has ended:
// Close was called, or the context given to Start is done.
var ErrClosed = errors.New("procmon: monitor closed")

// ErrUnavailable is matched by the error of a method that cannot run here.
var ErrUnavailable = methods.ErrUnavailable

// ErrSandbox is matched by the error of Start when sandbox mode is asked
// for and cannot be enforced: only the eBPF method's LSM tier can deny,
// and the monitor never falls back to a method that would only watch.
var ErrSandbox = methodebpf.ErrSandbox

// sandbox returns the sandbox modes in force: Ebpf.Sandbox when set, else
// those of the hook blocks (enabled ones, on enabled hooks); nil for none.
func (c *Config) sandbox() map[string]methodebpf.SandboxMode {
	if c.Ebpf.Sandbox != nil {
		return c.Ebpf.Sandbox
	}
	var out map[string]methodebpf.SandboxMode
	for name, h := range c.Hooks {
		hook, _ := rules.CanonicalHook(name)
		if mode := h.mode(hook); mode != methodebpf.SandboxOff {
			if out == nil {
				out = map[string]methodebpf.SandboxMode{}
			}
			out[hook] = mode
		}
	}
	return out
}

// sandboxNeeds says what the sandboxed hooks need: the eBPF LSM tier, or
// only the eBPF method when sched_process_exec is the only one (it kills
// at the exec tracepoint, on both tiers).
func sandboxNeeds(hooks []string) string {
	for _, h := range hooks {
		if h != rules.HookSchedProcessExec {
			return "the eBPF LSM tier"
		}
	}
	return "the eBPF method (either tier)"
}

// sandboxed returns the hooks with a sandbox, sorted.
func (c *Config) sandboxed() []string {
	var hooks []string
	for h, mode := range c.sandbox() {
		if mode != methodebpf.SandboxOff {
			hooks = append(hooks, h)
		}
	}
	slices.Sort(hooks)
	return hooks
}

// Defaults of Config.
const (
	DefaultEventBuffer = 4096
	DefaultDetailDelay = 50 * time.Millisecond
)

// Config configures a Monitor. The zero value monitors with the best method
// available and a cache of its own.
type Config struct {
	// Method is the preferred method; "" means the best (ebpf). Starting
	// tries it and then each method below it in Methods.
	Method string
	// Cache is the process cache the monitor keeps current; nil means a
	// new one made with CacheConfig. The monitor runs the cache's garbage
	// collector while it runs, unless the cache's was already started.
	Cache       *cache.EventsStore
	CacheConfig cache.Config
	// EventBuffer is the capacity of the Events channel. Events that find
	// it full are dropped and counted (Stats.Dropped); the cache is kept
	// current all the same.
	EventBuffer int
	// DetailDelay is how long after an exec the monitor reads the rest of a
	// still-running process (working directory, environment, namespaces,
	// cgroup, file identity). The exec itself is read at once.
	DetailDelay time.Duration
	// ProcInterval is the scan interval of the proc method.
	ProcInterval time.Duration
	// Ebpf configures the eBPF method (tier, privilege hooks, IMA, gc_period).
	Ebpf methodebpf.Config
	// Netlink configures the netlink (proc connector) method.
	Netlink netlink.Config
	// Audit configures the audit method.
	Audit audit.Config
	// Rules are evaluated on every event when the monitor receives it
	// (Event.Matched names those that matched); nil means none.
	Rules *rules.Set
	// Hooks are the configuration file's hook blocks (enabled, sandbox,
	// rules) by hook name. With bprm_check enabled (here or in
	// Ebpf.Hooks) exec events carry Event.Bprm on every method: the eBPF
	// LSM tier's from the kernel, the others' read from the binary's file. Their sandbox blocks (enabled ones on enabled
	// hooks) are enforced unless Ebpf.Sandbox is set: a monitor with a
	// sandbox runs the eBPF LSM tier or does not start (ErrSandbox).
	Hooks map[string]HookConfig
	// Logger receives the monitor's logs; nil means slog.Default().
	Logger *slog.Logger
}

// MethodStatus says what became of one method when the monitor started.
type MethodStatus struct {
	Method string `json:"method"`
	// State is "running", "skipped" (it could not start: see Reason),
	// "stopped" (it ran and was replaced), "failed" (it stopped on its
	// own while running, see Reason, and the monitor fell back to the
	// methods below it) or "not tried" (a method above it runs).
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Fault is, for the running method, the last fault it found in what
	// it set up in the kernel and what it did about it (audit: its rules
	// deleted or audit disabled by another process, restored); see
	// Stats.SourceFaults.
	Fault string `json:"fault,omitempty"`
}

// Status is the outcome of the ladder.
type Status struct {
	Preferred string         `json:"preferred"`
	Running   string         `json:"running"`
	Methods   []MethodStatus `json:"methods"`
}

// Stats are the monitor's counters.
type Stats struct {
	Method          string `json:"method"`
	Events          uint64 `json:"events"`          // events received from the method
	Delivered       uint64 `json:"delivered"`       // events put on the Events channel
	Dropped         uint64 `json:"dropped"`         // events the consumer did not take in time
	Lost            uint64 `json:"lost"`            // events the method reported lost
	LossReports     uint64 `json:"loss_reports"`    // times the method reported a loss
	Reconciliations uint64 `json:"reconciliations"` // /proc scans run to repair the cache
	Incomplete      uint64 `json:"incomplete"`      // exec events whose process was gone before /proc could be read
	SourceErrors    uint64 `json:"source_errors"`   // malformed messages the method skipped
	SourceFaults    uint64 `json:"source_faults"`   // times the method found its kernel setup undone (see MethodStatus.Fault)
	CacheSize       int    `json:"cache_size"`
	// Losses are Lost and LossReports by the reason the method gave
	// ("ring buffer full", netlink's ReasonOverflow, ...).
	Losses map[string]Loss `json:"losses,omitempty"`
}

// Loss counts the losses a method reported for one reason.
type Loss struct {
	Reports uint64 `json:"reports"` // times reported
	Events  uint64 `json:"events"`  // events lost (0 where the method cannot count them)
}

// Monitor tracks processes with the best method available and keeps a
// process cache current. Create it with New; Start it; read Events; Close it.
//
// A Monitor runs until the context given to Start is done or Close is
// called, whichever comes first. Then it has ended for good: its method and
// goroutines have stopped, Events is closed (a range loop over it ends),
// Method returns "", Status reports the method "stopped", Start and
// SetMethod return ErrClosed, and Close returns nil. The cache keeps its
// content.
type Monitor struct {
	cfg   Config
	log   *slog.Logger
	cache *cache.EventsStore

	events chan Event
	sendMu sync.RWMutex // read-held to send on events, held to close it
	ended  bool         // events is closed; guarded by sendMu

	mu         sync.Mutex
	src        methods.Source
	preferred  string
	status     []MethodStatus
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	ownsGC     bool
	closed     bool          // the monitor has ended
	watchDone  chan struct{} // closed when the goroutine watching Start's context returns
	prevStats  methods.Stats // counters of sources that ran before the current one
	reader     *process.Reader
	bprm       bool // fill Event.Bprm of execs from the file (bprm_check on)
	reconcileC chan struct{}

	// nsBefore holds, by process.Key, the credentials a detail refresh
	// replaced when the process had entered another user namespace: the
	// userns event that may still be on its way needs the credentials of
	// before (see onUserNS).
	nsBefore sync.Map
	details  detailQueue

	received, delivered, dropped, lost, lossReports atomic.Uint64
	reconciliations, incomplete                     atomic.Uint64
	execCredReads                                   atomic.Uint64 // execCreds' status reads (tests)
	lossMu                                          sync.Mutex
	losses                                          map[string]Loss
}

// New returns a Monitor configured by cfg. It starts nothing.
func New(cfg Config) (*Monitor, error) {
	if cfg.Method != "" && !slices.Contains(Methods, cfg.Method) {
		return nil, fmt.Errorf("%w %q (want one of %v)", ErrUnknownMethod, cfg.Method, Methods)
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = DefaultEventBuffer
	}
	if cfg.DetailDelay <= 0 {
		cfg.DetailDelay = DefaultDetailDelay
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	c := cfg.Cache
	if c == nil {
		c = cache.New(cfg.CacheConfig)
	}
	return &Monitor{
		cfg:        cfg,
		log:        log,
		cache:      c,
		events:     make(chan Event, cfg.EventBuffer),
		preferred:  cfg.Method,
		reader:     process.NewReader(),
		bprm:       cfg.Hooks[rules.HookBprmCheck].Enabled || cfg.Ebpf.Hooks[rules.HookBprmCheck],
		reconcileC: make(chan struct{}, 1),
	}, nil
}

// Cache returns the process cache the monitor keeps current.
func (m *Monitor) Cache() *cache.EventsStore { return m.cache }

// Events returns the channel of events. It is closed when the monitor ends:
// by Close, or when the context given to Start is done.
func (m *Monitor) Events() <-chan Event { return m.events }

// Start starts monitoring: it tries the preferred method and then each one
// below it until one starts, then reads /proc into the cache (the method is
// started first, so no process is missed between the two). It fails only if
// no method can start; Status says why each was skipped. The monitor runs
// until ctx is done or Close is called (see Monitor).
func (m *Monitor) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if m.ctx != nil {
		return errors.New("procmon: monitor already started")
	}
	m.ctx, m.cancel = context.WithCancel(ctx)
	m.ownsGC = m.cache.Start(m.ctx) == nil
	m.wg.Add(2)
	go m.reconciler(m.ctx)
	go m.detailer(m.ctx)
	if err := m.climb(m.preferred); err != nil {
		m.stopLocked()
		return err
	}
	register(m.cache)
	m.watchDone = make(chan struct{})
	go m.watch(m.ctx, m.watchDone)
	return nil
}

// watch ends the monitor when ctx, the context of the running monitor, is
// done: the caller's context of Start, or Close cancelling it.
func (m *Monitor) watch(ctx context.Context, done chan struct{}) {
	defer close(done)
	<-ctx.Done()
	_ = m.end()
}

// SetMethod switches to another preferred method while running (or sets it
// before Start): the current method is stopped and the ladder is climbed
// again from method. The cache is kept, and /proc is read again to cover the
// switch. With sandbox mode on, only ebpf (or "") is accepted: another
// method is refused (ErrSandbox) and the running one kept.
func (m *Monitor) SetMethod(method string) error {
	if method != "" && !slices.Contains(Methods, method) {
		return fmt.Errorf("%w %q (want one of %v)", ErrUnknownMethod, method, Methods)
	}
	if hooks := m.cfg.sandboxed(); len(hooks) > 0 && method != "" && method != MethodEbpf {
		// Refused before the running method stops: the sandbox stays.
		return fmt.Errorf("procmon: %w: sandbox mode on %s needs %s, and method %s was asked for", ErrSandbox, strings.Join(hooks, ", "), sandboxNeeds(hooks), method)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.preferred = method
	if m.ctx == nil {
		return nil
	}
	if m.src != nil {
		m.stopSource(m.src)
		for i := range m.status {
			if m.status[i].State == "running" {
				m.status[i].State = "stopped"
			}
		}
		m.src = nil
	}
	return m.climb(method)
}

// climb tries each method from the preferred one down. The caller holds mu.
func (m *Monitor) climb(preferred string) error {
	from := 0
	if preferred != "" {
		from = slices.Index(Methods, preferred)
	}
	m.status = m.status[:0]
	for _, name := range Methods[:from] {
		m.status = append(m.status, MethodStatus{Method: name, State: "not tried", Reason: "better than the preferred method " + preferred})
	}
	ladder := Methods[from:]
	if hooks := m.cfg.sandboxed(); len(hooks) > 0 {
		// Only the eBPF LSM tier can deny: no fallback.
		if ladder[0] != MethodEbpf {
			err := fmt.Errorf("procmon: %w: sandbox mode on %s needs %s, and method %s was asked for", ErrSandbox, strings.Join(hooks, ", "), sandboxNeeds(hooks), ladder[0])
			m.status = append(m.status, MethodStatus{Method: ladder[0], State: "skipped", Reason: err.Error()})
			return err
		}
		ladder = ladder[:1]
	}
	var reasons []error
	for _, name := range ladder {
		if m.src != nil {
			m.status = append(m.status, MethodStatus{Method: name, State: "not tried"})
			continue
		}
		src, err := m.newSource(name)
		if err == nil {
			var sk methods.Sink = sink{m}
			if _, ok := src.(methods.Batcher); ok {
				sk = &batchSink{m: m}
			}
			err = src.Start(m.ctx, sk)
		}
		if err != nil {
			m.status = append(m.status, MethodStatus{Method: name, State: "skipped", Reason: err.Error()})
			reasons = append(reasons, err)
			m.log.Debug("procmon: method skipped", "method", name, "reason", err)
			continue
		}
		m.src = src
		m.status = append(m.status, MethodStatus{Method: name, State: "running"})
		m.log.Debug("procmon: monitoring", "method", name)
		m.watchSource(src)
	}
	if m.src == nil {
		if hooks := m.cfg.sandboxed(); len(hooks) > 0 {
			return fmt.Errorf("procmon: %w: sandbox mode on %s cannot be enforced: %w", ErrSandbox, strings.Join(hooks, ", "), errors.Join(reasons...))
		}
		return fmt.Errorf("procmon: no monitoring method could start: %w", errors.Join(reasons...))
	}
	m.reconcile()
	return nil
}

// Method returns the method running, or "" when none runs.
func (m *Monitor) Method() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.src == nil {
		return ""
	}
	return m.src.Name()
}

// Status returns every method tried and why those skipped were skipped.
func (m *Monitor) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Status{Preferred: m.preferred, Methods: slices.Clone(m.status)}
	if m.src != nil {
		st.Running = m.src.Name()
		if f, ok := m.src.(methods.Faulter); ok {
			for i := range st.Methods {
				if st.Methods[i].State == "running" {
					st.Methods[i].Fault = f.LastFault()
				}
			}
		}
	}
	return st
}

// Stats returns the monitor's counters.
func (m *Monitor) Stats() Stats {
	m.mu.Lock()
	src := m.src
	ss := m.prevStats
	m.mu.Unlock()
	st := Stats{
		Events: m.received.Load(), Delivered: m.delivered.Load(), Dropped: m.dropped.Load(),
		Lost: m.lost.Load(), LossReports: m.lossReports.Load(),
		Reconciliations: m.reconciliations.Load(), Incomplete: m.incomplete.Load(),
		CacheSize: m.cache.Len(),
	}
	if src != nil {
		st.Method = src.Name()
		cur := src.Stats()
		ss.Errors += cur.Errors
		ss.Faults += cur.Faults
	}
	st.SourceErrors, st.SourceFaults = ss.Errors, ss.Faults
	m.lossMu.Lock()
	st.Losses = maps.Clone(m.losses)
	m.lossMu.Unlock()
	return st
}

// Close ends the monitor (see Monitor): it stops the method and the
// monitor's goroutines, restores what the method changed on the host, and
// closes the Events channel. The cache keeps its content. Closing an ended
// monitor returns nil.
func (m *Monitor) Close() error {
	err := m.end()
	m.mu.Lock()
	done := m.watchDone
	m.mu.Unlock()
	if done != nil {
		<-done
	}
	return err
}

// end ends the monitor once: the source and the goroutines stop, then the
// Events channel is closed.
func (m *Monitor) end() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	started := m.ctx != nil
	err := m.stopLocked()
	if started {
		unregister(m.cache)
	}
	for i := range m.status {
		if m.status[i].State == "running" {
			m.status[i].State = "stopped"
		}
	}
	m.sendMu.Lock()
	m.ended = true
	close(m.events)
	m.sendMu.Unlock()
	return err
}

// stopLocked stops the source and goroutines. The caller holds mu.
func (m *Monitor) stopLocked() error {
	var err error
	if m.src != nil {
		err = m.stopSource(m.src)
		m.src = nil
	}
	if m.cancel != nil {
		m.cancel()
		m.wg.Wait()
		if m.ownsGC {
			_ = m.cache.Close()
		}
	}
	m.ctx, m.cancel = nil, nil
	return err
}

func (m *Monitor) stopSource(src methods.Source) error {
	err := src.Close()
	s := src.Stats()
	m.prevStats.Errors += s.Errors
	m.prevStats.Faults += s.Faults
	return err
}

// watchSource has the monitor fall back when src, a methods.Failer, stops
// on its own. The caller holds mu.
func (m *Monitor) watchSource(src methods.Source) {
	f, ok := src.(methods.Failer)
	if !ok || f.Done() == nil {
		return
	}
	ctx, done := m.ctx, f.Done()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		select {
		case <-ctx.Done():
			return
		case <-done:
		}
		err := f.Err()
		if err == nil {
			return // closed by the monitor
		}
		// Close and SetMethod hold mu while they stop the source; Close
		// then waits for this goroutine after cancelling ctx.
		for !m.mu.TryLock() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Millisecond):
			}
		}
		defer m.mu.Unlock()
		m.fallBack(src, err)
	}()
}

// fallBack replaces src, which stopped on its own with err, with the best
// method below it. The caller holds mu.
func (m *Monitor) fallBack(src methods.Source, err error) {
	if m.src != src || m.ctx == nil {
		return
	}
	name := src.Name()
	m.log.Error("procmon: method failed; falling back", "method", name, "err", err)
	_ = m.stopSource(src)
	m.src = nil
	failed := MethodStatus{Method: name, State: "failed", Reason: err.Error()}
	i := slices.Index(Methods, name)
	if i < 0 || i+1 == len(Methods) {
		for j := range m.status {
			if m.status[j].Method == name {
				m.status[j] = failed
			}
		}
		m.log.Error("procmon: no method to fall back to", "method", name)
		return
	}
	before := slices.Clone(m.status)
	cerr := m.climb(Methods[i+1])
	// The methods above keep what they were; the failed one says why.
	copy(m.status[:i], before[:i])
	m.status[i] = failed
	if cerr != nil {
		m.log.Error("procmon: no method to fall back to", "err", cerr)
	}
}
