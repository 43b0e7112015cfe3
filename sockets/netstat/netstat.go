// Package netstat holds Entry, one connection as /proc/net/* lists it, in the
// shape OpenSnitch's daemon/netstat package gives it, so that code written
// for OpenSnitch's procmon.GetInodeFromNetstat compiles against proctrack's
// procmon with only the import paths changed. New code uses
// sockets.Resolver.Lookup, which answers with sockets.SocketInfo.
package netstat

import "net"

// Entry is one connection of /proc/net/tcp, udp, udplite, raw or icmp (and
// their IPv6 files): protocol, addresses, ports, the owner's uid and the
// socket inode. UserId keeps OpenSnitch's spelling; -1 means unknown for it
// and for INode.
type Entry struct {
	Proto   string
	SrcIP   net.IP
	DstIP   net.IP
	SrcPort uint
	DstPort uint
	UserId  int
	INode   int
}

// NewEntry returns an Entry with the given values.
func NewEntry(proto string, srcIP net.IP, srcPort uint, dstIP net.IP, dstPort uint, userID int, iNode int) Entry {
	return Entry{Proto: proto, SrcIP: srcIP, SrcPort: srcPort, DstIP: dstIP, DstPort: dstPort, UserId: userID, INode: iNode}
}
