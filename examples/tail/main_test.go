package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/proctrack/proctrack/internal/proctest"
)

func TestTailJSON(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var out, status proctest.SyncBuffer
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
