package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/procmon"
)

func TestMain(m *testing.M) {
	if beClient() {
		return
	}
	os.Exit(m.Run())
}

// TestLoopEveryMethod runs the loop under each method and checks that it
// names the client (a copy of the test binary, child of this process) with
// its md5 and its parent.
func TestLoopEveryMethod(t *testing.T) {
	exe, err := filepath.EvalSymlinks(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	md5 := proctest.CoreutilsSum(t, "md5sum", exe)
	for _, method := range procmon.Methods {
		t.Run(method, func(t *testing.T) {
			if method != procmon.MethodProc {
				proctest.RequireRoot(t, "the "+method+" method")
			}
			var out bytes.Buffer
			ran, err := run(&out, method)
			if ran != method {
				t.Skipf("%s does not run here:\n%s", method, out.String())
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if !strings.Contains(out.String(), " "+exe+" md5 "+md5+"\n") ||
				!strings.Contains(out.String(), fmt.Sprintf("  parent pid %d ", os.Getpid())) {
				t.Errorf("want the client %s (md5 %s) with parent %d:\n%s", exe, md5, os.Getpid(), out.String())
			}
		})
	}
}
