package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestTreeHasThisProcess(t *testing.T) {
	var buf bytes.Buffer
	if err := run(&buf, 0, false); err != nil {
		t.Fatal(err)
	}
	me := strconv.Itoa(os.Getpid())
	found := false
	for _, l := range strings.Split(buf.String(), "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[0] == me && f[1] == strconv.Itoa(os.Getppid()) {
			found = true
		}
	}
	if !found {
		t.Errorf("pid %s not in the tree:\n%s", me, buf.String())
	}
}

func TestAncestryJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := run(&buf, os.Getpid(), true); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var last struct {
		PID  int    `json:"pid"`
		Path string `json:"path"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	if last.PID != os.Getpid() || last.Path != exe {
		t.Errorf("last line is %+v, want this process %d %s", last, os.Getpid(), exe)
	}
	if len(lines) < 2 {
		t.Errorf("no ancestors printed: %s", buf.String())
	}
}
