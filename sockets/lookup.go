package sockets

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/procmon/process"
)

// Lookup names the process behind a connection: proto and the packet's
// source and destination (IPv4, IPv6 or IPv4-mapped IPv6). src is normally
// the local end (an outgoing packet); an incoming packet (src remote) is
// tried as well.
//
// Connection -> socket, in this order:
//
//   - TCP, UDP, UDP-Lite: one exact sock_diag (NETLINK_INET_DIAG) query,
//     answered by the kernel's own socket lookup. For TCP that is the
//     established 4-tuple, then a listener on the local address or the
//     wildcard address. For UDP and UDP-Lite it is the kernel's receive
//     lookup: a connected socket, then an unconnected one bound to the
//     local address, then one bound to the wildcard address (so an
//     unconnected UDP socket's dst, which the kernel records as 0, still
//     matches). IPv4-mapped addresses are asked as IPv4 first (a dual-stack
//     socket talking to an IPv4 peer is hashed with IPv4 addresses), then
//     as IPv6. If the src/dst order finds nothing, dst/src is asked.
//   - Raw and ICMP (ping) sockets, and every protocol when sock_diag is
//     unavailable: /proc/net/{tcp,udp,udplite,raw,icmp}[6], matching the
//     exact pair, then the local end with an unconnected remote, then the
//     wildcard local address. For raw sockets the "port" is the IP protocol.
//
// Socket -> process: PIDOfInode's order. A socket with inode 0 (TIME-WAIT,
// orphaned after close) or one not found at all is answered from the
// connections Lookup named in the last RecentConns while their owner is in
// the process cache's grace period (SocketInfo.Exited, Source "recent");
// a connection not found src -> dst is looked up there before dst -> src.
//
// The error matches ErrNotFound (no socket) or ErrNoOwner (a socket no
// process holds); the SocketInfo is filled as far as it was learned.
func (r *Resolver) Lookup(proto Proto, src, dst netip.AddrPort) (*process.Process, SocketInfo, error) {
	if r.closed.Load() {
		return nil, SocketInfo{Proto: proto, FD: -1}, fmt.Errorf("sockets: lookup: %w", ErrClosed)
	}
	ck := connKey{proto: proto, src: src, dst: dst}
	s, source, err := r.findSocket(proto, src, dst)
	if errors.Is(err, ErrNotFound) {
		// An exited owner's connection is a better answer than the reverse
		// direction (on loopback both ends are local).
		if p, old, ok := r.recent(ck); ok {
			return p, old, nil
		}
		s, source, err = r.findSocket(proto, dst, src)
	}
	info := SocketInfo{Proto: proto, FD: -1, Source: source}
	if err == nil {
		info.Local, info.Remote, info.State, info.UID, info.Inode = s.Local, s.Remote, s.State, s.UID, s.Inode
		info.Family = IPv6
		if s.Local.Addr().Is4() {
			info.Family = IPv4
		}
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, info, err
	}
	if err == nil && s.Inode != 0 {
		if f, ok := r.resolve(s.Inode); ok {
			info.PID, info.FD, info.Exited = int(f.pid), int(f.fd), f.exited
			p, perr := r.processOf(f)
			if perr == nil {
				if !f.exited {
					r.noteOwner(int(f.pid))
				}
				r.remember(ck, info, p)
				return p, info, nil
			}
		}
	}
	// A socket gone (or ownerless) with its owner: a connection named before,
	// or one the kernel recorded (an eBPF socket map).
	if p, old, ok := r.recent(ck); ok {
		return p, old, nil
	}
	if p, kinfo, ok := r.fromConnMap(proto, src, dst); ok {
		return p, kinfo, nil
	}
	if err != nil {
		return nil, info, fmt.Errorf("%w: %v %v -> %v", ErrNotFound, proto, src, dst)
	}
	return nil, info, fmt.Errorf("%w: %v %v -> %v (inode %d)", ErrNoOwner, proto, src, dst, s.Inode)
}

// fromConnMap names a connection's owner from the SocketMap's record of
// connections (ConnMap), in either direction.
func (r *Resolver) fromConnMap(proto Proto, src, dst netip.AddrPort) (*process.Process, SocketInfo, bool) {
	cm, ok := r.cfg.SocketMap.(ConnMap)
	if !ok {
		return nil, SocketInfo{}, false
	}
	pid, start, ok := cm.Lookup(proto, src, dst)
	if !ok {
		return nil, SocketInfo{}, false
	}
	f := found{owner: owner{pid: int32(pid), tid: int32(pid), fd: -1}, start: start}
	if it, cached := r.store.Get(process.Key{PID: pid, StartTicks: start}); cached && it.Exited != 0 {
		f.exited = true
	}
	p, err := r.processOf(f)
	if err != nil {
		return nil, SocketInfo{}, false
	}
	info := SocketInfo{Proto: proto, Local: src, Remote: dst, PID: pid, FD: -1, Source: "ebpf", Exited: f.exited}
	info.Family = IPv6
	if src.Addr().Is4() || src.Addr().Is4In6() {
		info.Family = IPv4
	}
	return p, info, true
}

func (r *Resolver) remember(k connKey, info SocketInfo, p *process.Process) {
	e := connEntry{info: info, key: p.Key(), at: time.Now().UnixNano()}
	r.mu.Lock()
	if len(r.conns) >= maxRecentConns {
		clear(r.conns)
	}
	r.conns[k] = e
	r.mu.Unlock()
}

// recent answers a connection named before whose owner has exited and is
// still in the process cache's grace period.
func (r *Resolver) recent(k connKey) (*process.Process, SocketInfo, bool) {
	r.mu.RLock()
	e, ok := r.conns[k]
	r.mu.RUnlock()
	now := time.Now().UnixNano()
	if !ok || now-e.at > int64(r.cfg.RecentConns) {
		return nil, SocketInfo{}, false
	}
	it, ok := r.store.Get(e.key)
	if !ok {
		return nil, SocketInfo{}, false
	}
	if it.Exited == 0 {
		if cur, err := process.CurrentKey(e.key.PID); err == nil && cur == e.key {
			return nil, SocketInfo{}, false // alive: the socket moved or closed; not an exited owner
		}
		r.store.Exit(e.key)
		it.Exited = now
	}
	if now-it.Exited > int64(it.TTL)*int64(time.Second) {
		return nil, SocketInfo{}, false
	}
	info := e.info
	info.Exited, info.Source = true, "recent"
	return it.Proc, info, true
}

// findSocket resolves a connection to a socket.
func (r *Resolver) findSocket(proto Proto, src, dst netip.AddrPort) (Socket, string, error) {
	if _, ok := diagProto(proto); ok {
		s, err := r.diagFind(proto, src, dst)
		if err == nil {
			return s, "sock_diag", nil
		}
		if errors.Is(err, errNotFound) {
			return Socket{}, "sock_diag", ErrNotFound
		}
		// sock_diag unavailable: fall back to /proc/net.
	}
	s, err := r.procNetFind(proto, src, dst)
	return s, "proc_net", err
}

// diagFind runs the exact sock_diag queries described on Lookup.
func (r *Resolver) diagFind(proto Proto, src, dst netip.AddrPort) (Socket, error) {
	type try struct {
		fam      uint8
		src, dst netip.AddrPort
	}
	var tries []try
	s4, d4 := unmap(src), unmap(dst)
	if s4.Addr().Is4() && (d4.Addr().Is4() || !dst.Addr().IsValid() || dst.Addr().IsUnspecified()) {
		tries = append(tries, try{unix.AF_INET, s4, d4})
	}
	if src.Addr().Is6() || dst.Addr().Is6() {
		tries = append(tries, try{unix.AF_INET6, as6(src), as6(dst)})
	}
	var lastErr error = errNotFound
	for _, t := range tries {
		a, b := t.src, t.dst
		if proto != TCP {
			// udp_dump_one takes idiag_src as the remote end ("swapped for
			// historical reasons").
			a, b = b, a
		}
		s, err := r.diag.exact(proto, t.fam, a, b)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errNotFound) {
			lastErr = err
		}
	}
	return Socket{}, lastErr
}

func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

func as6(a netip.AddrPort) netip.AddrPort {
	if !a.Addr().IsValid() {
		return netip.AddrPortFrom(netip.IPv6Unspecified(), a.Port())
	}
	return netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
}

// procNetFind searches /proc/net for the connection.
func (r *Resolver) procNetFind(proto Proto, src, dst netip.AddrPort) (Socket, error) {
	var all []Socket
	for _, fam := range []Family{IPv4, IPv6} {
		ss, err := readProcNet(r.cfg.ProcRoot, proto, fam)
		if err == nil {
			all = append(all, ss...)
		}
	}
	if s, ok := matchSockets(all, src, dst); ok {
		return s, nil
	}
	return Socket{}, ErrNotFound
}

// matchSockets finds local/remote in socks: the exact pair, then local
// with an unconnected remote, then the wildcard local address.
func matchSockets(socks []Socket, local, remote netip.AddrPort) (Socket, bool) {
	l, rm := unmap(local), unmap(remote)
	best, bestScore := Socket{}, 0
	for _, s := range socks {
		sl, sr := unmap(s.Local), unmap(s.Remote)
		if sl.Port() != l.Port() {
			continue
		}
		score := 0
		switch {
		case sl.Addr() == l.Addr() && sr == rm:
			score = 3
		case sl.Addr() == l.Addr() && sr.Addr().IsUnspecified() && sr.Port() == 0:
			score = 2
		case sl.Addr().IsUnspecified() && (sr == rm || sr.Addr().IsUnspecified() && sr.Port() == 0):
			score = 1
		}
		if score > bestScore {
			best, bestScore = s, score
		}
	}
	return best, bestScore > 0
}

// Sockets lists every TCP, UDP and UDP-Lite socket by sock_diag dumps
// (/proc/net when sock_diag fails), then raw and ICMP sockets from
// /proc/net.
func (r *Resolver) Sockets() ([]Socket, error) {
	if r.closed.Load() {
		return nil, fmt.Errorf("sockets: list: %w", ErrClosed)
	}
	var out []Socket
	for _, p := range []Proto{TCP, UDP, UDPLite, Raw, ICMP} {
		for _, fam := range []Family{IPv4, IPv6} {
			var ss []Socket
			var err error
			if _, ok := diagProto(p); ok {
				af := uint8(unix.AF_INET)
				if fam == IPv6 {
					af = unix.AF_INET6
				}
				ss, err = r.diag.dump(p, af)
			}
			if ss == nil {
				var perr error
				ss, perr = readProcNet(r.cfg.ProcRoot, p, fam)
				if perr != nil && err != nil && p == TCP {
					return out, errors.Join(err, perr)
				}
			}
			out = append(out, ss...)
		}
	}
	return out, nil
}

// Owner returns the process holding socket inode, resolved as PIDOfInode.
func (r *Resolver) Owner(inode uint64) (*process.Process, bool) {
	f, ok := r.resolve(inode)
	if !ok {
		return nil, false
	}
	p, err := r.processOf(f)
	return p, err == nil
}
