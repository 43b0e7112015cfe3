package process

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	prom "github.com/prometheus/procfs"

	"github.com/proctrack/proctrack/internal/procfs"
)

// Statm is /proc/<pid>/statm: memory usage in pages.
type Statm struct {
	Size, Resident, Shared, Text, Lib, Data, Dt uint64
}

// IOStats is /proc/<pid>/io: the process's I/O counters.
type IOStats struct {
	RChar, WChar, SyscR, SyscW uint64
	ReadBytes, WriteBytes      uint64
	CancelledWriteBytes        int64
}

// NetStats are the totals of /proc/<pid>/net/dev: traffic of every interface
// of the process's network namespace.
type NetStats struct {
	RxBytes, RxPackets, TxBytes, TxPackets uint64
}

// Descriptor is an open file descriptor: its number and what
// /proc/<pid>/fd/<n> points to ("socket:[1234]", a path, "pipe:[..]").
type Descriptor struct {
	FD     int
	Target string
}

// GetExtraInfo reads what GetDetails does not: the raw status, stat and stack
// files, memory usage (Statm), I/O counters, network totals, open
// descriptors and memory maps. Files the caller may not read are left empty;
// a process that exited is an error matching ErrGone. A Process without a
// start time (NewProcessEmpty, a literal) takes the start time of the
// process that has the pid now.
func (p *Process) GetExtraInfo() error {
	if p.Starttime == 0 {
		// A Process made without reading /proc (NewProcessEmpty, a literal)
		// is the process that has the pid now: the confirmation below
		// compares with its start time.
		s, _, err := procfs.ReadStat(procRoot, p.ID)
		if err != nil {
			return err
		}
		p.Starttime = int64(s.StartTicks)
		p.StartedAt = procfs.TicksToTime(bootTime(), s.StartTicks)
	}
	b, err := procfs.ReadFile(p.procPath("stat"))
	if err != nil {
		return err
	}
	p.Stat = string(b)
	if b, err = procfs.ReadFile(p.procPath("status")); err == nil {
		p.Status = string(b)
	}
	if b, err = procfs.ReadFile(p.procPath("stack")); err == nil {
		p.Stack = string(b)
	}
	p.ReadStatm()
	p.ReadMaps()
	fs, err := prom.NewFS(procRoot)
	if err != nil {
		return err
	}
	pr, err := fs.Proc(p.ID)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrGone, err)
	}
	if io, err := pr.IO(); err == nil {
		p.IOStats = &IOStats{RChar: io.RChar, WChar: io.WChar, SyscR: io.SyscR, SyscW: io.SyscW,
			ReadBytes: io.ReadBytes, WriteBytes: io.WriteBytes, CancelledWriteBytes: io.CancelledWriteBytes}
	}
	if nd, err := pr.NetDev(); err == nil {
		t := nd.Total()
		p.NetStats = &NetStats{RxBytes: t.RxBytes, RxPackets: t.RxPackets, TxBytes: t.TxBytes, TxPackets: t.TxPackets}
	}
	p.Descriptors = p.readDescriptors()
	return p.confirm()
}

// ReadStatm reads /proc/<pid>/statm into Statm.
func (p *Process) ReadStatm() {
	b, err := procfs.ReadFile(p.procPath("statm"))
	if err != nil {
		return
	}
	f := strings.Fields(string(b))
	if len(f) < 7 {
		return
	}
	var v [7]uint64
	for i := range v {
		if v[i], err = strconv.ParseUint(f[i], 10, 64); err != nil {
			return
		}
	}
	p.Statm = &Statm{Size: v[0], Resident: v[1], Shared: v[2], Text: v[3], Lib: v[4], Data: v[5], Dt: v[6]}
}

func (p *Process) readDescriptors() []*Descriptor {
	dir := p.procPath("fd")
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	out := make([]*Descriptor, 0, len(names))
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		target, err := os.Readlink(dir + "/" + n)
		if err != nil {
			continue // closed since the directory was read
		}
		out = append(out, &Descriptor{FD: fd, Target: target})
	}
	return out
}

// MaxImageSize bounds what DumpImage returns.
const MaxImageSize = 256 << 20

// DumpImage returns the memory the process has mapped from its binary (the
// readable mappings of /proc/<pid>/maps whose file is the exe), read from
// /proc/<pid>/mem in address order. It needs the privilege to ptrace the
// process and returns at most MaxImageSize bytes.
func (p *Process) DumpImage() ([]byte, error) {
	maps, err := procfs.ReadFile(p.procPath("maps"))
	if err != nil {
		return nil, err
	}
	link, err := p.ReadExeLink()
	if err != nil {
		return nil, err
	}
	mem, err := os.Open(p.procPath("mem"))
	if err != nil {
		return nil, err
	}
	defer mem.Close()
	var out []byte
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// start-end perms offset dev inode pathname
		f := strings.SplitN(sc.Text(), " ", 6)
		if len(f) < 6 || strings.TrimLeft(f[5], " ") != link || f[1][0] != 'r' {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		n := end - start
		if uint64(len(out))+n > MaxImageSize {
			return out, fmt.Errorf("image of pid %d exceeds %d bytes", p.ID, MaxImageSize)
		}
		buf := make([]byte, n)
		if _, err := mem.ReadAt(buf, int64(start)); err != nil {
			return out, fmt.Errorf("read pid %d memory at %#x: %w", p.ID, start, err)
		}
		out = append(out, buf...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("pid %d: no mapping of %s", p.ID, link)
	}
	return out, nil
}
