package sockebpf

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/bpf"
	"github.com/proctrack/proctrack/internal/kernel"
	"github.com/proctrack/proctrack/procmon/process"
	"github.com/proctrack/proctrack/sockets"
)

const (
	kernelBTF      = "/sys/kernel/btf/vmlinux"
	mountInfo      = "/proc/self/mountinfo"
	nsPerTick      = 10_000_000 // start_boottime ns per clock tick (USER_HZ 100)
	ipprotoTCP     = 6
	ipprotoUDP     = 17
	ipprotoUDPLite = 136
)

// Map is the kernel's record of socket owners. Its methods are safe for
// concurrent use; after Close they report nothing.
type Map struct {
	mu     sync.RWMutex
	coll   *ebpf.Collection
	inodes *ebpf.Map
	conns  *ebpf.Map
	links  []link.Link
	// Cgroup is the cgroup v2 directory the cgroup programs are attached
	// to, "" when they are not used.
	Cgroup string
	// Degraded says why the cgroup programs are not used ("" when they
	// are): unconnected UDP sends are then not recorded by 5-tuple.
	Degraded string
}

// ErrUnavailable is matched by Open's error when BPF cannot be used here.
// It is the same value as methods.ErrUnavailable.
var ErrUnavailable = kernel.ErrUnavailable

// unavailable returns an error matching ErrUnavailable.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: sockets/ebpf: "+format, append([]any{ErrUnavailable}, args...)...)
}

// skipCgroup makes Open leave the cgroup programs out (tests of the
// degraded mode).
var skipCgroup = false

var cgroupPrograms = map[string]ebpf.AttachType{
	bpf.SocketsProgUdpSendmsg4: ebpf.AttachCGroupUDP4Sendmsg,
	bpf.SocketsProgUdpSendmsg6: ebpf.AttachCGroupUDP6Sendmsg,
}

// Open loads and attaches the programs (see the package doc). The error
// matches ErrUnavailable, with the reason, when BPF cannot be used
// here. When only the cgroup programs cannot be used (no cgroup v2 mount,
// no CAP_NET_ADMIN, a kernel that refuses them) the Map runs without them
// and Degraded says why: unconnected UDP sends are then not recorded by
// 5-tuple.
func Open() (*Map, error) {
	if err := kernel.CheckBPFPrivileges("the socket programs"); err != nil {
		return nil, unavailable("%w", err)
	}
	if _, err := os.Stat(kernelBTF); err != nil {
		return nil, unavailable("no kernel BTF, which CO-RE programs need: %w", err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, unavailable("remove the memlock limit: %w", err)
	}
	spec, err := bpf.LoadSockets()
	if err != nil {
		return nil, fmt.Errorf("sockets/ebpf: read the embedded BPF object: %w", err)
	}
	m := &Map{}
	cg, err := cgroup2Root(mountInfo)
	switch {
	case skipCgroup:
		err = errors.New("left out by the caller")
	case err == nil && !kernel.HasCap(unix.CAP_SYS_ADMIN) && !kernel.HasCap(unix.CAP_NET_ADMIN):
		err = errors.New("no CAP_NET_ADMIN or CAP_SYS_ADMIN")
	}
	if err != nil {
		m.Degraded = "cgroup/sendmsg programs not used: " + err.Error()
		for name := range cgroupPrograms {
			delete(spec.Programs, name)
		}
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil && m.Degraded == "" {
		// Keep the tracing programs if only the cgroup programs fail.
		m.Degraded = "cgroup/sendmsg programs not used: " + kernel.DescribeLoadError(err)
		for name := range cgroupPrograms {
			delete(spec.Programs, name)
		}
		coll, err = ebpf.NewCollection(spec)
	}
	if err != nil {
		return nil, unavailable("load the programs: %s", kernel.DescribeLoadError(err))
	}
	m.coll = coll
	m.inodes = coll.Maps[bpf.SocketsMapInodeOwners]
	m.conns = coll.Maps[bpf.SocketsMapConnOwners]
	for _, name := range []string{bpf.SocketsProgTcpState, bpf.SocketsProgSockSend, bpf.SocketsProgSockRecv} {
		l, err := link.AttachTracing(link.TracingOptions{Program: coll.Programs[name], AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			m.Close()
			return nil, unavailable("attach %s: %w", name, err)
		}
		m.links = append(m.links, l)
	}
	if m.Degraded != "" {
		return m, nil
	}
	var cgLinks []link.Link
	for _, name := range []string{bpf.SocketsProgUdpSendmsg4, bpf.SocketsProgUdpSendmsg6} {
		l, err := link.AttachCgroup(link.CgroupOptions{Path: cg, Attach: cgroupPrograms[name], Program: coll.Programs[name]})
		if err != nil {
			for _, l := range cgLinks {
				_ = l.Close()
			}
			m.Degraded = fmt.Sprintf("cgroup/sendmsg programs not used: attach %s to %s: %v", name, cg, err)
			return m, nil
		}
		cgLinks = append(cgLinks, l)
	}
	m.links = append(m.links, cgLinks...)
	m.Cgroup = cg
	return m, nil
}

// Close detaches the programs and frees the maps.
func (m *Map) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for i := len(m.links) - 1; i >= 0; i-- {
		errs = append(errs, m.links[i].Close())
	}
	m.links = nil
	if m.coll != nil {
		m.coll.Close()
		m.coll, m.inodes, m.conns = nil, nil, nil
	}
	return errors.Join(errs...)
}

// Owner is a recorded owner.
type Owner struct {
	PID        int
	StartTicks uint64 // /proc/<pid>/stat field 22
	Comm       string
	Inode      uint64 // the socket's inode, 0 when recorded by 5-tuple only
}

func ownerOf(v *bpf.SocketsSockOwner) Owner {
	var b strings.Builder
	for _, c := range v.Comm {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return Owner{PID: int(v.Pid), StartTicks: v.StartNs / nsPerTick, Comm: b.String(), Inode: v.Inode}
}

// Owner returns the process recorded for socket inode: its pid, start
// ticks and comm. The entry may be stale (see the package doc): compare
// startTicks with the pid's current start ticks before trusting pid as a
// live process.
func (m *Map) Owner(inode uint64) (pid int, startTicks uint64, comm string, ok bool) {
	o, ok := m.ownerOfInode(inode)
	return o.PID, o.StartTicks, o.Comm, ok
}

func (m *Map) ownerOfInode(inode uint64) (Owner, bool) {
	if inode == 0 {
		return Owner{}, false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.inodes == nil {
		return Owner{}, false
	}
	var v bpf.SocketsSockOwner
	if err := m.inodes.Lookup(&inode, &v); err != nil {
		return Owner{}, false
	}
	return ownerOf(&v), true
}

// PIDOfInode returns the pid recorded for socket inode (sockets.SocketMap).
// A pid that now belongs to another process (same pid, other start ticks)
// is not returned; an owner that exited is.
func (m *Map) PIDOfInode(inode uint64) (int, bool) {
	o, ok := m.ownerOfInode(inode)
	if !ok {
		return 0, false
	}
	if cur, err := process.CurrentKey(o.PID); err == nil && cur.StartTicks != o.StartTicks {
		return 0, false
	}
	return o.PID, true
}

// Lookup returns the process recorded for a TCP, UDP or UDP-Lite
// connection: src and dst as a packet carries them (IPv4, IPv6 or
// IPv4-mapped IPv6). It tries src as the local end, then with the
// unspecified local address (an unconnected UDP socket bound to the
// wildcard), then dst as the local end (an incoming packet). The entry may
// be stale (see the package doc).
func (m *Map) Lookup(proto sockets.Proto, src, dst netip.AddrPort) (pid int, startTicks uint64, ok bool) {
	o, ok := m.LookupOwner(proto, src, dst)
	return o.PID, o.StartTicks, ok
}

// LookupOwner is Lookup returning the whole Owner.
func (m *Map) LookupOwner(proto sockets.Proto, src, dst netip.AddrPort) (Owner, bool) {
	var p uint8
	switch proto {
	case sockets.TCP:
		p = ipprotoTCP
	case sockets.UDP:
		p = ipprotoUDP
	case sockets.UDPLite:
		p = ipprotoUDPLite
	default:
		return Owner{}, false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.conns == nil {
		return Owner{}, false
	}
	for _, pair := range [2][2]netip.AddrPort{{src, dst}, {dst, src}} {
		k := bpf.SocketsConnKey{Proto: p, Sport: pair[0].Port(), Dport: pair[1].Port(),
			Saddr: pair[0].Addr().As16(), Daddr: pair[1].Addr().As16()}
		var v bpf.SocketsSockOwner
		if m.conns.Lookup(&k, &v) == nil {
			return ownerOf(&v), true
		}
		if p == ipprotoTCP {
			continue
		}
		// Unconnected UDP sockets bound to the wildcard address.
		wild := []netip.Addr{netip.IPv6Unspecified()}
		if pair[0].Addr().Unmap().Is4() {
			wild = []netip.Addr{netip.AddrFrom4([4]byte{}), netip.IPv6Unspecified()}
		}
		for _, w := range wild {
			k.Saddr = w.As16()
			if m.conns.Lookup(&k, &v) == nil {
				return ownerOf(&v), true
			}
		}
	}
	return Owner{}, false
}

// cgroup2Root returns the mount point of the cgroup v2 hierarchy's root
// (/sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a hybrid
// one) from a mountinfo file.
func cgroup2Root(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("find the cgroup v2 mount: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options... - fstype source super
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, fl := range fields {
			if fl == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+1 >= len(fields) || fields[sep+1] != "cgroup2" || fields[3] != "/" {
			continue
		}
		return unescapeMount(fields[4]), nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("find the cgroup v2 mount: %w", err)
	}
	return "", errors.New("no cgroup v2 hierarchy mounted (its root is needed for the UDP programs)")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
