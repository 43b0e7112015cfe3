package procfs

import (
	"errors"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParseStat(t *testing.T) {
	tail := " S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 12345 1000 100\n"
	cases := []struct {
		in      string
		comm    string
		wantErr bool
	}{
		{"42 (bash)" + tail, "bash", false},
		{"42 (a) b)" + tail, "a) b", false},
		{"42 (a) S 1 2 3 (x)" + tail, "a) S 1 2 3 (x", false},
		{"42 ()" + tail, "", false},
		{"42 (  )" + tail, "  ", false},
		{"42 ((()" + tail, "((", false},
		{"42 bash" + tail, "", true},
		{"(bash)" + tail, "", true},
		{"x (bash)" + tail, "", true},
		{"42 (bash) S 1 2", "", true},
		{"42 (bash) SS 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 12345 1000 100", "", true},
		{"42 (bash) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 -5 1000 100", "", true},
		{"42 (bash) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 18446744073709551616 1000 100", "", true},
		{"", "", true},
	}
	for _, tc := range cases {
		s, err := ParseStat([]byte(tc.in))
		if tc.wantErr {
			if err == nil || !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseStat(%q) = %+v, %v; want ErrMalformed", tc.in, s, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseStat(%q): %v", tc.in, err)
			continue
		}
		if s.PID != 42 || s.Comm != tc.comm || s.PPID != 1 || s.StartTicks != 12345 || s.NumThreads != 3 || s.State != 'S' {
			t.Errorf("ParseStat(%q) = %+v", tc.in, s)
		}
	}
}

// TestParseStatLayout: the layout fields (28, 48, 50) of a whole line, and
// a field past 64 bits is malformed.
func TestParseStatLayout(t *testing.T) {
	var f []string
	for i := 3; i <= 52; i++ {
		f = append(f, strconv.Itoa(i))
	}
	f[0] = "R"
	line := "7 (x y) " + strings.Join(f, " ") + "\n"
	s, err := ParseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if s.PID != 7 || s.Comm != "x y" || s.State != 'R' || s.PPID != 4 || s.Flags != 9 || s.NumThreads != 20 ||
		s.StartTicks != 22 || s.Layout != [3]uint64{28, 48, 50} {
		t.Errorf("%+v", s)
	}
	if s, err := ParseStat([]byte(strings.Replace(line, " 28 ", " 18446744073709551615 ", 1))); err != nil || s.Layout[0] != 1<<64-1 {
		t.Errorf("largest value: %+v %v", s, err)
	}
	if _, err := ParseStat([]byte(strings.Replace(line, " 48 ", " 18446744073709551616 ", 1))); !errors.Is(err, ErrMalformed) {
		t.Errorf("a field past 64 bits: %v", err)
	}
}

func TestSplitNul(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"\x00", []string{""}},
		{"a\x00", []string{"a"}},
		{"a\x00\x00", []string{"a", ""}},
		{"a b\x00c\x00", []string{"a b", "c"}},
		{"title set by setproctitle", []string{"title set by setproctitle"}},
		{"a\x00\x00b\x00", []string{"a", "", "b"}},
	}
	for _, tc := range cases {
		if got := SplitNul([]byte(tc.in)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitNul(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseEnviron(t *testing.T) {
	got := ParseEnviron([]byte("A=1\x00B=x=y=z\x00EMPTY=\x00NOEQ\x00\x00A=2\x00"))
	want := map[string]string{"A": "2", "B": "x=y=z", "EMPTY": "", "NOEQ": ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseEnviron = %q, want %q", got, want)
	}
}

func TestParseStatus(t *testing.T) {
	in := "Name:\ta\\nb\\\\c\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t7\nPPid:\t1\n" +
		"Uid:\t1000\t0\t1000\t0\nGid:\t100\t100\t100\t100\nGroups:\t4 24 27 \nNSpid:\t7\t1\n" +
		"CapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n" +
		"CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t2\n"
	s, err := ParseStatus([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := &Status{Name: "a\nb\\c", Tgid: 7, PPID: 1, UIDs: [4]uint32{1000, 0, 1000, 0}, GIDs: [4]uint32{100, 100, 100, 100},
		Groups: []uint32{4, 24, 27}, NSpid: []int{7, 1}, CapPrm: 0x1ffffffffff, CapEff: 0x1ffffffffff, CapBnd: 0x1ffffffffff,
		Seccomp: 2, HaveCapAmb: true, HaveNoNewPrivs: true}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("ParseStatus =\n%+v\nwant\n%+v", s, want)
	}
	for _, bad := range []string{
		"Uid:\t1\t2\t3\nGid:\t1\t1\t1\t1\nCapEff:\t0\n",
		"Uid:\t1\t2\t3\t-4\nGid:\t1\t1\t1\t1\nCapEff:\t0\n",
		"Uid:\t1\t2\t3\t4\nGid:\t1\t1\t1\t1\nCapEff:\tzz\n",
		"Uid:\t1\t2\t3\t4\nGid:\t1\t1\t1\t1\nCapEff:\t0\nGroups:\ta\n",
		"Name:\tx\n",
		"",
	} {
		if _, err := ParseStatus([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseStatus(%q): %v, want ErrMalformed", bad, err)
		}
	}
}

func TestContainerID(t *testing.T) {
	id := "4f1c0e0c3e9b8b8d9f2a7c6a5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d"
	cases := []struct {
		path, id, runtime string
	}{
		{"/docker/" + id, id, "docker"},
		{"/system.slice/docker-" + id + ".scope", id, "docker"},
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-" + id + ".scope", id, "containerd"},
		{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podab_cd.slice/crio-" + id + ".scope", id, "cri-o"},
		{"/kubepods/burstable/pod8a3c1e7e-1111-2222-3333-444455556666/" + id, id, "kubepods"},
		{"/machine.slice/libpod-" + id + ".scope", id, "podman"},
		{"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id + ".scope/container", id, "podman"},
		{"/libpod_parent/libpod-" + id, id, "podman"},
		{"/system.slice/containerd.service/k8s.io/" + id, id, "containerd"},
		{"/system.slice/ssh.service", "", ""},
		{"/process_api/9a101002eaf3c71f047530b782f2e09e", "", ""},
		{"/", "", ""},
		{"/docker/" + id[:63], "", ""},
		{"/docker/" + id[:63] + "G", "", ""},
	}
	for _, tc := range cases {
		gotID, gotRT := ContainerID(tc.path)
		if gotID != tc.id || gotRT != tc.runtime {
			t.Errorf("ContainerID(%q) = %q, %q; want %q, %q", tc.path, gotID, gotRT, tc.id, tc.runtime)
		}
	}
}

func TestParseCgroup(t *testing.T) {
	id := "4f1c0e0c3e9b8b8d9f2a7c6a5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d"
	cases := []struct {
		in   string
		want Cgroup
	}{
		{"0::/user.slice/user-1000.slice/session-2.scope\n", Cgroup{Path: "/user.slice/user-1000.slice/session-2.scope"}},
		{"0::/system.slice/docker-" + id + ".scope\n", Cgroup{Path: "/system.slice/docker-" + id + ".scope", ContainerID: id, Runtime: "docker"}},
		{"12:pids:/docker/" + id + "\n1:name=systemd:/docker/" + id + "\n0::/\n", Cgroup{Path: "/docker/" + id, ContainerID: id, Runtime: "docker"}},
		{"9:name=systemd:/\n4:memory:/process_api/9a10\n0::/\n", Cgroup{Path: "/process_api/9a10"}},
		{"0::/\n", Cgroup{Path: "/"}},
		{"garbage\n\n0::/a:b\n", Cgroup{Path: "/a:b"}},
		{"", Cgroup{}},
	}
	for _, tc := range cases {
		if got := ParseCgroup([]byte(tc.in)); got != tc.want {
			t.Errorf("ParseCgroup(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseNSLink(t *testing.T) {
	for in, want := range map[string]uint64{"net:[4026531840]": 4026531840, "net:4026531840": 0, "x:[y]": 0, "": 0} {
		if got := ParseNSLink(in); got != want {
			t.Errorf("ParseNSLink(%q) = %d, want %d", in, got, want)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 12345 1000 100\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := ParseStat(b); err == nil && s == nil {
			t.Fatal("nil stat without error")
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte("Uid:\t1\t2\t3\t4\nGid:\t1\t1\t1\t1\nCapEff:\t0\nGroups:\t1 2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseStatus(b)
		_ = ParseCgroup(b)
		_ = SplitNul(b)
		_ = ParseEnviron(b)
	})
}

// TestDirIno: the number is stable for a live process, ErrGone for a pid
// not in use, and the same through another root spelling (no held fd).
func TestDirIno(t *testing.T) {
	self := os.Getpid()
	a, err := DirIno(DefaultRoot, self)
	if err != nil || a == 0 {
		t.Fatalf("DirIno(self) = %d, %v", a, err)
	}
	if b, err := DirIno(DefaultRoot, self); err != nil || b != a {
		t.Fatalf("second DirIno(self) = %d, %v; first %d", b, err, a)
	}
	if b, err := DirIno("/proc/.", self); err != nil || b != a {
		t.Fatalf("DirIno through a path = %d, %v; want %d", b, err, a)
	}
	if _, err := DirIno(DefaultRoot, 1<<30); !errors.Is(err, ErrGone) {
		t.Fatalf("DirIno of an unused pid: %v, want ErrGone", err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = DirIno(DefaultRoot, self) }); n != 0 {
		t.Errorf("DirIno allocates %v times", n)
	}
}
