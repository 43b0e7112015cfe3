package vmtest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// The "newc" cpio format, the one the kernel unpacks into its initial root
// file system (Documentation/driver-api/early-userspace/buffer-format.rst):
// each entry is a 110-byte ASCII header ("070701" and 13 fields of 8 hex
// digits), the NUL-terminated name padded to 4 bytes, then the data padded to
// 4 bytes; the archive ends with an entry named "TRAILER!!!".
const (
	cpioMagic   = "070701"
	cpioHdrLen  = 110
	cpioTrailer = "TRAILER!!!"
)

// File type bits of a cpio mode (the st_mode values of Linux).
const (
	cpioTypeDir     = 0o040000
	cpioTypeFile    = 0o100000
	cpioTypeSymlink = 0o120000
	cpioTypeChar    = 0o020000
)

// ErrCPIOClosed is returned by a CPIOWriter used after Close.
var ErrCPIOClosed = errors.New("vmtest: cpio writer closed")

// CPIOWriter writes a newc cpio archive, the format of a Linux initramfs.
// Names are slash-separated and relative to the archive root (a leading "/"
// is dropped). Parent directories a name needs are added first, mode 0755,
// unless the caller added them already: the kernel's unpacker does not
// create missing parents. Every entry is owned by root.
type CPIOWriter struct {
	w      io.Writer
	ino    uint32
	dirs   map[string]bool
	closed bool
	err    error
}

// NewCPIOWriter returns a writer of a newc archive to w. Close writes the
// trailer; it does not close w.
func NewCPIOWriter(w io.Writer) *CPIOWriter {
	return &CPIOWriter{w: w, ino: 300000, dirs: map[string]bool{"": true, ".": true}}
}

// Dir adds a directory; perm may carry the sticky, setgid and setuid bits.
// A directory added before (also as a parent) is not added again.
func (c *CPIOWriter) Dir(name string, perm fs.FileMode) error {
	name, err := c.prepare(name)
	if err != nil || c.dirs[name] {
		return err
	}
	c.dirs[name] = true
	return c.entry(name, cpioTypeDir|uint32(perm.Perm())|modeSpecial(perm), 2, 0, 0, nil, 0)
}

// File adds a regular file of size bytes read from r.
func (c *CPIOWriter) File(name string, perm fs.FileMode, size int64, r io.Reader) error {
	name, err := c.prepare(name)
	if err != nil {
		return err
	}
	if size < 0 || size > math.MaxUint32 {
		return fmt.Errorf("vmtest: cpio %s: size %d does not fit the newc format", name, size)
	}
	return c.entry(name, cpioTypeFile|uint32(perm.Perm())|modeSpecial(perm), 1, 0, 0, r, size)
}

// Bytes adds a regular file holding data.
func (c *CPIOWriter) Bytes(name string, perm fs.FileMode, data []byte) error {
	return c.File(name, perm, int64(len(data)), strings.NewReader(string(data)))
}

// CopyFile adds the host file src as name, keeping its permission bits.
func (c *CPIOWriter) CopyFile(name, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("vmtest: cpio: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("vmtest: cpio: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("vmtest: cpio: %s is not a regular file", src)
	}
	return c.File(name, st.Mode(), st.Size(), f)
}

// CopyTree adds the host directory tree src under name: directories,
// regular files and symbolic links (other file types are skipped).
func (c *CPIOWriter) CopyTree(name, src string) error {
	return filepath.WalkDir(src, func(full string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("vmtest: cpio: %w", err)
		}
		rel, err := filepath.Rel(src, full)
		if err != nil {
			return fmt.Errorf("vmtest: cpio: %w", err)
		}
		dst := path.Join(name, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("vmtest: cpio: %w", err)
		}
		switch {
		case d.IsDir():
			return c.Dir(dst, info.Mode())
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(full)
			if err != nil {
				return fmt.Errorf("vmtest: cpio: %w", err)
			}
			return c.Symlink(dst, target)
		case info.Mode().IsRegular():
			return c.CopyFile(dst, full)
		}
		return nil
	})
}

// Symlink adds a symbolic link name pointing at target.
func (c *CPIOWriter) Symlink(name, target string) error {
	name, err := c.prepare(name)
	if err != nil {
		return err
	}
	return c.entry(name, cpioTypeSymlink|0o777, 1, 0, 0, strings.NewReader(target), int64(len(target)))
}

// CharDev adds a character device node, such as /dev/console (5, 1), which
// the kernel opens for init before /init runs.
func (c *CPIOWriter) CharDev(name string, perm fs.FileMode, major, minor uint32) error {
	name, err := c.prepare(name)
	if err != nil {
		return err
	}
	return c.entry(name, cpioTypeChar|uint32(perm.Perm()), 1, major, minor, nil, 0)
}

// Close writes the trailer entry. The writer cannot be used afterwards.
func (c *CPIOWriter) Close() error {
	if c.closed {
		return c.err
	}
	if c.err == nil {
		c.err = c.entry(cpioTrailer, 0, 1, 0, 0, nil, 0)
	}
	c.closed = true
	return c.err
}

// prepare cleans name and adds the parent directories it lacks.
func (c *CPIOWriter) prepare(name string) (string, error) {
	if c.closed {
		return "", ErrCPIOClosed
	}
	if c.err != nil {
		return "", c.err
	}
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if name == "" || name == cpioTrailer {
		return "", fmt.Errorf("vmtest: cpio: invalid entry name %q", name)
	}
	if parent := path.Dir(name); !c.dirs[parent] {
		if err := c.Dir(parent, 0o755); err != nil {
			return "", err
		}
	}
	return name, nil
}

func (c *CPIOWriter) entry(name string, mode, nlink, rmajor, rminor uint32, r io.Reader, size int64) error {
	c.ino++
	hdr := fmt.Sprintf("%s%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		cpioMagic, c.ino, mode, 0, 0, nlink, 0, size, 0, 0, rmajor, rminor, len(name)+1, 0)
	buf := make([]byte, 0, cpioHdrLen+len(name)+4)
	buf = append(buf, hdr...)
	buf = append(buf, name...)
	buf = append(buf, 0)
	buf = append(buf, make([]byte, pad4(len(buf)))...)
	if _, err := c.w.Write(buf); err != nil {
		c.err = fmt.Errorf("vmtest: cpio %s: %w", name, err)
		return c.err
	}
	if size > 0 {
		n, err := io.CopyN(c.w, r, size)
		if err != nil {
			c.err = fmt.Errorf("vmtest: cpio %s: wrote %d of %d bytes: %w", name, n, size, err)
			return c.err
		}
		if p := pad4(int(size % 4)); p > 0 {
			if _, err := c.w.Write(make([]byte, p)); err != nil {
				c.err = fmt.Errorf("vmtest: cpio %s: %w", name, err)
				return c.err
			}
		}
	}
	return nil
}

// pad4 returns how many bytes bring n to a multiple of 4.
func pad4(n int) int { return (4 - n%4) % 4 }

// modeSpecial maps Go's setuid, setgid and sticky bits to the st_mode bits.
func modeSpecial(m fs.FileMode) uint32 {
	var v uint32
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}
