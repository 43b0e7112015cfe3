package sockets

import (
	"fmt"
	"net/netip"
	"strings"
)

// Proto is a transport protocol a socket can be looked up for.
type Proto uint8

// The protocols Lookup serves. ICMP covers ICMP and ICMPv6 ping sockets
// (the family comes from the addresses).
const (
	TCP Proto = iota + 1
	UDP
	UDPLite
	Raw
	ICMP
)

var protoNames = [...]string{TCP: "tcp", UDP: "udp", UDPLite: "udplite", Raw: "raw", ICMP: "icmp"}

// String returns the protocol's lower-case name ("tcp", "udplite", ...).
func (p Proto) String() string {
	if int(p) < len(protoNames) && protoNames[p] != "" {
		return protoNames[p]
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// ParseProto parses a protocol name as the seed API passes it: "tcp",
// "tcp6", "udp", "udp6", "udplite", "udplite6", "raw", "raw6", "icmp",
// "icmp6", "icmpv6" (case-insensitive).
func ParseProto(s string) (Proto, error) {
	s = strings.ToLower(s)
	s = strings.TrimSuffix(strings.TrimSuffix(s, "6"), "v")
	for p, n := range protoNames {
		if n != "" && n == s {
			return Proto(p), nil
		}
	}
	return 0, fmt.Errorf("sockets: unknown protocol %q", s)
}

// State is a socket state as the kernel numbers it (include/net/tcp_states.h).
// UDP sockets are Established when connected and Close otherwise.
type State uint8

// Socket states.
const (
	Established State = iota + 1
	SynSent
	SynRecv
	FinWait1
	FinWait2
	TimeWait
	Close
	CloseWait
	LastAck
	Listen
	Closing
	NewSynRecv
	BoundInactive
)

var stateNames = [...]string{
	Established: "ESTAB", SynSent: "SYN-SENT", SynRecv: "SYN-RECV", FinWait1: "FIN-WAIT-1",
	FinWait2: "FIN-WAIT-2", TimeWait: "TIME-WAIT", Close: "UNCONN", CloseWait: "CLOSE-WAIT",
	LastAck: "LAST-ACK", Listen: "LISTEN", Closing: "CLOSING", NewSynRecv: "NEW-SYN-RECV",
	BoundInactive: "BOUND-INACTIVE",
}

// String returns the state as ss(8) prints it ("ESTAB", "LISTEN", "UNCONN").
func (s State) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Family is the address family of a socket.
type Family uint8

// Address families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// SocketInfo is what Lookup learned about the socket behind a connection.
type SocketInfo struct {
	Proto  Proto
	Family Family
	Local  netip.AddrPort
	Remote netip.AddrPort
	State  State
	UID    uint32
	Inode  uint64
	// PID is the owner found (0 if none); FD the descriptor it holds the
	// socket on (-1 when unknown, e.g. from an extension hook).
	PID int
	FD  int
	// Source says where the 5-tuple was resolved: "sock_diag", "proc_net",
	// "recent" (a connection looked up earlier whose socket is gone) or
	// "ebpf" (the kernel's record of a connection whose socket is gone:
	// see ConnMap).
	Source string
	// Exited reports that the owner had exited and was named from the
	// process cache's grace period.
	Exited bool
}
