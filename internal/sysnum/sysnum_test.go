package sysnum

import (
	"os"
	"regexp"
	"strconv"
	"testing"
)

// TestHeaders checks the generated tables against the kernel's uapi
// headers of the host (linux-libc-dev), when installed: every __NR_ the
// header defines has the same name and number in the table.
func TestHeaders(t *testing.T) {
	re := regexp.MustCompile(`(?m)^#define __NR_(\w+) (\d+)$`)
	checked := 0
	for _, c := range []struct {
		header string
		table  *Table
	}{
		{"/usr/include/x86_64-linux-gnu/asm/unistd_64.h", AMD64},
		{"/usr/include/x86_64-linux-gnu/asm/unistd_32.h", I386},
	} {
		b, err := os.ReadFile(c.header)
		if err != nil {
			t.Logf("%s: %v", c.header, err)
			continue
		}
		n := 0
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			nr, _ := strconv.Atoi(m[2])
			if got := c.table.Name(uint32(nr)); got != m[1] {
				t.Errorf("%s: %d is %q, the table says %q", c.header, nr, m[1], got)
			}
			n++
		}
		if n < 300 {
			t.Errorf("%s: only %d numbers read", c.header, n)
		}
		checked++
	}
	if checked == 0 {
		t.Skip("no kernel headers (linux-libc-dev) installed")
	}
}

func TestLookups(t *testing.T) {
	for _, c := range []struct {
		t      *Table
		name   string
		nr     uint32
		goarch string
	}{
		{AMD64, "setuid", 105, "amd64"},
		{I386, "setuid32", 213, "386"},
		{ARM64, "setuid", 146, "arm64"},
		{ARM, "setuid32", 213, "arm"},
		{ARM64, "newfstatat", 79, "arm64"},
	} {
		if nr, ok := c.t.Number(c.name); !ok || nr != c.nr {
			t.Errorf("%s %s: %d %v", c.t.Arch, c.name, nr, ok)
		}
		if got := c.t.Name(c.nr); got != c.name {
			t.Errorf("%s %d: %q", c.t.Arch, c.nr, got)
		}
		if ByAuditArch(c.t.AuditArch) != c.t || ByArch(c.t.Arch) != c.t || Native(c.goarch) != c.t {
			t.Errorf("%s: lookups disagree", c.t.Arch)
		}
	}
	if Compat("amd64") != I386 || Compat("arm64") != ARM || Compat("riscv64") != nil {
		t.Error("Compat")
	}
	var nilTable *Table
	if nilTable.Name(1) != "" {
		t.Error("nil table has a name")
	}
	if _, ok := ARM64.Number("open"); ok {
		t.Error("arm64 has no open")
	}
}
