package sockets

import (
	"bytes"
	"testing"
)

// procNetLines are real /proc/net lines (IPv4 and IPv6), the fuzz seeds.
var procNetLines = []string{
	"   0: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 12345 1 0000000000000000 100 0 0 10 0",
	"   0: 00000000000000000000000001000000:1F90 0000000000000000FFFF00000100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 777 1",
}

// TestParseProcNetLineOverlong: an address longer than 32 hex digits (only a
// custom ProcRoot can hold one) is refused, not a panic.
func TestParseProcNetLineOverlong(t *testing.T) {
	for _, addr := range []string{
		"000000000000000000000000010000000000:1F90", // 18 bytes
		"0100007F00:0050", // 5 bytes
		"0100:0050",
		":0050",
	} {
		line := "   0: " + addr + " 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1"
		if s, ok := parseProcNetLine(TCP, []byte(line)); ok {
			t.Errorf("%s parsed as %+v", addr, s)
		}
	}
}

// FuzzParseProcNetLine: any line is parsed or refused, never a panic; a
// parsed line's inode is its tenth field.
func FuzzParseProcNetLine(f *testing.F) {
	for _, l := range procNetLines {
		f.Add([]byte(l))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		s, ok := parseProcNetLine(TCP, line)
		if !ok {
			return
		}
		if fields := bytes.Fields(line); len(fields) < 10 || !s.Local.IsValid() || !s.Remote.IsValid() {
			t.Fatalf("%q parsed as %+v", line, s)
		}
	})
}
