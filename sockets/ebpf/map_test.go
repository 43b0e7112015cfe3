package sockebpf

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/bpf"
	"github.com/proctrack/proctrack/internal/proctest"
	"github.com/proctrack/proctrack/procmon"
	"github.com/proctrack/proctrack/procmon/process"
	"github.com/proctrack/proctrack/sockets"
)

// helperEnv selects a helper mode of the test binary (see runHelper).
const helperEnv = "PROCTRACK_SOCKEBPF_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode, os.Getenv(helperEnv+"_ADDR")))
	}
	os.Exit(m.Run())
}

// runHelper runs one helper mode. The socket modes print one line,
// "<pid> <start ticks> <local addr:port> <socket inode>", read from /proc
// while the helper runs:
//
//	open     Open a Map; print "unavailable: <err>", "error: <err>",
//	         "degraded: <why>" or "opened"
//	tcp      connect to addr over TCP, print, exit at once
//	tcphold  the same, then wait for stdin to close
//	udp      send one datagram to addr from an unconnected socket bound to
//	         the wildcard address of addr's family, print, exit at once
//	udp46    the same from a dual-stack IPv6 socket (addr is IPv4)
//	udpconn  connect a UDP socket to addr, send one datagram, print, exit
func runHelper(mode, addr string) int {
	switch mode {
	case "open":
		m, err := Open()
		switch {
		case errors.Is(err, ErrUnavailable):
			fmt.Println("unavailable: " + err.Error())
		case err != nil:
			fmt.Println("error: " + err.Error())
		case m.Degraded != "":
			fmt.Println("degraded: " + m.Degraded)
			_ = m.Close()
		default:
			fmt.Println("opened")
			_ = m.Close()
		}
		return 0
	case "tcp", "tcphold":
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		report(c.(syscall.Conn), c.LocalAddr().String())
		if mode == "tcphold" {
			_, _ = io.Copy(io.Discard, os.Stdin)
		}
		return 0
	case "udpconn":
		c, err := net.Dial("udp", addr)
		if err == nil {
			_, err = c.Write([]byte("hello"))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		report(c.(syscall.Conn), c.LocalAddr().String())
		return 0
	case "udp", "udp46":
		dst, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		network, local := "udp4", "0.0.0.0:0"
		if mode == "udp46" {
			network, local = "udp", ":0" // dual-stack: sends to ::ffff:a.b.c.d
		} else if dst.IP.To4() == nil {
			network, local = "udp6", "[::]:0"
		}
		c, err := net.ListenPacket(network, local)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if _, err := c.WriteTo([]byte("hello"), dst); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		report(c.(syscall.Conn), c.LocalAddr().String())
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

func report(c syscall.Conn, local string) {
	k, err := process.CurrentKey(os.Getpid())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var ino uint64
	rc, _ := c.SyscallConn()
	_ = rc.Control(func(fd uintptr) {
		var st unix.Stat_t
		if unix.Fstat(int(fd), &st) == nil {
			ino = st.Ino
		}
	})
	fmt.Printf("%d %d %s %d\n", k.PID, k.StartTicks, local, ino)
}

func inodeOf(t *testing.T, c syscall.Conn) uint64 {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := rc.Control(func(fd uintptr) { err = unix.Fstat(int(fd), &st) }); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// child is what a helper printed about itself.
type child struct {
	pid   int
	start uint64
	local netip.AddrPort
	inode uint64
}

func parseChild(t testing.TB, line string) child {
	t.Helper()
	f := strings.Fields(line)
	if len(f) != 4 {
		t.Fatalf("helper printed %q", line)
	}
	pid, _ := strconv.Atoi(f[0])
	start, _ := strconv.ParseUint(f[1], 10, 64)
	ino, _ := strconv.ParseUint(f[3], 10, 64)
	local, err := netip.ParseAddrPort(f[2])
	if err != nil {
		t.Fatal(err)
	}
	return child{pid: pid, start: start, local: local, inode: ino}
}

func helper(mode, addr string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperEnv+"_ADDR="+addr)
	cmd.Stderr = os.Stderr
	return cmd
}

// runChild runs a helper to its end and returns what it printed.
func runChild(t testing.TB, mode, addr string) child {
	t.Helper()
	out, err := helper(mode, addr).Output()
	if err != nil {
		t.Fatalf("helper %s: %v %s", mode, err, out)
	}
	return parseChild(t, strings.TrimSpace(string(out)))
}

// startChild starts a helper that holds its connection until stop.
func startChild(t testing.TB, mode, addr string) (child, func()) {
	t.Helper()
	cmd := helper(mode, addr)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper %s: %v", mode, err)
	}
	stop := func() {
		_ = in.Close()
		_ = cmd.Wait()
	}
	return parseChild(t, strings.TrimSpace(line)), stop
}

func openMap(t testing.TB) *Map {
	t.Helper()
	proctest.RequireRoot(t, "loading BPF programs")
	m, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	if m.Degraded != "" && !skipCgroup {
		t.Fatalf("degraded: %s", m.Degraded)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

func checkOwner(t *testing.T, what string, o Owner, ok bool, c child, wantInode bool) {
	t.Helper()
	if !ok {
		t.Fatalf("%s: no entry", what)
	}
	if o.PID != c.pid || o.StartTicks != c.start {
		t.Errorf("%s: pid %d start %d, want pid %d start %d", what, o.PID, o.StartTicks, c.pid, c.start)
	}
	if o.Comm != filepath.Base(os.Args[0])[:min(15, len(filepath.Base(os.Args[0])))] {
		t.Errorf("%s: comm %q", what, o.Comm)
	}
	if wantInode && o.Inode != c.inode {
		t.Errorf("%s: inode %d, want %d", what, o.Inode, c.inode)
	}
}

// gone checks that a helper's pid is no longer its process.
func gone(t *testing.T, c child) {
	t.Helper()
	if k, err := process.CurrentKey(c.pid); err == nil && k.StartTicks == c.start {
		t.Fatalf("helper %d still runs", c.pid)
	}
}

// TestTCPShortLived: a client that connects and exits at once is named by
// 5-tuple and by inode after it is gone.
func TestTCPShortLived(t *testing.T) {
	m := openMap(t)
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			host := "127.0.0.1:0"
			if network == "tcp6" {
				host = "[::1]:0"
			}
			ln, err := net.Listen(network, host)
			if err != nil {
				t.Skip(err)
			}
			defer ln.Close()
			c := runChild(t, "tcp", ln.Addr().String())
			gone(t, c)
			srv := netip.MustParseAddrPort(ln.Addr().String())

			pid, start, ok := m.Lookup(sockets.TCP, c.local, srv)
			if !ok || pid != c.pid || start != c.start {
				t.Errorf("Lookup(%v -> %v) = %d %d %v, want %d %d", c.local, srv, pid, start, ok, c.pid, c.start)
			}
			o, ok := m.LookupOwner(sockets.TCP, c.local, srv)
			checkOwner(t, "LookupOwner", o, ok, c, true)
			// An incoming packet: src is the remote end.
			if pid, _, ok := m.Lookup(sockets.TCP, srv, c.local); !ok || pid != c.pid {
				t.Errorf("Lookup(%v -> %v) = %d %v", srv, c.local, pid, ok)
			}
			// IPv4-mapped addresses name the same connection.
			if network == "tcp4" {
				mapped := func(a netip.AddrPort) netip.AddrPort {
					return netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
				}
				if pid, _, ok := m.Lookup(sockets.TCP, mapped(c.local), mapped(srv)); !ok || pid != c.pid {
					t.Errorf("Lookup with v4-mapped addresses = %d %v", pid, ok)
				}
			}
			if pid, ok := m.PIDOfInode(c.inode); !ok || pid != c.pid {
				t.Errorf("PIDOfInode(%d) = %d %v, want %d", c.inode, pid, ok, c.pid)
			}
			pid, start, comm, ok := m.Owner(c.inode)
			checkOwner(t, "Owner", Owner{PID: pid, StartTicks: start, Comm: comm, Inode: c.inode}, ok, c, false)
			if _, _, ok := m.Lookup(sockets.UDP, c.local, srv); ok {
				t.Error("a TCP connection found as UDP")
			}
		})
	}
}

// TestUDPShortLived: a client that sends one datagram from an unconnected
// socket and exits is named by 5-tuple and inode after it is gone.
func TestUDPShortLived(t *testing.T) {
	m := openMap(t)
	for _, tc := range []struct{ mode, network, host string }{
		{"udp", "udp4", "127.0.0.1:0"},
		{"udp", "udp6", "[::1]:0"},
		{"udp46", "udp4", "127.0.0.1:0"},
		{"udpconn", "udp4", "127.0.0.1:0"},
		{"udpconn", "udp6", "[::1]:0"},
	} {
		t.Run(tc.mode+"-"+tc.network, func(t *testing.T) {
			pc, err := net.ListenPacket(tc.network, tc.host)
			if err != nil {
				t.Skip(err)
			}
			defer pc.Close()
			c := runChild(t, tc.mode, pc.LocalAddr().String())
			gone(t, c)
			buf := make([]byte, 64)
			_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := pc.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "hello" {
				t.Fatalf("read: %v %q", err, buf[:n])
			}
			// The packet as the firewall sees it: the source the route chose.
			src := netip.MustParseAddrPort(from.String())
			dst := netip.MustParseAddrPort(pc.LocalAddr().String())
			if src.Port() != c.local.Port() {
				t.Fatalf("datagram from %v, helper bound %v", src, c.local)
			}
			pid, start, ok := m.Lookup(sockets.UDP, src, dst)
			if !ok || pid != c.pid || start != c.start {
				t.Errorf("Lookup(%v -> %v) = %d %d %v, want %d %d", src, dst, pid, start, ok, c.pid, c.start)
			}
			o, ok := m.LookupOwner(sockets.UDP, src, dst)
			checkOwner(t, "LookupOwner", o, ok, c, tc.mode == "udpconn")
			if pid, ok := m.PIDOfInode(c.inode); !ok || pid != c.pid {
				t.Errorf("PIDOfInode(%d) = %d %v, want %d", c.inode, pid, ok, c.pid)
			}
			pid, start, comm, ok := m.Owner(c.inode)
			checkOwner(t, "Owner", Owner{PID: pid, StartTicks: start, Comm: comm}, ok, c, false)
		})
	}
}

// TestAcceptedSocket: a listener is recorded by inode at listen(); the
// server side of a connection is recorded once its owner reads from it.
func TestAcceptedSocket(t *testing.T) {
	m := openMap(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	self, err := process.CurrentKey(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	lnIno := inodeOf(t, ln.(syscall.Conn))
	if pid, start, _, ok := m.Owner(lnIno); !ok || pid != self.PID || start != self.StartTicks {
		t.Errorf("listener inode %d: Owner = %d %d %v, want %v", lnIno, pid, start, ok, self)
	}
	c, stop := startChild(t, "tcphold", ln.Addr().String())
	defer stop()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, _ = conn.Read(make([]byte, 1))
	srv := netip.MustParseAddrPort(conn.LocalAddr().String())
	if pid, _, ok := m.Lookup(sockets.TCP, srv, c.local); !ok || pid != os.Getpid() {
		t.Errorf("accepted socket: Lookup = %d %v, want %d", pid, ok, os.Getpid())
	}
	// The client's end is still the client's.
	if pid, _, ok := m.Lookup(sockets.TCP, c.local, srv); !ok || pid != c.pid {
		t.Errorf("client end: Lookup = %d %v, want %d", pid, ok, c.pid)
	}
}

// TestResolverNoScan: a Resolver with the Map names a live connection's
// owner without scanning /proc.
func TestResolverNoScan(t *testing.T) {
	m := openMap(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, stop := startChild(t, "tcphold", ln.Addr().String())
	defer stop()
	r := sockets.New(sockets.Config{SocketMap: m})
	defer r.Close()
	srv := netip.MustParseAddrPort(ln.Addr().String())
	p, info, err := r.Lookup(sockets.TCP, c.local, srv)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != c.pid || uint64(p.Starttime) != c.start || info.Inode != c.inode {
		t.Errorf("Lookup = pid %d start %d inode %d, want %d %d %d", p.ID, p.Starttime, info.Inode, c.pid, c.start, c.inode)
	}
	if st := r.Stats(); st.FullScans != 0 || st.PartialScans != 0 {
		t.Errorf("stats %+v: the map should have answered", st)
	}
}

// TestPIDOfInodeReusedPID: an entry whose pid now runs another process
// (other start ticks) is not returned by PIDOfInode; Owner still says who
// it was.
func TestPIDOfInodeReusedPID(t *testing.T) {
	m := openMap(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, stop := startChild(t, "tcphold", ln.Addr().String())
	defer stop()
	// Fake a reused pid: rewrite the entry with this process's pid and a
	// start time it does not have.
	m.mu.RLock()
	var v bpf.SocketsSockOwner
	err = m.inodes.Lookup(&c.inode, &v)
	if err == nil {
		v.Pid = uint32(os.Getpid())
		v.StartNs = 1
		err = m.inodes.Put(&c.inode, &v)
	}
	m.mu.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	if pid, ok := m.PIDOfInode(c.inode); ok {
		t.Errorf("PIDOfInode = %d for a reused pid", pid)
	}
	if pid, _, _, ok := m.Owner(c.inode); !ok || pid != os.Getpid() {
		t.Errorf("Owner = %d %v", pid, ok)
	}
}

// TestUnavailableWithoutCapabilities opens a Map in a child without
// CAP_BPF, CAP_SYS_ADMIN, CAP_PERFMON and CAP_NET_ADMIN.
func TestUnavailableWithoutCapabilities(t *testing.T) {
	got := proctest.RunWithoutCaps(t, "-bpf,-sys_admin,-perfmon,-net_admin", helperEnv+"=open")
	if !strings.HasPrefix(got, "unavailable: ") || !strings.Contains(got, "CAP_BPF") || !strings.Contains(got, "CAP_SYS_ADMIN") {
		t.Errorf("child without capabilities: %q", got)
	}
	t.Log(got)
}

// TestWithoutNetAdmin: without CAP_NET_ADMIN (and CAP_SYS_ADMIN) the
// tracing programs run alone.
func TestWithoutNetAdmin(t *testing.T) {
	got := proctest.RunWithoutCaps(t, "-sys_admin,-net_admin", helperEnv+"=open")
	if !strings.HasPrefix(got, "degraded: ") || !strings.Contains(got, "CAP_NET_ADMIN") {
		t.Errorf("child without CAP_NET_ADMIN: %q", got)
	}
	t.Log(got)
}

// TestDegraded: without the cgroup programs, TCP is still recorded and
// unconnected UDP is not.
func TestDegraded(t *testing.T) {
	skipCgroup = true
	defer func() { skipCgroup = false }()
	m := openMap(t)
	if m.Degraded == "" || m.Cgroup != "" {
		t.Fatalf("Degraded %q Cgroup %q", m.Degraded, m.Cgroup)
	}
	t.Log(m.Degraded)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := runChild(t, "tcp", ln.Addr().String())
	if pid, _, ok := m.Lookup(sockets.TCP, c.local, netip.MustParseAddrPort(ln.Addr().String())); !ok || pid != c.pid {
		t.Errorf("TCP: Lookup = %d %v, want %d", pid, ok, c.pid)
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	u := runChild(t, "udp", pc.LocalAddr().String())
	if pid, ok := m.PIDOfInode(u.inode); !ok || pid != u.pid {
		t.Errorf("UDP by inode: %d %v, want %d", pid, ok, u.pid)
	}
	if _, _, ok := m.Lookup(sockets.UDP, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), u.local.Port()), netip.MustParseAddrPort(pc.LocalAddr().String())); ok {
		t.Error("unconnected UDP found by 5-tuple without the cgroup programs")
	}
}

func TestCgroup2Root(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ mountinfo, want string }{
		{"35 24 0:30 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n", "/sys/fs/cgroup"},
		{"31 24 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro\n41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n", "/sys/fs/cgroup/unified"},
		{"50 24 0:30 /sub /mnt/cg rw - cgroup2 cgroup2 rw\n51 24 0:30 / /mnt/my\\040cg rw shared:1 - cgroup2 cgroup2 rw\n", "/mnt/my cg"},
		{"31 24 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro\n", ""},
	} {
		p := filepath.Join(dir, "mountinfo")
		if err := os.WriteFile(p, []byte(tc.mountinfo), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := cgroup2Root(p)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("%q: %q %v, want %q", tc.mountinfo, got, err, tc.want)
		}
	}
}

func TestClosed(t *testing.T) {
	m := openMap(t)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.PIDOfInode(1); ok {
		t.Error("PIDOfInode after Close")
	}
	if _, _, ok := m.Lookup(sockets.TCP, netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2")); ok {
		t.Error("Lookup after Close")
	}
}

// TestResolverNamesExitedClient: a client that connected and exited before
// its packet was inspected is named by a Resolver over a running monitor's
// cache, from the kernel's record of its connection, with no /proc scan.
func TestResolverNamesExitedClient(t *testing.T) {
	m := openMap(t)
	mon, err := procmon.New(procmon.Config{Method: procmon.MethodEbpf})
	if err != nil {
		t.Fatal(err)
	}
	if err := mon.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := runChild(t, "tcp", ln.Addr().String())
	gone(t, c)
	key := process.Key{PID: c.pid, StartTicks: c.start}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if it, ok := mon.Cache().Get(key); ok && it.Exited != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the monitor did not record %s exited", key)
		}
	}
	r := sockets.New(sockets.Config{Cache: mon.Cache(), SocketMap: m})
	srv := netip.MustParseAddrPort(ln.Addr().String())
	p, info, err := r.Lookup(sockets.TCP, c.local, srv)
	if err != nil {
		t.Fatalf("Lookup of the exited client's connection: %v", err)
	}
	if p.Key() != key || info.Source != "ebpf" || !info.Exited {
		t.Errorf("named %s (source %q, exited %v), want %s from ebpf, exited", p.Key(), info.Source, info.Exited, key)
	}
	if st := r.Stats(); st.FullScans != 0 {
		t.Errorf("%d full /proc scans", st.FullScans)
	}
}
