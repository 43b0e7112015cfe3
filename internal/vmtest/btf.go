package vmtest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrNoBTF is returned by KernelBTF for an image without one well-formed
// BTF blob.
var ErrNoBTF = errors.New("vmtest: no kernel BTF in the image")

// btfMagic starts a little-endian BTF blob: magic 0xeb9f, version 1.
var btfMagic = []byte{0x9f, 0xeb, 0x01}

// KernelBTF returns the kernel's own BTF (what the running kernel shows in
// /sys/kernel/btf/vmlinux) read from the boot image at path: an
// uncompressed image (Debian's arm64 vmlinuz is the raw Image) or a gzip
// one. The .BTF section is stored in the image as is: KernelBTF finds the
// one blob whose header is a BTF header (24 bytes, types then strings,
// both inside the image) and returns it. BTF is the same on every
// architecture, so `bpftool btf dump file <blob> format c` on the host
// writes the arm64 guests' vmlinux.h (bpf/README.md).
func KernelBTF(path string) ([]byte, error) {
	img, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vmtest: %w", err)
	}
	if bytes.HasPrefix(img, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(img))
		if err != nil {
			return nil, fmt.Errorf("vmtest: %s: %w", path, err)
		}
		if img, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("vmtest: %s: %w", path, err)
		}
	}
	return findBTF(img, path)
}

// findBTF returns the one well-formed little-endian BTF blob in img.
func findBTF(img []byte, name string) ([]byte, error) {
	var found []byte
	for off := 0; ; off++ {
		i := bytes.Index(img[off:], btfMagic)
		if i < 0 {
			break
		}
		off += i
		h := img[off:]
		if len(h) < 24 {
			break
		}
		hdrLen := binary.LittleEndian.Uint32(h[4:])
		typeOff, typeLen := binary.LittleEndian.Uint32(h[8:]), binary.LittleEndian.Uint32(h[12:])
		strOff, strLen := binary.LittleEndian.Uint32(h[16:]), binary.LittleEndian.Uint32(h[20:])
		end := uint64(hdrLen) + uint64(strOff) + uint64(strLen)
		if h[3] != 0 || hdrLen != 24 || typeOff != 0 || strOff != typeLen || typeLen == 0 || strLen == 0 || end > uint64(len(h)) {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("%w: %s holds more than one BTF header", ErrNoBTF, name)
		}
		found = h[:end]
	}
	if found == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoBTF, name)
	}
	return found, nil
}
