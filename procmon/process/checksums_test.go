package process

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestProcessComputeChecksums(t *testing.T) {
	p := FindProcess(os.Getpid(), false)
	p.ComputeChecksums(map[string]uint{HashSHA1: 0, HashSHA256: 0})
	exe, _ := os.Executable()
	out, err := exec.Command("sha1sum", exe).Output()
	if err != nil {
		t.Skipf("sha1sum: %v", err)
	}
	if want := strings.Fields(string(out))[0]; p.ChecksumsCount() != 2 || p.Checksums[HashSHA1] != want {
		t.Errorf("Checksums %v, want sha1 %s", p.Checksums, want)
	}
	shared := p.Checksums
	p.ComputeChecksum(HashMD5)
	if len(shared) != 2 || p.ChecksumsCount() != 3 {
		t.Errorf("ComputeChecksum wrote into the old map (%d) or lost entries (%d)", len(shared), p.ChecksumsCount())
	}
	p.ResetChecksums()
	if p.ChecksumsCount() != 0 {
		t.Error("ResetChecksums")
	}
}
