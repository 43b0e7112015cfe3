package checksum

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The kernel cannot give us IMA measurements on this host, so these tests
// use fixture lists in the ascii_runtime_measurements format.

const (
	tmplHash = "91f34b5c671d73504b274a919661cf80dab1e127"
	sha256A  = "f8e6ba9b8b5b0a1ed6c4de55d1d1e7c37d3e1a8b7d2bd8c1c3b9cb5e8e9e6f7a"
	sha256B  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	sha1A    = "1801e1be3e65ef1eaa5c16617bec8f1274eaf6b3"
	sigHex   = "030204a1b2c3d4004630440220"
)

var fixture = "" +
	"10 " + tmplHash + " ima-ng sha1:" + sha1A + " boot_aggregate\n" +
	"10 " + tmplHash + " ima-ng sha256:" + sha256A + " /usr/bin/foo\n" +
	"10 " + tmplHash + " ima-sig sha256:" + sha256B + " /usr/bin/signed " + sigHex + "\n" +
	"10 " + tmplHash + " ima-sig sha512:" + sha256A + sha256A + " /usr/bin/unsigned \n" +
	"10 " + tmplHash + " ima " + sha1A + " /usr/lib/old-style\n" +
	"11 " + tmplHash + " ima-ng sha256:" + sha256B + " /opt/with space/bin\n" +
	"10 " + tmplHash + " ima-modsig sha256:" + sha256A + " /lib/modules/m.ko   \n" +
	"10 " + tmplHash + " ima-buf sha256:" + sha256A + " kexec-cmdline 726f6f743d2f\n" +
	// malformed lines, all skipped
	"\n" +
	"garbage\n" +
	"x " + tmplHash + " ima-ng sha256:" + sha256A + " /bad/pcr\n" +
	"-1 " + tmplHash + " ima-ng sha256:" + sha256A + " /bad/negative-pcr\n" +
	"10 nothex ima-ng sha256:" + sha256A + " /bad/template-hash\n" +
	"10 " + tmplHash + " ima-ng sha256:zz" + sha256A[2:] + " /bad/digest\n" +
	"10 " + tmplHash + " ima-ng " + sha256A + " /bad/no-algo\n" +
	"10 " + tmplHash + " ima-ng :" + sha256A + " /bad/empty-algo\n" +
	"10 " + tmplHash + " ima " + sha256A + " /bad/old-not-sha1\n" +
	"10 " + tmplHash + " ima-ng sha256:" + sha256A + "\n" +
	"10 " + tmplHash + " ima-ng sha256:" + sha256A + " \n" +
	"10 " + tmplHash + " weird sha256:" + sha256A + " /bad/template\n" +
	// the last entry for a path wins
	"10 " + tmplHash + " ima-ng sha256:" + sha256B + " /usr/bin/remeasured\n" +
	"10 " + tmplHash + " ima-ng sha256:" + sha256A + " /usr/bin/remeasured\n"

func writeFixture(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ascii_runtime_measurements")
	writeFile(t, p, []byte(content), 0o644)
	return p
}

func TestIMAParser(t *testing.T) {
	list := writeFixture(t, fixture)
	tests := []struct {
		path string
		want *IMADigest
	}{
		{"boot_aggregate", &IMADigest{"sha1", sha1A, "ima-ng", 10, "boot_aggregate"}},
		{"/usr/bin/foo", &IMADigest{"sha256", sha256A, "ima-ng", 10, "/usr/bin/foo"}},
		{"/usr/bin/signed", &IMADigest{"sha256", sha256B, "ima-sig", 10, "/usr/bin/signed"}},
		{"/usr/bin/unsigned", &IMADigest{"sha512", sha256A + sha256A, "ima-sig", 10, "/usr/bin/unsigned"}},
		{"/usr/lib/old-style", &IMADigest{"sha1", sha1A, "ima", 10, "/usr/lib/old-style"}},
		{"/opt/with space/bin", &IMADigest{"sha256", sha256B, "ima-ng", 11, "/opt/with space/bin"}},
		{"/lib/modules/m.ko", &IMADigest{"sha256", sha256A, "ima-modsig", 10, "/lib/modules/m.ko"}},
		{"/usr/bin/remeasured", &IMADigest{"sha256", sha256A, "ima-ng", 10, "/usr/bin/remeasured"}},
		{"kexec-cmdline", nil},
		{"/bad/pcr", nil},
		{"/bad/negative-pcr", nil},
		{"/bad/template-hash", nil},
		{"/bad/digest", nil},
		{"/bad/no-algo", nil},
		{"/bad/empty-algo", nil},
		{"/bad/old-not-sha1", nil},
		{"/bad/template", nil},
		{"/usr/bin/signed " + sigHex, nil},
		{"/not/measured", nil},
	}
	l := NewIMAList(list)
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			for name, lookup := range map[string]func(string) (*IMADigest, error){
				"IMAList":   l.Lookup,
				"IMALookup": func(p string) (*IMADigest, error) { return IMALookup(list, p) },
			} {
				got, err := lookup(tc.path)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
					t.Errorf("%s(%q) = %+v, want %+v", name, tc.path, got, tc.want)
				}
			}
		})
	}
	if n := l.Len(); n != 8 {
		t.Errorf("Len = %d, want 8", n)
	}
}

func TestIMAIncremental(t *testing.T) {
	first := "10 " + tmplHash + " ima-ng sha256:" + sha256A + " /a\n"
	list := writeFixture(t, first)
	l := NewIMAList(list)
	lookup := func(p string) *IMADigest {
		t.Helper()
		d, err := l.Lookup(p)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := lookup("/a"); d == nil || d.Digest != sha256A {
		t.Fatalf("/a = %+v", d)
	}
	parsed := l.parsed
	// Nothing appended: nothing re-read.
	lookup("/a")
	lookup("/missing")
	if l.parsed != parsed {
		t.Errorf("unchanged list re-read: parsed %d -> %d bytes", parsed, l.parsed)
	}

	// Append a complete line and half of another.
	second := "10 " + tmplHash + " ima-ng sha256:" + sha256B + " /a\n"
	third := "10 " + tmplHash + " ima-sig sha256:" + sha256A + " /b " + sigHex + "\n"
	f, err := os.OpenFile(list, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(second + third[:20]); err != nil {
		t.Fatal(err)
	}
	if d := lookup("/a"); d == nil || d.Digest != sha256B {
		t.Errorf("/a after append = %+v, want digest %s", d, sha256B)
	}
	if d := lookup("/b"); d != nil {
		t.Errorf("/b parsed from an incomplete line: %+v", d)
	}
	if got, want := l.parsed-parsed, int64(len(second)); got != want {
		t.Errorf("read %d new bytes, want only the %d appended", got, want)
	}
	if _, err := f.WriteString(third[20:]); err != nil {
		t.Fatal(err)
	}
	if d := lookup("/b"); d == nil || d.Template != "ima-sig" {
		t.Errorf("/b after completing the line = %+v", d)
	}
	if got, want := l.parsed, int64(len(first+second+third)); got != want {
		t.Errorf("parsed %d bytes in total, want %d", got, want)
	}

	// A replaced (shorter) list is parsed from scratch.
	writeFile(t, list, []byte("10 "+tmplHash+" ima sha1:x /bad\n"), 0o644)
	if d := lookup("/a"); d != nil {
		t.Errorf("/a survived list replacement: %+v", d)
	}
}

func TestIMAMissingList(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := IMALookup(missing, "/bin/sh"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want fs.ErrNotExist", err)
	}
	// A Hasher whose IMA list is missing just reports no IMA digest.
	p := filepath.Join(t.TempDir(), "f")
	writeFile(t, p, []byte("x"), 0o644)
	res, err := New(Config{IMAPath: missing}).SumFile(context.Background(), p)
	if err != nil || res.IMA != nil {
		t.Errorf("SumFile = %+v, %v; want no IMA and no error", res, err)
	}
}

func TestIMAHostInactive(t *testing.T) {
	for _, p := range []string{IMAPathIntegrity, IMAPathLegacy} {
		if _, err := os.Stat(p); err == nil {
			t.Skipf("IMA is active on this host (%s)", p)
		}
	}
	h := New(Config{})
	if h.ima != nil {
		t.Fatalf("IMA enabled with list %s", h.ima.Path())
	}
	res, err := h.Sum(context.Background(), Target{PID: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if res.IMA != nil {
		t.Errorf("IMA = %+v on a host without IMA", res.IMA)
	}
}

func TestSumReportsIMA(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "prog")
	cmd, content := startCopy(t, sleepBinary(t), bin, "30")
	digest := goDigests(content)[HashSHA256]
	list := writeFixture(t, strings.Join([]string{
		"10 " + tmplHash + " ima-ng sha256:" + sha256A + " " + bin,
		"10 " + tmplHash + " ima-ng sha256:" + digest + " " + bin,
		"10 " + tmplHash + " ima-ng sha256:" + sha256B + " " + bin + "-other",
		"",
	}, "\n"))
	h := New(Config{IMAPath: list})
	want := IMADigest{"sha256", digest, "ima-ng", 10, bin}

	// Found through the /proc/<pid>/exe link target...
	res, err := h.Sum(context.Background(), Target{PID: cmd.Process.Pid})
	if err != nil {
		t.Fatal(err)
	}
	if res.IMA == nil || *res.IMA != want {
		t.Errorf("Sum by PID: IMA = %+v, want %+v", res.IMA, want)
	}
	// ...and through a plain path, also when cached.
	for range 2 {
		res, err = h.SumFile(context.Background(), bin)
		if err != nil {
			t.Fatal(err)
		}
		if res.IMA == nil || *res.IMA != want || res.IMA.Digest != res.Digests[HashSHA256] {
			t.Errorf("SumFile: IMA = %+v, want %+v", res.IMA, want)
		}
	}
}
