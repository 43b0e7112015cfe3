package sockets

import (
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var ssUsers = regexp.MustCompile(`pid=(\d+)`)

// parseSSAddr parses ss's "127.0.0.1:80", "[::1]:53", "*:68",
// "127.0.0.53%lo:53", "0.0.0.0:*".
func parseSSAddr(s string) (netip.AddrPort, bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, false
	}
	host, port := s[:i], s[i+1:]
	if j := strings.IndexByte(host, '%'); j >= 0 {
		host = host[:j]
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "*" {
		host = "::"
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, false
	}
	p := 0
	if port != "*" {
		if p, err = strconv.Atoi(port); err != nil {
			return netip.AddrPort{}, false
		}
	}
	return netip.AddrPortFrom(a, uint16(p)), true
}

// TestAgainstSS: for every socket `ss -tunap` shows with an owner, Lookup
// names one of the owners (the acceptance criterion).
func TestAgainstSS(t *testing.T) {
	requireRoot(t)
	ss, err := exec.LookPath("ss")
	if err != nil {
		t.Skip("no ss")
	}
	for i := 0; i < 2; i++ {
		startHelper(t).do("batch 5 5 5 5 5 0")
	}
	out, err := exec.Command(ss, "-tunapH").Output()
	if err != nil {
		t.Fatal(err)
	}
	r := New(Config{})
	checked := 0
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 7 || !strings.HasPrefix(f[6], "users:") {
			continue
		}
		proto, err := ParseProto(f[0])
		if err != nil {
			t.Errorf("%q: %v", l, err)
			continue
		}
		local, ok1 := parseSSAddr(f[4])
		remote, ok2 := parseSSAddr(f[5])
		if !ok1 || !ok2 {
			t.Errorf("cannot parse %q", l)
			continue
		}
		owners := map[int]bool{}
		for _, m := range ssUsers.FindAllStringSubmatch(f[6], -1) {
			pid, _ := strconv.Atoi(m[1])
			owners[pid] = true
		}
		p, info, err := r.Lookup(proto, local, remote)
		if err != nil || !owners[p.ID] {
			if !stillListed(t, ss, l) {
				continue // closed since ss listed it (another program's socket)
			}
			t.Errorf("%s: got %v %+v %v", l, p, info, err)
			continue
		}
		checked++
	}
	if checked < 2*25 {
		t.Fatalf("checked only %d sockets:\n%s", checked, out)
	}
	t.Logf("%d sockets with owners, every one named", checked)
}

// stillListed reports whether ss still lists the socket of line, with the
// same owners.
func stillListed(t *testing.T, ss, line string) bool {
	t.Helper()
	out, err := exec.Command(ss, "-tunapH").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Fields(line)
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 7 && f[0] == want[0] && f[4] == want[4] && f[5] == want[5] && f[6] == want[6] {
			return true
		}
	}
	return false
}
