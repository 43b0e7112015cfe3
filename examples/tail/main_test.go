package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTailJSON(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var out, status syncBuffer
	done := make(chan error)
	go func() { done <- run(ctx, &out, &status, "proc", true) }()
	time.Sleep(700 * time.Millisecond) // the start scan, then one interval
	cmd := exec.Command("/bin/sleep", "1.5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(status.String(), "monitoring with proc") {
		t.Errorf("status output: %q", status.String())
	}
	found := false
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r struct {
			Kind    string `json:"kind"`
			PID     int    `json:"pid"`
			Process struct {
				Path string   `json:"path"`
				Args []string `json:"args"`
			} `json:"process"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("not JSON: %q: %v", l, err)
		}
		if r.Kind == "exec" && r.PID == cmd.Process.Pid && strings.HasSuffix(r.Process.Path, "/sleep") && len(r.Process.Args) == 2 {
			found = true
		}
	}
	if !found {
		t.Errorf("no exec event for pid %d in:\n%s", cmd.Process.Pid, out.String())
	}
}
