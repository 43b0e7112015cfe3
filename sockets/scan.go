package sockets

import (
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// owner is where a scan saw a socket: the process (tgid), the task whose
// fd table holds it (tid == pid unless a thread unshared its files) and
// the descriptor.
type owner struct {
	pid, tid, fd int32
}

// kcmpFiles is KCMP_FILES (linux/kcmp.h).
const kcmpFiles = 2

// sameFiles reports whether tasks a and b share one fd table, by kcmp(2).
// Without kcmp (no CONFIG_KCMP, or not permitted) it reports false so the
// caller scans the task too.
func sameFiles(a, b int) bool {
	r, _, errno := unix.Syscall6(unix.SYS_KCMP, uintptr(a), uintptr(b), kcmpFiles, 0, 0, 0)
	return errno == 0 && r == 0
}

// scanner reads fd tables. It is not safe for concurrent use.
type scanner struct {
	root string
	buf  []byte
}

func newScanner(root string) *scanner { return &scanner{root: root, buf: make([]byte, 128)} }

// pid scans the fd table of process pid, and of each of its threads whose
// fd table differs from the process's, calling add for every socket. It
// returns how many descriptors it read.
func (s *scanner) pid(pid int, add func(inode uint64, o owner)) int {
	n := s.fdDir(s.root+"/"+strconv.Itoa(pid)+"/fd", owner{pid: int32(pid), tid: int32(pid)}, add)
	tasks, err := readNames(s.root + "/" + strconv.Itoa(pid) + "/task")
	if err != nil || len(tasks) < 2 {
		return n
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t)
		if err != nil || tid == pid || sameFiles(pid, tid) {
			continue
		}
		n += s.fdDir(s.root+"/"+strconv.Itoa(pid)+"/task/"+t+"/fd", owner{pid: int32(pid), tid: int32(tid)}, add)
	}
	return n
}

// fdDir reads one fd directory.
func (s *scanner) fdDir(dir string, o owner, add func(uint64, owner)) int {
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	defer unix.Close(dfd)
	names, err := direntNames(dfd)
	if err != nil {
		return 0
	}
	for _, name := range names {
		n, err := unix.Readlinkat(dfd, name, s.buf)
		if err != nil {
			continue
		}
		ino, ok := parseSocketLink(s.buf[:n])
		if !ok {
			continue
		}
		fd, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		o.fd = int32(fd)
		add(ino, o)
	}
	return len(names)
}

// parseSocketLink parses "socket:[12345]".
func parseSocketLink(b []byte) (uint64, bool) {
	const pre = "socket:["
	if len(b) < len(pre)+2 || string(b[:len(pre)]) != pre || b[len(b)-1] != ']' {
		return 0, false
	}
	var v uint64
	for _, c := range b[len(pre) : len(b)-1] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// direntNames lists the names in the directory open on dfd, without "." and "..".
func direntNames(dfd int) ([]string, error) {
	var names []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(dfd, buf)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return names, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// readNames lists a directory's names.
func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}
