package sockets

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/procmon/process"
)

// TestEverySocketAgainstProc creates hundreds of sockets in helpers and
// checks, for every socket on the machine that /proc shows with an owner,
// that Lookup and PIDOfInode name one of its owners: with full scans by the
// BPF socket iterator and by /proc (NoSocketIterator).
func TestEverySocketAgainstProc(t *testing.T) {
	requireRoot(t)
	t.Run("iterator", func(t *testing.T) { everySocketAgainstProc(t, false) })
	t.Run("proc", func(t *testing.T) { everySocketAgainstProc(t, true) })
}

func everySocketAgainstProc(t *testing.T, noIter bool) {
	for i := 0; i < 4; i++ {
		// 15+15+10+10 listeners and unconnected UDP, 1 listener + 10
		// connected pairs: 71 sockets each, and 20 other fds.
		startHelper(t).do("batch 15 15 10 10 10 20")
	}
	// A socket shared by this process and a child after fork.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	lf, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	shared := startHelper(t, lf)
	lf.Close()
	// A thread with its own fd table.
	th := startHelper(t)
	thr := th.do("unshare")

	r := New(Config{Revalidate: -1, NoSocketIterator: noIter})
	defer r.Close()
	truth := procTruth(t)
	socks, err := r.Sockets()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, s := range socks {
		if s.Inode == 0 || truth[s.Inode] == nil {
			continue
		}
		p, info, err := r.Lookup(s.Proto, s.Local, s.Remote)
		if err != nil {
			if again := procTruth(t); again[s.Inode] == nil {
				continue // closed meanwhile (not ours)
			}
			t.Errorf("%v %v -> %v (inode %d, owners %v): %v", s.Proto, s.Local, s.Remote, s.Inode, truth[s.Inode], err)
			continue
		}
		if !truth[info.Inode][p.ID] {
			if again := procTruth(t); !again[info.Inode][p.ID] {
				t.Errorf("%v %v -> %v: inode %d pid %d, /proc says %v", s.Proto, s.Local, s.Remote, info.Inode, p.ID, again[info.Inode])
			}
		}
		if pid, ok := r.PIDOfInode(s.Inode); !ok || !truth[s.Inode][pid] {
			t.Errorf("PIDOfInode(%d) = %d, %v; /proc says %v", s.Inode, pid, ok, truth[s.Inode])
		}
		checked++
	}
	if checked < 4*71 {
		t.Fatalf("checked %d sockets, want at least %d", checked, 4*71)
	}
	st := r.Stats()
	t.Logf("checked %d sockets; %+v", checked, st)
	r.counterMu.Lock()
	iterated := r.iter != nil
	r.counterMu.Unlock()
	if iterated == noIter {
		t.Errorf("the socket iterator used: %v, NoSocketIterator %v", iterated, noIter)
	}
	if st.FullScans > 3 {
		t.Errorf("%d full scans for %d lookups: a scan should fill the cache", st.FullScans, checked)
	}

	// The shared listener: either owner; after this process closes its
	// copy, only the child.
	lp := l.Addr().(*net.TCPAddr).AddrPort()
	p, _, err := r.Lookup(TCP, lp, netip.AddrPort{})
	if err != nil || (p.ID != os.Getpid() && p.ID != shared.pid) {
		t.Fatalf("shared listener: %v, %v", p, err)
	}
	l.Close()
	p, _, err = r.Lookup(TCP, lp, netip.AddrPort{})
	if err != nil || p.ID != shared.pid {
		t.Fatalf("shared listener after the parent closed it: got %v, %v; want pid %d", p, err, shared.pid)
	}

	// The thread's socket: only in the thread's fd table.
	p, info, err := r.Lookup(UDP, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(atoi(t, thr[1]))), netip.AddrPort{})
	if err != nil || p.ID != th.pid {
		t.Fatalf("unshared thread's socket: %v %+v %v; want pid %d", p, info, err, th.pid)
	}
	if _, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", th.pid, info.FD)); err == nil {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", th.pid, info.FD))
		if l == fmt.Sprintf("socket:[%d]", info.Inode) {
			t.Fatalf("the socket is in the main fd table too: the test does not test threads")
		}
	}
}

func TestIPv4Mapped(t *testing.T) {
	requireRoot(t)
	l, err := net.Listen("tcp", "[::]:0")
	if err != nil {
		t.Skip("no dual-stack listener:", err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	r := New(Config{})
	client := c.LocalAddr().(*net.TCPAddr).AddrPort()
	server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	mapped := func(x netip.AddrPort) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom16(x.Addr().As16()), x.Port())
	}
	for _, tc := range []struct{ src, dst netip.AddrPort }{
		{server, client}, {mapped(server), mapped(client)}, {client, server}, {mapped(client), server},
	} {
		p, info, err := r.Lookup(TCP, tc.src, tc.dst)
		if err != nil || p.ID != os.Getpid() {
			t.Errorf("Lookup(%v, %v): %v %+v %v", tc.src, tc.dst, p, info, err)
		}
	}
	// A dual-stack UDP socket, asked with IPv4 and IPv4-mapped addresses.
	u, err := net.ListenPacket("udp", fmt.Sprintf("[::]:%d", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	up := uint16(u.LocalAddr().(*net.UDPAddr).Port)
	peer := ap("127.0.0.1:9")
	for _, local := range []netip.AddrPort{
		netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), up),
		netip.AddrPortFrom(netip.MustParseAddr("::ffff:127.0.0.1"), up),
		netip.AddrPortFrom(netip.MustParseAddr("::1"), up),
	} {
		p, info, err := r.Lookup(UDP, local, peer)
		if err != nil || p.ID != os.Getpid() {
			t.Errorf("dual-stack UDP %v: %v %+v %v", local, p, info, err)
		}
	}
	// The accepted socket is an AF_INET6 socket: the 5-tuple server->client names it.
	p, info, err := r.Lookup(TCP, mapped(server), mapped(client))
	if err != nil || info.State != Established || p.ID != os.Getpid() {
		t.Fatalf("%v %+v %v", p, info, err)
	}
}

// TestClosedAndReusedFD: the cached (pid, fd) of an inode now holds another
// socket; the old inode must be a miss, the new one named.
func TestClosedAndReusedFD(t *testing.T) {
	requireRoot(t)
	h := startHelper(t)
	f := h.do("udpfd")
	fd, port := atoi(t, f[0]), atoi(t, f[1])
	r := New(Config{Revalidate: -1})
	local := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	p, info, err := r.Lookup(UDP, local, netip.AddrPort{})
	if err != nil || p.ID != h.pid || info.FD != fd {
		t.Fatalf("%v %+v %v", p, info, err)
	}
	old := info.Inode
	port2 := atoi(t, h.do("replace %d", fd)[0])
	if pid, ok := r.PIDOfInode(old); ok {
		t.Fatalf("closed inode %d still named pid %d", old, pid)
	}
	if st := r.Stats(); st.Stale == 0 {
		t.Errorf("stale entry not counted: %+v", st)
	}
	p, info, err = r.Lookup(UDP, netip.AddrPortFrom(local.Addr(), uint16(port2)), netip.AddrPort{})
	if err != nil || p.ID != h.pid || info.FD != fd || info.Inode == old {
		t.Fatalf("new socket on the reused fd: %v %+v %v", p, info, err)
	}
	if _, _, err := r.Lookup(UDP, local, netip.AddrPort{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old port: %v, want ErrNotFound", err)
	}
}

// TestExitedOwner: a connection whose owner exited is still named during
// the grace period, by connection and by inode.
func TestExitedOwner(t *testing.T) {
	requireRoot(t)
	srv, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	h := startHelper(t)
	local := ap(h.do("udpconn %s", srv.LocalAddr())[0])
	dst := srv.LocalAddr().(*net.UDPAddr).AddrPort()
	r := New(Config{Revalidate: -1})
	p, info, err := r.Lookup(UDP, local, dst)
	if err != nil || p.ID != h.pid {
		t.Fatalf("%v %+v %v", p, info, err)
	}
	h.kill()
	waitGone(t, h.pid)
	p2, info2, err := r.Lookup(UDP, local, dst)
	if err != nil || p2 != p || !info2.Exited {
		t.Fatalf("exited owner: %v %+v %v", p2, info2, err)
	}
	if pid, ok := r.PIDOfInode(info.Inode); !ok || pid != h.pid {
		t.Fatalf("PIDOfInode of the exited owner's socket: %d %v", pid, ok)
	}
	// A full scan meanwhile (another miss) keeps the exited owner's entry.
	full := r.Stats().FullScans
	r.PIDOfInode(1<<32 - 5)
	if r.Stats().FullScans == full {
		t.Fatal("no full scan")
	}
	if pid, ok := r.PIDOfInode(info.Inode); !ok || pid != h.pid {
		t.Fatalf("PIDOfInode of the exited owner's socket after a scan: %d %v", pid, ok)
	}
}

// TestReusedPID: a pid reused by a new process is never answered with the
// old process.
func TestReusedPID(t *testing.T) {
	requireRoot(t)
	r := New(Config{Revalidate: -1})
	h := startHelper(t)
	f := h.do("udpfd")
	local := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(atoi(t, f[1])))
	p, info, err := r.Lookup(UDP, local, netip.AddrPort{})
	if err != nil || p.ID != h.pid {
		t.Fatalf("%v %+v %v", p, info, err)
	}
	oldStart := p.Starttime
	pid := h.pid
	h.kill()
	waitGone(t, pid)
	var h2 *helper
	for try := 0; try < 20; try++ {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(fmt.Sprint(pid-1)), 0); err != nil {
			t.Skip("cannot set ns_last_pid:", err)
		}
		c := startHelper(t)
		if c.pid == pid {
			h2 = c
			break
		}
		c.kill()
	}
	if h2 == nil {
		t.Skip("could not get the pid reused")
	}
	f2 := h2.do("udpfd")
	if f2[0] != f[0] {
		t.Logf("fd %s vs %s", f2[0], f[0])
	}
	local2 := netip.AddrPortFrom(local.Addr(), uint16(atoi(t, f2[1])))
	p2, info2, err := r.Lookup(UDP, local2, netip.AddrPort{})
	if err != nil || p2.ID != pid || p2.Starttime == oldStart || p2 == p {
		t.Fatalf("new process on the reused pid: %v %+v %v", p2, info2, err)
	}
	// The old inode: the old (exited) owner within grace, or a miss; never the new process.
	if got, ok := r.PIDOfInode(info.Inode); ok {
		q, _ := r.Owner(info.Inode)
		if q != nil && q.Starttime != oldStart {
			t.Fatalf("old inode named the new process (pid %d)", got)
		}
	}
}

func TestNegativeCache(t *testing.T) {
	requireRoot(t)
	r := New(Config{NegativeTTL: time.Minute})
	const bogus = 1<<32 - 7
	if _, ok := r.PIDOfInode(bogus); ok {
		t.Fatal("bogus inode found")
	}
	full := r.Stats().FullScans
	for i := 0; i < 100; i++ {
		if _, ok := r.PIDOfInode(bogus); ok {
			t.Fatal("bogus inode found")
		}
	}
	st := r.Stats()
	if st.FullScans != full || st.NegativeHits != 100 {
		t.Fatalf("repeated unknown inode scanned again: %+v", st)
	}
	r.Clean()
	if st := r.Stats(); st.Negative != 1 {
		t.Fatalf("negative entry cleaned early: %+v", st)
	}
}

func TestRawAndICMP(t *testing.T) {
	requireRoot(t)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
	if err != nil {
		t.Skip("raw socket:", err)
	}
	defer unix.Close(fd)
	r := New(Config{})
	p, info, err := r.Lookup(Raw, netip.AddrPortFrom(netip.IPv4Unspecified(), unix.IPPROTO_ICMP), netip.AddrPort{})
	if err != nil || p.ID != os.Getpid() || info.Source != "proc_net" {
		t.Fatalf("raw: %v %+v %v", p, info, err)
	}
	// ICMP ping socket: allow it for gid 0 for the test's duration.
	if old, err := os.ReadFile("/proc/sys/net/ipv4/ping_group_range"); err == nil {
		if os.WriteFile("/proc/sys/net/ipv4/ping_group_range", []byte("0 0"), 0) == nil {
			defer os.WriteFile("/proc/sys/net/ipv4/ping_group_range", old, 0)
		}
	}
	pfd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
	if err != nil {
		t.Logf("no ping socket (%v): ICMP lookup untested", err)
		return
	}
	defer unix.Close(pfd)
	if err := unix.Bind(pfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(pfd)
	id := sa.(*unix.SockaddrInet4).Port
	p, info, err = r.Lookup(ICMP, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(id)), netip.AddrPort{})
	if err != nil || p.ID != os.Getpid() {
		t.Fatalf("icmp: %v %+v %v", p, info, err)
	}
}

func TestProcNetFallbackAgreesWithDiag(t *testing.T) {
	requireRoot(t)
	r := New(Config{})
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skip(err)
	}
	defer l.Close()
	u, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for _, tc := range []struct {
		p     Proto
		local netip.AddrPort
	}{{TCP, l.Addr().(*net.TCPAddr).AddrPort()}, {UDP, u.LocalAddr().(*net.UDPAddr).AddrPort()}} {
		a, err1 := r.diagFind(tc.p, tc.local, netip.AddrPort{})
		b, err2 := r.procNetFind(tc.p, tc.local, netip.AddrPort{})
		if err1 != nil || err2 != nil || a.Inode != b.Inode || a.Inode == 0 {
			t.Errorf("%v %v: diag %+v %v, proc %+v %v", tc.p, tc.local, a, err1, b, err2)
		}
	}
}

func TestSeedAPI(t *testing.T) {
	requireRoot(t)
	u, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	la := u.LocalAddr().(*net.UDPAddr)
	var e NetstatEntry
	var inodes []int
	if !GetInodeFromNetstat(&e, &inodes, "udp", la.IP, uint(la.Port), net.IPv4zero, 0) || len(inodes) != 1 {
		t.Fatalf("GetInodeFromNetstat: %+v %v", e, inodes)
	}
	key := fmt.Sprintf("%d%s%d%s%d", inodes[0], la.IP, la.Port, net.IPv4zero, 0)
	if pid := GetPIDFromINode(inodes[0], key); pid != os.Getpid() {
		t.Fatalf("GetPIDFromINode = %d", pid)
	}
	if it, ok := InodesCache.Get(key); !ok || it.Pid != os.Getpid() || !strings.HasPrefix(it.FdPath, "/proc/") {
		t.Fatalf("InodesCache: %+v %v", it, ok)
	}
	if pid := GetPIDFromINode(inodes[0], key); pid != os.Getpid() {
		t.Fatalf("GetPIDFromINode (cached) = %d", pid)
	}
	if pid := GetPIDFromINode(1<<32-9, "nope"); pid != -1 {
		t.Fatalf("unknown inode: %d", pid)
	}
	for _, s := range []string{"tcp", "TCP6", "udplite", "icmpv6", "raw6"} {
		if _, err := ParseProto(s); err != nil {
			t.Error(err)
		}
	}
}

func TestParseProcNetLine(t *testing.T) {
	s, ok := parseProcNetLine(TCP, []byte(procNetLines[0]))
	if !ok || s.Local != ap("127.0.0.1:80") || s.State != Listen || s.UID != 1000 || s.Inode != 12345 {
		t.Fatalf("%+v %v", s, ok)
	}
	s, ok = parseProcNetLine(TCP, []byte(procNetLines[1]))
	if !ok || s.Local != ap("[::1]:8080") || s.Remote != ap("[::ffff:127.0.0.1]:54321") {
		t.Fatalf("%+v %v", s, ok)
	}
}

func TestUDPLite(t *testing.T) {
	requireRoot(t)
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_UDPLITE)
	if err != nil {
		t.Skip("no UDP-Lite:", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: netip.IPv6Loopback().As16()}); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	local := netip.AddrPortFrom(netip.IPv6Loopback(), uint16(sa.(*unix.SockaddrInet6).Port))
	r := New(Config{})
	p, info, err := r.Lookup(UDPLite, local, netip.AddrPort{})
	if err != nil || p.ID != os.Getpid() {
		t.Fatalf("udplite: %v %+v %v", p, info, err)
	}
	t.Logf("udplite answered by %s", info.Source)
}

// TestReusedPIDNeverAnswered (issue 18): a socket's owner is killed and its
// pid taken by a new process at once; PIDOfInode of the old socket is then
// a miss at every delay after the reuse, within the default trust window
// and within one longer than the test, with the owner confirmed by statx
// (NoExitCounter) and by the kernel's exit counter (issue 15), and Owner
// names the old process or nothing, never the new one. The seed's
// GetPIDFromINode, on the last Resolver (counter, long trust window), never
// returns the pid either.
func TestReusedPIDNeverAnswered(t *testing.T) {
	requireRoot(t)
	prev := Default()
	defer SetDefault(prev)
	for _, delay := range []time.Duration{0, 20 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond} {
		h := startHelper(t)
		local := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(atoi(t, h.do("udpfd")[1])))
		rs := []*Resolver{
			New(Config{NoExitCounter: true}), New(Config{Revalidate: time.Hour, NoExitCounter: true}),
			New(Config{}), New(Config{Revalidate: time.Hour}),
		}
		seed := rs[len(rs)-1]
		SetDefault(seed)
		var inode uint64
		var old process.Key
		for i, r := range rs {
			p, info, err := r.Lookup(UDP, local, netip.AddrPort{})
			if err != nil || p.ID != h.pid {
				t.Fatalf("%v %+v %v", p, info, err)
			}
			inode, old = info.Inode, p.Key()
			if pid, ok := r.PIDOfInode(inode); !ok || pid != h.pid {
				t.Fatalf("a hit: %d %v", pid, ok)
			}
			r.mu.RLock()
			counted := r.inodes[inode].gen.Load() != 0
			r.mu.RUnlock()
			if want := i >= 2; counted != want || (r.counter.Load() != nil) != want {
				t.Fatalf("resolver %d: exit counter held %v, recorded %v; want %v", i, r.counter.Load() != nil, counted, want)
			}
		}
		key := fmt.Sprint(inode, local)
		if pid := GetPIDFromINode(int(inode), key); pid != h.pid {
			t.Fatalf("GetPIDFromINode of the live owner: %d", pid)
		}
		h.kill()
		fresh := proctest.ForcePID(t, old.PID, func() *exec.Cmd { return exec.Command("/bin/sleep", "60") })
		time.Sleep(delay)
		if pid := GetPIDFromINode(int(inode), key); pid != -1 {
			t.Errorf("%v after the reuse: GetPIDFromINode named pid %d, now /bin/sleep's", delay, pid)
		}
		for i, r := range rs {
			if pid, ok := r.PIDOfInode(inode); ok {
				t.Errorf("%v after the reuse, resolver %d: the old socket named pid %d, now /bin/sleep's", delay, i, pid)
			}
			if p, ok := r.Owner(inode); ok && p.Key() != old {
				t.Errorf("%v after the reuse, resolver %d: Owner named %s, not the old owner %s", delay, i, p.Key(), old)
			}
			_ = r.Close()
		}
		fresh.Stop()
	}
}

// TestColdLookupAnswersEarly: a cold miss is answered from the full scan
// as soon as it sees the owner (newest processes first), with the owner's
// identity, and the scan still fills the inode cache with every socket:
// the older helper's socket is then a hit, with one full scan in all.
func TestColdLookupAnswersEarly(t *testing.T) {
	requireRoot(t)
	older, newer := startHelper(t), startHelper(t)
	portOld := atoi(t, older.do("udpfd")[1])
	portNew := atoi(t, newer.do("udpfd")[1])
	inodeOf := func(port int) uint64 {
		socks, err := New(Config{}).Sockets()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range socks {
			if s.Proto == UDP && int(s.Local.Port()) == port {
				return s.Inode
			}
		}
		t.Fatalf("no UDP socket on port %d", port)
		return 0
	}
	inOld, inNew := inodeOf(portOld), inodeOf(portNew)
	r := New(Config{})
	defer r.Close()
	local := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(portNew))
	p, info, err := r.Lookup(UDP, local, netip.AddrPort{})
	if err != nil || p.ID != newer.pid || info.Inode != inNew {
		t.Fatalf("cold lookup: %v %+v %v, want pid %d", p, info, err, newer.pid)
	}
	if k, err := process.CurrentKey(newer.pid); err != nil || k != p.Key() {
		t.Errorf("owner %v, /proc says %v %v", p.Key(), k, err)
	}
	if pid, ok := r.PIDOfInode(inOld); !ok || pid != older.pid {
		t.Fatalf("older helper's socket: %d %v, want %d", pid, ok, older.pid)
	}
	if st := r.Stats(); st.FullScans != 1 {
		t.Errorf("want one full scan that cached the older socket: %+v", st)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if !r.scanMu.TryLock() {
		t.Fatal("Close returned while a scan held the scan lock")
	}
	defer r.scanMu.Unlock()
}
