package vmtest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// btfBlob is a minimal BTF blob: header, one int type, strings.
func btfBlob() []byte {
	strs := []byte("\x00int\x00")
	types := make([]byte, 16)
	binary.LittleEndian.PutUint32(types[0:], 1)         // name_off "int"
	binary.LittleEndian.PutUint32(types[4:], 1<<24)     // kind INT
	binary.LittleEndian.PutUint32(types[8:], 4)         // size
	binary.LittleEndian.PutUint32(types[12:], 32|1<<24) // 32 bits, signed
	h := make([]byte, 24)
	copy(h, []byte{0x9f, 0xeb, 1, 0})
	binary.LittleEndian.PutUint32(h[4:], 24)
	binary.LittleEndian.PutUint32(h[8:], 0)
	binary.LittleEndian.PutUint32(h[12:], uint32(len(types)))
	binary.LittleEndian.PutUint32(h[16:], uint32(len(types)))
	binary.LittleEndian.PutUint32(h[20:], uint32(len(strs)))
	return append(append(h, types...), strs...)
}

func TestKernelBTF(t *testing.T) {
	blob := btfBlob()
	// A decoy magic with a bad header first, then the blob, in junk.
	img := append(append(append([]byte("kernel\x9f\xeb\x01\x00junk"), make([]byte, 100)...), blob...), "tail"...)
	dir := t.TempDir()
	raw := filepath.Join(dir, "Image")
	if err := os.WriteFile(raw, img, 0o644); err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write(img)
	_ = zw.Close()
	gz := filepath.Join(dir, "Image.gz")
	if err := os.WriteFile(gz, z.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{raw, gz} {
		got, err := KernelBTF(p)
		if err != nil || !bytes.Equal(got, blob) {
			t.Fatalf("%s: %d bytes, %v", p, len(got), err)
		}
		spec, err := btf.LoadSpecFromReader(bytes.NewReader(got))
		if err != nil {
			t.Fatalf("%s: not BTF: %v", p, err)
		}
		if _, err := spec.AnyTypeByName("int"); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if err := os.WriteFile(raw, []byte("no btf here"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := KernelBTF(raw); !errors.Is(err, ErrNoBTF) {
		t.Errorf("no BTF: %v", err)
	}
	if err := os.WriteFile(raw, append(append([]byte(nil), blob...), blob...), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := KernelBTF(raw); !errors.Is(err, ErrNoBTF) {
		t.Errorf("two blobs: %v", err)
	}
}
