// Package loop runs the background goroutines of proctrack's long-lived
// values (the cache's collector, the socket resolver's cleaner, the proc
// method's scanner, the eBPF method's map collector, the seccomp watcher)
// under one lifecycle rule:
//
// A value runs from Start until its Start context is done or Close is
// called, whichever comes first. Then its goroutines have returned, its
// stop function (closing channels and descriptors) has run once, and every
// later Start returns ErrClosed; Close may be called any number of times.
//
// Every is the ticker loop those goroutines share.
package loop

import (
	"context"
	"errors"
	"sync"
	"time"
)

var (
	// ErrClosed is returned by Start once a Runner has stopped (its
	// context ended or Close was called), or was closed before Start.
	ErrClosed = errors.New("closed")
	// ErrStarted is returned by Start while a Runner runs.
	ErrStarted = errors.New("already started")
)

// Every calls fn every period until ctx is done, then returns. The first
// call is one period after Every is called.
func Every(ctx context.Context, period time.Duration, fn func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

const (
	stateNew = iota
	stateRunning
	stateClosed
)

// Runner runs a value's goroutines once. The zero value is ready to use.
type Runner struct {
	mu     sync.Mutex
	state  int
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs each fn in its own goroutine with a context that ends when ctx
// ends or Close is called. Once that context has ended and every fn has
// returned, stop runs (if not nil), and then Done is closed. Start returns
// ErrStarted while the Runner runs and ErrClosed after.
func (r *Runner) Start(ctx context.Context, stop func(), fns ...func(ctx context.Context)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.state {
	case stateRunning:
		return ErrStarted
	case stateClosed:
		return ErrClosed
	}
	r.state = stateRunning
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	var wg sync.WaitGroup
	for _, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(ctx)
		}()
	}
	go func() {
		<-ctx.Done()
		wg.Wait()
		if stop != nil {
			stop()
		}
		r.mu.Lock()
		r.state = stateClosed
		r.mu.Unlock()
		close(r.done)
	}()
	return nil
}

// Close ends the Runner's context and waits until its goroutines and stop
// function have returned. A Runner never started is closed: Start then
// returns ErrClosed. Close always returns nil; it has an error result so
// that it can be a value's Close.
func (r *Runner) Close() error {
	r.mu.Lock()
	if r.state == stateNew {
		r.state = stateClosed
	}
	cancel, done := r.cancel, r.done
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return nil
}

// Running reports whether the Runner was started and has not stopped yet.
func (r *Runner) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state == stateRunning
}

// Done returns a channel closed once the Runner has stopped after Start:
// its goroutines and stop function have returned. It is nil before Start.
func (r *Runner) Done() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done
}
