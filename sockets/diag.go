package sockets

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// sock_diag constants (linux/sock_diag.h, linux/inet_diag.h).
const (
	sockDiagByFamily = 20
	inetDiagReqLen   = 56
	inetDiagMsgLen   = 72
	allStates        = 0xffffffff
)

// Socket is one socket as sock_diag or /proc/net describe it.
type Socket struct {
	Proto  Proto
	Local  netip.AddrPort
	Remote netip.AddrPort
	State  State
	UID    uint32
	Inode  uint64
}

// diag is a NETLINK_SOCK_DIAG connection, opened on first use.
type diag struct {
	mu   sync.Mutex
	conn *netlink.Conn
	err  error
}

func (d *diag) get() (*netlink.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil && d.err == nil {
		d.conn, d.err = netlink.Dial(unix.NETLINK_SOCK_DIAG, nil)
		if d.err != nil {
			d.err = fmt.Errorf("sockets: sock_diag: %w", d.err)
		}
	}
	return d.conn, d.err
}

// shut closes the connection for good: get fails from then on, with an
// error matching ErrClosed.
func (d *diag) shut() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var err error
	if d.conn != nil {
		err = d.conn.Close()
		d.conn = nil
	}
	d.err = fmt.Errorf("sockets: sock_diag: %w", ErrClosed)
	return err
}

// diagProto returns the IPPROTO number sock_diag serves for p, or false
// (raw and ICMP sockets are read from /proc/net).
func diagProto(p Proto) (uint8, bool) {
	switch p {
	case TCP:
		return unix.IPPROTO_TCP, true
	case UDP:
		return unix.IPPROTO_UDP, true
	case UDPLite:
		return unix.IPPROTO_UDPLITE, true
	}
	return 0, false
}

// putAddr writes a in the 16-byte inet_diag_sockid address field.
func putAddr(b []byte, a netip.Addr) {
	if a.Is4() {
		v := a.As4()
		copy(b[:4], v[:])
		return
	}
	v := a.As16()
	copy(b, v[:])
}

// request builds an inet_diag_req_v2. src and dst go to idiag_src/sport
// and idiag_dst/dport as given.
func request(family, proto uint8, states uint32, src, dst netip.AddrPort) []byte {
	b := make([]byte, inetDiagReqLen)
	b[0] = family
	b[1] = proto
	binary.NativeEndian.PutUint32(b[4:], states)
	id := b[8:]
	binary.BigEndian.PutUint16(id[0:], src.Port())
	binary.BigEndian.PutUint16(id[2:], dst.Port())
	if src.Addr().IsValid() {
		putAddr(id[4:20], src.Addr())
	}
	if dst.Addr().IsValid() {
		putAddr(id[20:36], dst.Addr())
	}
	// idiag_if = 0; idiag_cookie = INET_DIAG_NOCOOKIE.
	binary.NativeEndian.PutUint32(id[40:], 0xffffffff)
	binary.NativeEndian.PutUint32(id[44:], 0xffffffff)
	return b
}

// parseMsg decodes an inet_diag_msg.
func parseMsg(p Proto, b []byte) (Socket, bool) {
	if len(b) < inetDiagMsgLen {
		return Socket{}, false
	}
	fam := b[0]
	id := b[4:]
	sport := binary.BigEndian.Uint16(id[0:])
	dport := binary.BigEndian.Uint16(id[2:])
	var src, dst netip.Addr
	switch fam {
	case unix.AF_INET:
		src = netip.AddrFrom4([4]byte(id[4:8]))
		dst = netip.AddrFrom4([4]byte(id[20:24]))
	case unix.AF_INET6:
		src = netip.AddrFrom16([16]byte(id[4:20]))
		dst = netip.AddrFrom16([16]byte(id[20:36]))
	default:
		return Socket{}, false
	}
	return Socket{
		Proto:  p,
		Local:  netip.AddrPortFrom(src, sport),
		Remote: netip.AddrPortFrom(dst, dport),
		State:  State(b[1]),
		UID:    binary.NativeEndian.Uint32(b[64:]),
		Inode:  uint64(binary.NativeEndian.Uint32(b[68:])),
	}, true
}

// errNotFound is an exact query that matched no socket.
var errNotFound = errors.New("no such socket")

// exact asks the kernel for the one socket matching the request.
func (d *diag) exact(p Proto, family uint8, src, dst netip.AddrPort) (Socket, error) {
	proto, ok := diagProto(p)
	if !ok {
		return Socket{}, errNotFound
	}
	c, err := d.get()
	if err != nil {
		return Socket{}, err
	}
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: sockDiagByFamily, Flags: netlink.Request},
		Data:   request(family, proto, allStates, src, dst),
	})
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESTALE) {
			return Socket{}, errNotFound
		}
		return Socket{}, fmt.Errorf("sockets: sock_diag query: %w", err)
	}
	for _, m := range msgs {
		if s, ok := parseMsg(p, m.Data); ok {
			return s, nil
		}
	}
	return Socket{}, errNotFound
}

// dump lists every socket of protocol p and family (AF_INET or AF_INET6).
func (d *diag) dump(p Proto, family uint8) ([]Socket, error) {
	proto, ok := diagProto(p)
	if !ok {
		return nil, fmt.Errorf("sockets: sock_diag does not serve %v here", p)
	}
	c, err := d.get()
	if err != nil {
		return nil, err
	}
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: sockDiagByFamily, Flags: netlink.Request | netlink.Dump},
		Data:   request(family, proto, allStates, netip.AddrPort{}, netip.AddrPort{}),
	})
	if err != nil {
		return nil, fmt.Errorf("sockets: sock_diag dump %v/%d: %w", p, family, err)
	}
	out := make([]Socket, 0, len(msgs))
	for _, m := range msgs {
		if s, ok := parseMsg(p, m.Data); ok {
			out = append(out, s)
		}
	}
	return out, nil
}
