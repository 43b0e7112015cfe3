// Command opensnitch runs, on proctrack, the loop OpenSnitch's daemon runs
// around its procmon package, written with the same calls (only the import
// paths differ): the process monitor is started (monitor.Init), a
// connection is seen, its socket inode found (GetInodeFromNetstat), the pid
// holding the socket (GetPIDFromINode), the process as the monitor cached
// it, with its binary's checksum and its parent (EventsCache), and the
// monitor is stopped (monitor.End).
//
//	sudo go run ./examples/opensnitch                 # ebpf, or the best method below it
//	sudo go run ./examples/opensnitch -method audit   # ebpf, netlink, audit or proc
//
// The connection is one this program makes: it starts a copy of itself that
// connects to a listener of its own, as any client would.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/proctrack/proctrack/examples/internal/cli"
	"github.com/proctrack/proctrack/procmon"
	"github.com/proctrack/proctrack/procmon/monitor"
	"github.com/proctrack/proctrack/sockets/netstat"
)

// connectEnv tells a copy of this program to be the client: connect to the
// address it holds and wait for standard input to close.
const connectEnv = "OPENSNITCH_EXAMPLE_CONNECT"

func main() {
	if beClient() {
		return
	}
	method := flag.String("method", procmon.MethodEbpf, "the monitoring method: ebpf, netlink, audit or proc (falling back down that list)")
	cli.Parse()
	if !slices.Contains(procmon.Methods, *method) {
		cli.Fail("-method %q: want one of %v", *method, procmon.Methods)
	}
	if _, err := run(os.Stdout, *method); err != nil {
		fmt.Fprintln(os.Stderr, "opensnitch:", err)
		os.Exit(1)
	}
}

// beClient acts as the client when connectEnv is set, and reports whether
// it did.
func beClient() bool {
	addr := os.Getenv(connectEnv)
	if addr == "" {
		return false
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	c.Close()
	return true
}

// run starts the monitor with method, looks up the owner of a connection a
// client makes, prints it and stops the monitor. It returns the method that
// ran.
func run(w io.Writer, method string) (string, error) {
	// What OpenSnitch's rule loader does when a rule names a checksum.
	procmon.EventsCache.SetComputeChecksums(true)
	procmon.EventsCache.AddChecksumHash(procmon.HashMD5)

	procmon.SetMonitorMethod(method)
	if errm := monitor.Init(""); errm.What != monitor.NoError {
		fmt.Fprintln(w, "warning:", errm)
	}
	defer monitor.End()
	running := procmon.GetMonitorMethod()
	fmt.Fprintln(w, "method", running)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return running, err
	}
	defer ln.Close()
	self, err := os.Executable()
	if err != nil {
		return running, err
	}
	client := exec.Command(self)
	client.Env = append(os.Environ(), connectEnv+"="+ln.Addr().String())
	stdin, err := client.StdinPipe()
	if err != nil {
		return running, err
	}
	client.Stderr = os.Stderr
	if err := client.Start(); err != nil {
		return running, err
	}
	defer func() { stdin.Close(); _ = client.Wait() }()
	conn, err := ln.Accept()
	if err != nil {
		return running, err
	}
	defer conn.Close()
	// The connection as a firewall sees the client's packet.
	src, dst := conn.RemoteAddr().(*net.TCPAddr), conn.LocalAddr().(*net.TCPAddr)
	return running, owner(w, "tcp", src, dst)
}

// owner is the daemon's lookup: connection -> inode -> pid -> the cached
// process.
func owner(w io.Writer, proto string, src, dst *net.TCPAddr) error {
	entry := &netstat.Entry{Proto: proto, SrcIP: src.IP, SrcPort: uint(src.Port), DstIP: dst.IP, DstPort: uint(dst.Port), UserId: -1, INode: -1}
	var inodes []int
	procmon.GetInodeFromNetstat(entry, &inodes, proto, entry.SrcIP, entry.SrcPort, entry.DstIP, entry.DstPort)
	pid := -1
	for _, inode := range inodes {
		if pid = procmon.GetPIDFromINode(inode, fmt.Sprint(inode, entry.SrcIP, entry.SrcPort, entry.DstIP, entry.DstPort)); pid != -1 {
			entry.INode = inode
			break
		}
	}
	if pid == -1 {
		return fmt.Errorf("no process holds %s %v -> %v (inodes %v)", proto, src, dst, inodes)
	}
	// The monitor caches the process when it sees it start; the checksum
	// follows. A short wait covers the proc method's scan interval.
	var item procmon.ExecEventItem
	found := false
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if item, found = procmon.EventsCache.IsInStoreByPID(pid); found && item.Proc.Checksums[procmon.HashMD5] != "" && item.Proc.Parent != nil {
			break
		}
	}
	if !found {
		return fmt.Errorf("pid %d is not in the process cache", pid)
	}
	p := &item.Proc
	fmt.Fprintf(w, "%s %v -> %v inode %d pid %d %s md5 %s\n", proto, src, dst, entry.INode, p.ID, p.Path, p.Checksums[procmon.HashMD5])
	if p.Parent != nil {
		fmt.Fprintf(w, "  parent pid %d %s\n", p.Parent.ID, p.Parent.Path)
	}
	for _, a := range p.Tree {
		fmt.Fprintf(w, "  ancestor pid %d %s\n", a.Value, a.Key)
	}
	return nil
}
