package floor

import (
	"path/filepath"
	"testing"
)

func TestStormWritesPids(t *testing.T) {
	bin := Build(t, "storm")
	prefix := filepath.Join(t.TempDir(), "pids")
	if rate := Storm(t, bin, 20, 2, prefix); rate <= 0 {
		t.Fatalf("rate %v", rate)
	}
	pids, err := Pids(prefix, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != 20 {
		t.Fatalf("%d pids written, want 20", len(pids))
	}
	for _, p := range pids {
		if p <= 0 {
			t.Fatalf("pid %d: a fork failed", p)
		}
	}
}

func TestFields(t *testing.T) {
	f := Fields("RESULT storm=20000 named_right=18000 cpu=0.900")
	if f["storm"] != 20000 || f["named_right"] != 18000 || f["cpu"] != 0.9 {
		t.Fatalf("%v", f)
	}
}
