package process

import (
	"bytes"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/internal/procfs"
)

const deletedSuffix = " (deleted)"

// ReadCmdline reads the argument list from /proc/<pid>/cmdline into Args,
// one element per argument, then applies CleanArgs. The file is empty for
// kernel threads and zombies, and Args is then left nil. At most
// DefaultMaxArgsBytes are kept (see BoundArgs); ArgsTruncated tells whether
// the list was cut.
func (p *Process) ReadCmdline() {
	b, cut, err := procfs.ReadFileMax(p.procPath("cmdline"), DefaultMaxArgsBytes)
	if err != nil {
		return
	}
	p.setArgs(procfs.SplitNul(b), cut)
}

// setArgs sets Args from a read of at most DefaultMaxArgsBytes that was cut
// or not, and applies CleanArgs.
func (p *Process) setArgs(args []string, cut bool) {
	if cut {
		// The last element is the beginning of an argument and has no NUL:
		// count one for it, as BoundArgs does.
		args, _ = BoundArgs(args, DefaultMaxArgsBytes)
	}
	p.Args, p.ArgsTruncated = args, cut
	p.CleanArgs()
}

// ReadComm reads the task name from /proc/<pid>/comm.
func (p *Process) ReadComm() error {
	b, err := procfs.ReadFile(p.procPath("comm"))
	if err != nil {
		return err
	}
	p.Comm = strings.TrimSuffix(string(b), "\n")
	return nil
}

// ReadCwd reads the working directory from /proc/<pid>/cwd.
func (p *Process) ReadCwd() error {
	cwd, err := procfs.Readlink(p.procPath("cwd"))
	if err != nil {
		return err
	}
	p.CWD = strings.TrimSuffix(cwd, deletedSuffix)
	return nil
}

// ReadEnv reads and parses /proc/<pid>/environ into Env. Values may be empty
// or contain '='. Without the privilege to read it, Env is left as it was.
// At most DefaultMaxEnvBytes are kept: the variables that fit whole, in the
// file's order; EnvTruncated tells whether any was left out.
func (p *Process) ReadEnv() {
	b, cut, err := procfs.ReadFileMax(p.procPath("environ"), DefaultMaxEnvBytes)
	if err != nil {
		return
	}
	if cut {
		// Drop the variable the bound cut through.
		b = b[:bytes.LastIndexByte(b, 0)+1]
	}
	p.Env, p.EnvTruncated = procfs.ParseEnviron(b), cut
}

// ReadExeLink returns the target of /proc/<pid>/exe as the kernel gives it:
// the path of the binary loaded in memory, with " (deleted)" appended when
// the file was deleted or replaced since. For a chrooted process it is the
// path from the reader's root (the chroot directory included); for a process
// in another mount namespace it is the path inside that namespace.
func (p *Process) ReadExeLink() (string, error) {
	return procfs.Readlink(p.procPath("exe"))
}

// ReadMaps reads /proc/<pid>/maps into Maps.
func (p *Process) ReadMaps() {
	if b, err := procfs.ReadFile(p.procPath("maps")); err == nil {
		p.Maps = string(b)
	}
}

// ReadPPID reads the parent's pid from /proc/<pid>/stat into PPID.
func (p *Process) ReadPPID() {
	if s, _, err := procfs.ReadStat(procRoot, p.ID); err == nil {
		p.PPID = s.PPID
	}
}

// ReadPath reads the binary's path from /proc/<pid>/exe and sets Path,
// RealPath, ExeDeleted, Fileless, ExeDev and ExeInode. Kernel threads get
// KernelConnection. A process that exited is an error matching ErrGone; a
// link the caller may not read leaves Path empty and returns the error.
func (p *Process) ReadPath() error {
	if p.KernelThread {
		p.Path = KernelConnection
		return nil
	}
	link, err := p.ReadExeLink()
	if err != nil {
		return err
	}
	p.Path = link
	p.CleanPath()
	return nil
}

// SetPath sets the binary's path as an event source reported it, and fixes
// it: paths through file descriptors or /proc/self (fexecve, execveat, AppImage
// runtimes) are replaced by the target of /proc/<pid>/exe when the process is
// still there, relative paths are made absolute against CWD, and
// " (deleted)" is removed. RealPath is set to match.
func (p *Process) SetPath(path string) {
	if isIndirectExe(path) {
		if link, err := p.ReadExeLink(); err == nil {
			path = link
		}
	} else if path != "" && !filepath.IsAbs(path) && p.CWD != "" {
		path = filepath.Join(p.CWD, path)
	}
	p.Path = path
	p.CleanPath()
}

// isIndirectExe reports whether path names a binary through a descriptor or
// a proc link: /proc/self/exe, /proc/self/fd/N, /proc/<pid>/fd/N,
// /proc/<pid>/exe, /dev/fd/N.
func isIndirectExe(path string) bool {
	if strings.HasPrefix(path, "/dev/fd/") {
		return true
	}
	rest, ok := strings.CutPrefix(path, "/proc/")
	if !ok {
		return false
	}
	who, what, _ := strings.Cut(rest, "/")
	if _, err := strconv.Atoi(who); err != nil && who != "self" && who != "thread-self" {
		return false
	}
	return what == "exe" || strings.HasPrefix(what, "fd/")
}

// CleanPath fixes Path: it removes the " (deleted)" suffix the kernel appends
// to the exe link of a deleted binary (setting ExeDeleted, but only when the
// file really is unlinked: a file may be named "x (deleted)"), resolves
// /proc/self/exe to the binary, marks memfd binaries Fileless, and sets
// RealPath.
func (p *Process) CleanPath() {
	if p.Path == KernelConnection || p.Path == "" {
		return
	}
	if isIndirectExe(p.Path) {
		if link, err := p.ReadExeLink(); err == nil {
			p.Path = link
		}
	}
	var exe unix.Stat_t
	haveExe := p.ID > 0 && unix.Stat(p.procPath("exe"), &exe) == nil
	if haveExe {
		p.ExeDev, p.ExeInode = exe.Dev, exe.Ino
	}
	// The suffix is the kernel's unless a file of that very name is the
	// binary. Nlink alone does not tell: a binary with another hard link
	// still has links after the name it ran by was deleted.
	if trimmed, ok := strings.CutSuffix(p.Path, deletedSuffix); ok && (!haveExe || !p.namesFile(p.Path, &exe)) {
		p.Path = trimmed
		p.ExeDeleted = true
	}
	if strings.HasPrefix(p.Path, "/memfd:") {
		p.Fileless = true
		p.RealPath = p.procPath("exe")
		return
	}
	p.setRealPath(haveExe, &exe)
}

// namesFile reports whether path, from the reader's root or from this
// process's (/proc/<pid>/root), is the file exe.
func (p *Process) namesFile(path string, exe *unix.Stat_t) bool {
	for _, c := range [...]string{path, p.procPath("root") + path} {
		var st unix.Stat_t
		if unix.Stat(c, &st) == nil && st.Dev == exe.Dev && st.Ino == exe.Ino {
			return true
		}
	}
	return false
}

// setRealPath picks the first of Path and /proc/<pid>/root/Path that is the
// same file as /proc/<pid>/exe; when none is (deleted binary, no privilege),
// RealPath is Path.
func (p *Process) setRealPath(haveExe bool, exe *unix.Stat_t) {
	p.RealPath = p.Path
	if p.ID <= 0 || !filepath.IsAbs(p.Path) {
		return
	}
	for _, c := range [...]string{p.Path, p.procPath("root") + p.Path} {
		var st unix.Stat_t
		if unix.Stat(c, &st) != nil {
			continue
		}
		if !haveExe || (st.Dev == exe.Dev && st.Ino == exe.Ino) {
			p.RealPath = c
			return
		}
	}
}

// CleanArgs fixes the argument list: a first argument of /proc/self/exe
// (AppImage runtimes re-execute themselves that way) is replaced by Path, in
// a new slice (Args may be shared with a cached copy).
func (p *Process) CleanArgs() {
	if len(p.Args) > 0 && p.Path != "" && p.Path != KernelConnection && isIndirectExe(p.Args[0]) {
		p.Args = append([]string{p.Path}, p.Args[1:]...)
	}
}
