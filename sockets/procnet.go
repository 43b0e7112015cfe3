package sockets

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
)

// procNetFile returns the /proc/net file name for p and family.
func procNetFile(p Proto, fam Family) string {
	n := p.String()
	if fam == IPv6 {
		n += "6"
	}
	return n
}

// readProcNet parses /proc/net/{tcp,udp,udplite,raw,icmp}[6] under root.
func readProcNet(root string, p Proto, fam Family) ([]Socket, error) {
	f, err := os.Open(filepath.Join(root, "net", procNetFile(p, fam)))
	if err != nil {
		return nil, fmt.Errorf("sockets: %w", err)
	}
	defer f.Close()
	var out []Socket
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		if s, ok := parseProcNetLine(p, sc.Bytes()); ok {
			out = append(out, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("sockets: reading /proc/net/%s: %w", procNetFile(p, fam), err)
	}
	return out, nil
}

// parseProcNetLine parses one line:
// "sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...".
func parseProcNetLine(p Proto, line []byte) (Socket, bool) {
	f := bytes.Fields(line)
	if len(f) < 10 {
		return Socket{}, false
	}
	local, ok1 := parseHexAddrPort(f[1])
	remote, ok2 := parseHexAddrPort(f[2])
	st, err1 := strconv.ParseUint(string(f[3]), 16, 8)
	uid, err2 := strconv.ParseUint(string(f[7]), 10, 32)
	ino, err3 := strconv.ParseUint(string(f[9]), 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil || err3 != nil {
		return Socket{}, false
	}
	return Socket{Proto: p, Local: local, Remote: remote, State: State(st), UID: uint32(uid), Inode: ino}, true
}

// parseHexAddrPort parses "0100007F:0050" (addresses are 32-bit words in
// host order, the port big-endian hex).
func parseHexAddrPort(b []byte) (netip.AddrPort, bool) {
	i := bytes.IndexByte(b, ':')
	if i != 8 && i != 32 { // 4 or 16 bytes in hex; anything else would overrun raw
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(string(b[i+1:]), 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	var raw [16]byte
	n, err := hex.Decode(raw[:], b[:i])
	if err != nil {
		return netip.AddrPort{}, false
	}
	// Each 32-bit word is printed in host (little-endian) order.
	for w := 0; w < n; w += 4 {
		v := binary.LittleEndian.Uint32(raw[w:])
		binary.BigEndian.PutUint32(raw[w:], v)
	}
	var a netip.Addr
	if n == 4 {
		a = netip.AddrFrom4([4]byte(raw[:4]))
	} else {
		a = netip.AddrFrom16(raw)
	}
	return netip.AddrPortFrom(a, uint16(port)), true
}
