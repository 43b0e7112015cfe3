package kernel

import (
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

func TestParseRelease(t *testing.T) {
	for rel, want := range map[string]Version{
		"6.18.0-rc2-amd64": {6, 18}, "6.1.0-18-amd64": {6, 1}, "4.14.336": {4, 14}, "3.17": {3, 17}, "6.18.44-fc": {6, 18},
	} {
		if v, err := ParseRelease(rel); err != nil || v != want {
			t.Errorf("ParseRelease(%q) = %v, %v; want %v", rel, v, err, want)
		}
	}
	for _, rel := range []string{"linux", "", "6", "x.y"} {
		if v, err := ParseRelease(rel); err == nil {
			t.Errorf("ParseRelease(%q) = %v, no error", rel, v)
		}
	}
}

// TestRunning checks Running against the release /proc reports.
func TestRunning(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Skip("no /proc/sys/kernel/osrelease:", err)
	}
	want, err := ParseRelease(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := Running(); err != nil || v != want {
		t.Errorf("Running = %v, %v; want %v", v, err, want)
	}
}

func TestLess(t *testing.T) {
	if !(Version{5, 19}).Less(Version{6, 2}) || (Version{6, 2}).Less(Version{6, 2}) || !(Version{6, 1}).Less(Version{6, 2}) {
		t.Error("Less")
	}
	if s := (Version{6, 18}).String(); s != "6.18" {
		t.Errorf("String = %q", s)
	}
}

// TestCheckBPFPrivileges compares the verdict with the effective set the
// kernel reports for this process.
func TestCheckBPFPrivileges(t *testing.T) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		t.Fatal(err)
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	want := has(unix.CAP_SYS_ADMIN) || has(unix.CAP_BPF) && has(unix.CAP_PERFMON)
	err := CheckBPFPrivileges("the test programs")
	if (err == nil) != want {
		t.Errorf("CheckBPFPrivileges = %v with sys_admin=%v bpf=%v perfmon=%v", err, has(unix.CAP_SYS_ADMIN), has(unix.CAP_BPF), has(unix.CAP_PERFMON))
	}
	if err != nil && !strings.Contains(err.Error(), "the test programs") {
		t.Errorf("error does not name the programs: %v", err)
	}
}

// TestVerifierErrorText checks that a verifier rejection is described with
// the verifier's last lines.
func TestVerifierErrorText(t *testing.T) {
	if CheckBPFPrivileges("a socket filter") != nil {
		t.Skip("no privilege to load a BPF program")
	}
	_, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.SocketFilter,
		License:      "Dual MIT/GPL",
		Instructions: asm.Instructions{asm.Return()}, // R0 never set
	})
	if err == nil {
		t.Fatal("the verifier accepted a program that returns nothing")
	}
	got := DescribeLoadError(err)
	if !strings.Contains(got, "verifier: ") || !strings.Contains(got, "R0 !read_ok") {
		t.Errorf("description %q", got)
	}
}
