package loop

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
)

// TestRunnerClose: Close waits for the goroutines and the stop function,
// and Start after Close is ErrClosed.
func TestRunnerClose(t *testing.T) {
	var r Runner
	var running, stopped atomic.Int32
	err := r.Start(context.Background(), func() { stopped.Add(1) }, func(ctx context.Context) {
		running.Add(1)
		<-ctx.Done()
		running.Add(-1)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), nil); !errors.Is(err, ErrStarted) {
		t.Errorf("second Start: %v, want ErrStarted", err)
	}
	if !r.Running() {
		t.Error("not running after Start")
	}
	_ = r.Close()
	if running.Load() != 0 || stopped.Load() != 1 {
		t.Errorf("after Close: %d goroutines running, stop ran %d times", running.Load(), stopped.Load())
	}
	_ = r.Close()
	if stopped.Load() != 1 {
		t.Errorf("stop ran %d times", stopped.Load())
	}
	if err := r.Start(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v, want ErrClosed", err)
	}
	if r.Running() {
		t.Error("running after Close")
	}
}

// TestRunnerContext: the end of the Start context stops the Runner as
// Close does.
func TestRunnerContext(t *testing.T) {
	var r Runner
	var stopped atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Start(ctx, func() { stopped.Add(1) }, func(ctx context.Context) { <-ctx.Done() }); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-r.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the context ended")
	}
	if stopped.Load() != 1 {
		t.Errorf("stop ran %d times", stopped.Load())
	}
	if err := r.Start(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after the context ended: %v, want ErrClosed", err)
	}
	_ = r.Close()
}

// TestCloseBeforeStart: a Runner closed before Start never runs.
func TestCloseBeforeStart(t *testing.T) {
	var r Runner
	_ = r.Close()
	if err := r.Start(context.Background(), nil, func(context.Context) { t.Error("ran") }); !errors.Is(err, ErrClosed) {
		t.Errorf("Start: %v, want ErrClosed", err)
	}
	if r.Done() != nil {
		t.Error("Done not nil before Start")
	}
}

// TestEvery counts the calls of a short period and checks Every returns
// when its context ends.
func TestEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	returned := make(chan struct{})
	go func() {
		Every(ctx, time.Millisecond, func() {
			if n.Add(1) == 3 {
				cancel()
			}
		})
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Every did not return after its context ended")
	}
	if n.Load() != 3 {
		t.Errorf("%d calls, want 3", n.Load())
	}
}

// TestCycles: 200 runs leave no goroutine behind.
func TestCycles(t *testing.T) {
	proctest.CheckCycles(t, 200, func(i int) {
		var r Runner
		ctx, cancel := context.WithCancel(context.Background())
		if err := r.Start(ctx, nil, func(ctx context.Context) { Every(ctx, time.Millisecond, func() {}) }); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			cancel()
			<-r.Done()
		}
		_ = r.Close()
		cancel()
	})
}

// TestShared: the value is made for the first user and closed after the
// last; a failed open counts no user.
func TestShared(t *testing.T) {
	var s Shared[*int]
	opens, closes := 0, 0
	open := func() (*int, error) { opens++; v := opens; return &v, nil }
	closeFn := func(*int) error { closes++; return nil }
	a, _ := s.Acquire(open)
	b, _ := s.Acquire(open)
	if a != b || opens != 1 {
		t.Fatalf("two users: %p %p, %d opens", a, b, opens)
	}
	_ = s.Release(closeFn)
	if closes != 0 {
		t.Fatal("closed with a user left")
	}
	_ = s.Release(closeFn)
	_ = s.Release(closeFn) // without an Acquire: nothing
	if closes != 1 {
		t.Fatalf("%d closes, want 1", closes)
	}
	if _, err := s.Acquire(func() (*int, error) { return nil, errors.New("no") }); err == nil {
		t.Fatal("open's error not returned")
	}
	if c, _ := s.Acquire(open); *c != 2 {
		t.Fatalf("after a failed open: %d, want a second open", *c)
	}
}
