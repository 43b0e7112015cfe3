package vmtest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestResolveImagePackage asks apt-cache (local, but a few seconds) how
// the meta packages resolve; it runs with PROCTRACK_VMTEST=1.
func TestResolveImagePackage(t *testing.T) {
	if os.Getenv("PROCTRACK_VMTEST") != "1" {
		t.Skip("runs apt-cache: set PROCTRACK_VMTEST=1")
	}
	if _, err := exec.LookPath("apt-cache"); err != nil {
		t.Skip("no apt-cache")
	}
	for _, s := range DefaultSpecs {
		pkg, ver, err := resolveImagePackage(context.Background(), s.Package)
		if err != nil {
			t.Skipf("apt metadata unavailable: %v", err)
		}
		// The meta package resolves to a versioned image package.
		// An arm64 package keeps its architecture qualifier.
		suffix := "-" + s.GoArch()
		if s.Arch != "" {
			suffix += ":" + s.Arch
		}
		if pkg == s.Package || !strings.HasPrefix(pkg, "linux-image-") || !strings.HasSuffix(pkg, suffix) || ver == "" {
			t.Errorf("%s resolved to %s %s", s.Package, pkg, ver)
		}
		t.Logf("%s -> %s %s", s.Package, pkg, ver)
	}
}

func TestSelectSpecs(t *testing.T) {
	all, err := SelectSpecs()
	if err != nil || len(all) != len(DefaultSpecs) {
		t.Fatalf("all: %v %v", all, err)
	}
	one, err := SelectSpecs("6.1", "linux-image-6.12-amd64")
	if err != nil || len(one) != 2 || one[0].Name != "6.1" || one[1].Name != "6.12" {
		t.Errorf("by name and package: %v %v", one, err)
	}
	arm, err := SelectSpecs("arm64-6.12", "linux-image-arm64:arm64")
	if err != nil || len(arm) != 2 || arm[0].GoArch() != "arm64" || arm[1].Name != "arm64-6.1" || one[0].GoArch() != "amd64" {
		t.Errorf("arm64: %v %v", arm, err)
	}
	if _, err := SelectSpecs("5.4"); !errors.Is(err, ErrUnknownKernel) {
		t.Errorf("unknown kernel: %v", err)
	}
}

func TestExtractTar(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct{ name, body string }{
		{"./boot/vmlinuz-6.1.0-1-amd64", "kernel"},
		{"./boot/config-6.1.0-1-amd64", "CONFIG_BPF_LSM=y\n"},
		{"./lib/modules/6.1.0-1-amd64/kernel/x.ko", "module"},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := extractTar(&buf, dir, func(n string) bool { return strings.HasPrefix(n, "boot/") })
	if err != nil || len(files) != 2 {
		t.Fatalf("extracted %v, %v", files, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "vmlinuz-6.1.0-1-amd64")); err != nil || string(b) != "kernel" {
		t.Errorf("vmlinuz: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.ko")); err == nil {
		t.Error("a module was extracted")
	}
}
