package procmon

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/proctrack/proctrack/cache"
	"github.com/proctrack/proctrack/methods"
	methodebpf "github.com/proctrack/proctrack/methods/ebpf"
	"github.com/proctrack/proctrack/procmon/process"
)

// stalledSource is a real Source whose events wait, on their way to the
// monitor, until release is closed: a monitor too slow for a storm, which a
// kernel does not give on demand. The method's own buffer then overflows
// and holds a backlog when delivery resumes.
type stalledSource struct {
	methods.Source
	release chan struct{}
}

func (s *stalledSource) Start(ctx context.Context, sink methods.Sink) error {
	return s.Source.Start(ctx, stalledSink{sink, s.release})
}

type stalledSink struct {
	methods.Sink
	release chan struct{}
}

func (s stalledSink) Event(ev *process.Event) {
	<-s.release
	s.Sink.Event(ev)
}

// TestEbpfLossRepairAfterBacklog: after an eBPF ring buffer overflow, the
// processes whose exit records were lost are marked exited once the backlog
// is read (well within 3 s). The repair scan used
// to run while the backlog was still being read: processes whose fork was
// queued behind the scan and whose exit was lost stayed live for 47-48 s.
func TestEbpfLossRepairAfterBacklog(t *testing.T) {
	release := make(chan struct{})
	orig := sources[MethodEbpf]
	sources[MethodEbpf] = func(cfg Config) (methods.Source, error) {
		src, err := orig(cfg)
		if err != nil {
			return nil, err
		}
		return &stalledSource{Source: src, release: release}, nil
	}
	t.Cleanup(func() { sources[MethodEbpf] = orig })
	m := startOnly(t, MethodEbpf, Config{
		Ebpf:   methodebpf.Config{RingBufferSize: 1 << 20, Hooks: map[string]bool{}},
		Logger: slog.New(slog.DiscardHandler),
	})
	defer m.Close()
	defer func() { // a failed storm: let the source's reader end
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	go func() {
		for range m.Events() {
		}
	}()

	// A first storm fills part of the stalled ring buffer, a second one
	// overflows it: the records of the first processes of both wait in it,
	// the rest are lost, among them the exits of the second storm's loops,
	// whose forks are queued deep enough to be read well after the loss is
	// seen.
	tag := "lossrepair" + strconv.Itoa(int(time.Now().UnixNano()%1e6))
	loops := map[int]bool{}
	for _, n := range []int{400, 3000} {
		stormAsync(t, n, tag, func(pids []int) {
			for _, p := range pids {
				loops[p] = true
			}
		})
	}
	released := time.Now()
	close(release)
	waitFor(t, 10*time.Second, func() bool { return m.Stats().LossReports > 0 })
	if m.Stats().Lost == 0 {
		t.Fatalf("no records lost: %+v", m.Stats())
	}

	// Every cached process of the storm (the loops and their children) has
	// exited: none may stay live once the repair has run.
	stale := func() []string {
		var out []string
		m.Cache().Range(func(it cache.ExecEventItem) bool {
			if it.Exited != 0 {
				return true
			}
			pid, ppid, key := it.Proc.ID, it.Proc.PPID, it.Proc.Key()
			if !loops[pid] && !loops[ppid] {
				return true
			}
			if k, err := process.CurrentKey(pid); err != nil || k != key {
				out = append(out, fmt.Sprint(key))
			}
			return true
		})
		return out
	}
	reported := time.Since(released)
	// A bound generous for a shared machine: the backlog takes tens of
	// milliseconds to read, the repair scan about as long. (Once the loss
	// is reported, the first time nothing is stale is when the repair has
	// run: the backlog is read by then.)
	repaired := time.Duration(-1)
	for time.Since(released) < 3*time.Second {
		if repaired < 0 && len(stale()) == 0 {
			repaired = time.Since(released)
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := m.Stats()
	if s := stale(); len(s) > 0 {
		t.Fatalf("%d exited processes of the storm still live in the cache 3 s after the backlog was released (e.g. %v); stats %+v",
			len(s), s[:min(5, len(s))], st)
	}
	t.Logf("loss reported %v and cache repaired %v after the backlog was released; lost %d in %d reports, %d reconciliations",
		reported.Round(time.Millisecond), repaired.Round(time.Millisecond), st.Lost, st.LossReports, st.Reconciliations)
}
