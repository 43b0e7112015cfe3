package vmtest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Spec names a kernel to test: a Debian package (often a meta package that
// depends on the versioned image package) and the kernel command line the
// runner adds for it.
type Spec struct {
	// Name is the short name used on the command line, e.g. "6.12".
	Name string
	// Package is the Debian package asked for, e.g. "linux-image-6.12-amd64".
	Package string
	// Cmdline is appended to the runner's base command line for this kernel.
	Cmdline string
	// Arch is the kernel's architecture as a GOARCH, "amd64" when empty:
	// it picks the emulator, the console and the GOARCH the test
	// binaries and busybox are built or fetched for. Package names an
	// arm64 package with apt's architecture qualifier
	// ("linux-image-arm64:arm64").
	Arch string
}

// IMACmdline makes IMA measure what the trusted computing base runs:
// ima_policy=tcb measures every executed binary, mmapped library and file
// root opens. The tcb policy never measures tmpfs, and the initramfs root is
// tmpfs unless a root= or rootfstype= says otherwise, so rootfstype=ramfs
// puts the test binaries on ramfs, which IMA measures.
const IMACmdline = "ima_policy=tcb rootfstype=ramfs"

// LSMCmdline is the LSM list the LSM tier wants: the bpf LSM enabled next to
// the ones a distribution usually stacks (capability is always first).
const LSMCmdline = "lsm=lockdown,capability,landlock,yama,bpf"

// DefaultSpecs are the kernels the matrix boots: Debian 12's backported
// 6.12 (CONFIG_BPF_LSM, IMA) with the bpf LSM named on its command line, and
// Debian 12's own 6.1, below the LSM tier's 6.2 floor, with its default LSM
// list (Debian's CONFIG_LSM lists bpf there too).
//
// The arm64 kernels are the same two of Debian's arm64 port, fetched as a
// foreign architecture (dpkg --add-architecture arm64) and booted under
// qemu-system-aarch64.
var DefaultSpecs = []Spec{
	{Name: "6.12", Package: "linux-image-6.12-amd64", Cmdline: LSMCmdline + " " + IMACmdline},
	{Name: "6.1", Package: "linux-image-amd64", Cmdline: IMACmdline},
	{Name: "arm64-6.12", Package: "linux-image-6.12-arm64:arm64", Arch: "arm64", Cmdline: LSMCmdline + " " + IMACmdline},
	{Name: "arm64-6.1", Package: "linux-image-arm64:arm64", Arch: "arm64", Cmdline: IMACmdline},
}

// GoArch returns the spec's architecture: Arch, or "amd64" when empty.
func (s Spec) GoArch() string { return goArch(s.Arch) }

func goArch(a string) string {
	if a == "" {
		return "amd64"
	}
	return a
}

// Kernel is a kernel image extracted from a Debian package into the cache.
type Kernel struct {
	// Name is the Spec's short name, e.g. "6.12".
	Name string `json:"name"`
	// Package is the package the Spec asked for (maybe a meta package).
	Package string `json:"package"`
	// ImagePackage is the package that holds the image, e.g.
	// "linux-image-6.12.117+deb12-amd64".
	ImagePackage string `json:"image_package"`
	// Version is ImagePackage's Debian version, e.g. "6.12.117-1~deb12u1".
	Version string `json:"version"`
	// Release is the kernel release (uname -r), e.g. "6.12.117+deb12-amd64".
	Release string `json:"release"`
	// Vmlinuz is the path of the bootable image.
	Vmlinuz string `json:"vmlinuz"`
	// Config is the path of the kernel's build configuration.
	Config string `json:"config"`
	// Cmdline is added to the runner's base command line for this kernel.
	Cmdline string `json:"cmdline"`
	// Arch is the kernel's architecture as a GOARCH ("amd64" when empty).
	Arch string `json:"arch,omitempty"`
}

// GoArch returns the kernel's architecture: Arch, or "amd64" when empty.
func (k Kernel) GoArch() string { return goArch(k.Arch) }

// String names the kernel and the package it came from.
func (k Kernel) String() string {
	return fmt.Sprintf("%s (%s %s)", k.Name, k.ImagePackage, k.Version)
}

// Cache downloads Debian packages and keeps what the runner needs from them.
//
// Layout under Dir:
//
//	kernels/<image package>_<version>/{vmlinuz-*,config-*,kernel.json}
//	busybox/<version>/busybox
//	debs/   (downloads, removed once extracted)
type Cache struct {
	// Dir is the cache directory; DefaultCacheDir when empty.
	Dir string
	// Log receives one line per download or extraction; nil discards.
	Log io.Writer
}

// DefaultCacheDir returns $PROCTRACK_VMTEST_CACHE, or else the .vmtest
// directory (git-ignored) at the root of the module holding the working
// directory, or else .vmtest in the user's cache directory.
func DefaultCacheDir() string {
	if d := os.Getenv("PROCTRACK_VMTEST_CACHE"); d != "" {
		return d
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				return filepath.Join(d, ".vmtest")
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "proctrack-vmtest")
	}
	return filepath.Join(os.TempDir(), "proctrack-vmtest")
}

func (c *Cache) dir() string {
	if c.Dir != "" {
		return c.Dir
	}
	return DefaultCacheDir()
}

func (c *Cache) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

// ErrUnknownKernel is returned for a kernel name no Spec has.
var ErrUnknownKernel = errors.New("vmtest: unknown kernel")

// SelectSpecs returns the DefaultSpecs whose Name is in names (all of them
// when names is empty), in the order of names.
func SelectSpecs(names ...string) ([]Spec, error) {
	if len(names) == 0 {
		return append([]Spec(nil), DefaultSpecs...), nil
	}
	var out []Spec
	for _, n := range names {
		found := false
		for _, s := range DefaultSpecs {
			if s.Name == n || s.Package == n {
				out, found = append(out, s), true
				break
			}
		}
		if !found {
			var known []string
			for _, s := range DefaultSpecs {
				known = append(known, s.Name)
			}
			return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownKernel, n, strings.Join(known, ", "))
		}
	}
	return out, nil
}

// Kernels returns the DefaultSpecs kernels named (all when names is empty),
// downloading and extracting them into DefaultCacheDir as needed.
func Kernels(ctx context.Context, names ...string) ([]Kernel, error) {
	c := &Cache{}
	return c.Kernels(ctx, names...)
}

// Kernels returns the DefaultSpecs kernels named (all when names is empty),
// downloading and extracting them as needed.
func (c *Cache) Kernels(ctx context.Context, names ...string) ([]Kernel, error) {
	specs, err := SelectSpecs(names...)
	if err != nil {
		return nil, err
	}
	var ks []Kernel
	for _, s := range specs {
		k, err := c.Kernel(ctx, s)
		if err != nil {
			return nil, err
		}
		ks = append(ks, k)
	}
	return ks, nil
}

// Kernel returns the kernel of s: apt's candidate version of s.Package,
// resolved through meta packages to the package holding /boot/vmlinuz-*,
// from the cache or else downloaded with apt-get download and extracted with
// dpkg-deb. Without apt metadata (apt-cache fails) the newest cached kernel
// of s.Package is used.
func (c *Cache) Kernel(ctx context.Context, s Spec) (Kernel, error) {
	pkg, ver, err := resolveImagePackage(ctx, s.Package)
	if err != nil {
		if k, ok := c.newestCached(s); ok {
			c.logf("vmtest: %v; using cached %s", err, k)
			return k, nil
		}
		return Kernel{}, err
	}
	dir := filepath.Join(c.dir(), "kernels", strings.ReplaceAll(pkg+"_"+ver, ":", "_"))
	if k, err := readManifest(dir); err == nil {
		k.Name, k.Package, k.Cmdline, k.Arch = s.Name, s.Package, s.Cmdline, s.Arch
		return k, nil
	}
	start := time.Now()
	deb, err := c.download(ctx, pkg, ver)
	if err != nil {
		return Kernel{}, err
	}
	dl := time.Since(start)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return Kernel{}, fmt.Errorf("vmtest: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".extract-")
	if err != nil {
		return Kernel{}, fmt.Errorf("vmtest: %w", err)
	}
	defer os.RemoveAll(tmp)
	files, err := extractDeb(ctx, deb, tmp, func(name string) bool {
		return strings.HasPrefix(name, "boot/vmlinuz-") || strings.HasPrefix(name, "boot/config-")
	})
	if err != nil {
		return Kernel{}, err
	}
	k := Kernel{Name: s.Name, Package: s.Package, ImagePackage: pkg, Version: ver, Cmdline: s.Cmdline, Arch: s.Arch}
	for _, f := range files {
		base := filepath.Base(f)
		switch {
		case strings.HasPrefix(base, "vmlinuz-"):
			k.Release = strings.TrimPrefix(base, "vmlinuz-")
			k.Vmlinuz = filepath.Join(dir, base)
		case strings.HasPrefix(base, "config-"):
			k.Config = filepath.Join(dir, base)
		}
	}
	if k.Vmlinuz == "" {
		return Kernel{}, fmt.Errorf("vmtest: %s %s holds no /boot/vmlinuz-*", pkg, ver)
	}
	data, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return Kernel{}, fmt.Errorf("vmtest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "kernel.json"), data, 0o644); err != nil {
		return Kernel{}, fmt.Errorf("vmtest: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if k2, err2 := readManifest(dir); err2 == nil { // another process won
			k2.Name, k2.Package, k2.Cmdline, k2.Arch = s.Name, s.Package, s.Cmdline, s.Arch
			return k2, nil
		}
		return Kernel{}, fmt.Errorf("vmtest: %w", err)
	}
	_ = os.Remove(deb)
	c.logf("vmtest: kernel %s %s (%s): downloaded in %s, extracted in %s",
		pkg, ver, k.Release, dl.Round(time.Millisecond), (time.Since(start) - dl).Round(time.Millisecond))
	return k, nil
}

func readManifest(dir string) (Kernel, error) {
	var k Kernel
	data, err := os.ReadFile(filepath.Join(dir, "kernel.json"))
	if err != nil {
		return k, fmt.Errorf("vmtest: %w", err)
	}
	if err := json.Unmarshal(data, &k); err != nil {
		return k, fmt.Errorf("vmtest: %s: %w", dir, err)
	}
	// The cache may have moved since the manifest was written.
	k.Vmlinuz = filepath.Join(dir, filepath.Base(k.Vmlinuz))
	if k.Config != "" {
		k.Config = filepath.Join(dir, filepath.Base(k.Config))
	}
	if _, err := os.Stat(k.Vmlinuz); err != nil {
		return k, fmt.Errorf("vmtest: %w", err)
	}
	return k, nil
}

// newestCached returns the cached kernel of s.Package with the newest
// manifest.
func (c *Cache) newestCached(s Spec) (Kernel, bool) {
	dirs, _ := filepath.Glob(filepath.Join(c.dir(), "kernels", "*", "kernel.json"))
	var best Kernel
	var bestTime time.Time
	for _, m := range dirs {
		k, err := readManifest(filepath.Dir(m))
		if err != nil || k.Package != s.Package {
			continue
		}
		if st, err := os.Stat(m); err == nil && st.ModTime().After(bestTime) {
			best, bestTime = k, st.ModTime()
		}
	}
	best.Name, best.Cmdline, best.Arch = s.Name, s.Cmdline, s.Arch
	return best, !bestTime.IsZero()
}

// aptFields returns the fields of the candidate version of pkg as apt-cache
// show --no-all-versions prints them.
func aptFields(ctx context.Context, pkg string) (map[string]string, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "show", "--no-all-versions", pkg).Output()
	if err != nil {
		return nil, fmt.Errorf("vmtest: apt-cache show %s: %w%s", pkg, err, stderrOf(err))
	}
	fields := map[string]string{}
	var last string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break // one stanza only
		}
		if line[0] == ' ' || line[0] == '\t' {
			fields[last] += "\n" + strings.TrimSpace(line)
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			last = k
			fields[k] = strings.TrimSpace(v)
		}
	}
	if fields["Package"] == "" || fields["Version"] == "" {
		return nil, fmt.Errorf("vmtest: apt-cache show %s: no candidate (run apt-get update)", pkg)
	}
	return fields, nil
}

// exactImageDep matches a dependency "linux-image-X (= V)" of a meta package.
var exactImageDep = regexp.MustCompile(`^(linux-image-[^\s(]+)\s*\(\s*=\s*([^)\s]+)\s*\)$`)

// resolveImagePackage follows pkg's exact "linux-image-* (= version)"
// dependencies (Debian's meta packages) to the package that holds the
// image, and returns it with its candidate version.
//
// An architecture qualifier on pkg ("linux-image-arm64:arm64") is kept on
// the dependencies followed and on the package returned.
func resolveImagePackage(ctx context.Context, pkg string) (string, string, error) {
	qual := ""
	if i := strings.LastIndexByte(pkg, ':'); i >= 0 {
		qual = pkg[i:]
	}
	for range 4 {
		f, err := aptFields(ctx, pkg)
		if err != nil {
			return "", "", err
		}
		next := ""
		for _, dep := range strings.Split(f["Depends"], ",") {
			alt := strings.TrimSpace(strings.Split(dep, "|")[0])
			if m := exactImageDep.FindStringSubmatch(alt); m != nil {
				next = m[1]
				break
			}
		}
		if next == "" {
			return f["Package"] + qual, f["Version"], nil
		}
		pkg = next + qual
	}
	return "", "", fmt.Errorf("vmtest: %s: meta package chain too long", pkg)
}

// download fetches pkg=ver with apt-get download into the cache's debs
// directory and returns the .deb's path.
func (c *Cache) download(ctx context.Context, pkg, ver string) (string, error) {
	dir := filepath.Join(c.dir(), "debs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("vmtest: %w", err)
	}
	c.logf("vmtest: apt-get download %s=%s", pkg, ver)
	cmd := exec.CommandContext(ctx, "apt-get", "download", "-q", pkg+"="+ver)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("vmtest: apt-get download %s=%s: %w: %s", pkg, ver, err, strings.TrimSpace(stderr.String()))
	}
	// apt names the file <pkg>_<version with ':' as %3a>_<arch>.deb.
	pkg, _, _ = strings.Cut(pkg, ":")
	debs, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	want := strings.ReplaceAll(ver, ":", "%3a")
	for _, d := range debs {
		if strings.HasPrefix(filepath.Base(d), pkg+"_"+want+"_") {
			return d, nil
		}
	}
	return "", fmt.Errorf("vmtest: apt-get download %s=%s: no .deb in %s", pkg, ver, dir)
}

// extractDeb extracts the members of deb whose path (without a leading
// "./") keep accepts into dir, flattened to their base names, and returns
// the paths written. It reads the data archive through dpkg-deb
// --fsys-tarfile, so only what is kept touches the disk (a kernel package's
// modules are hundreds of megabytes).
func extractDeb(ctx context.Context, deb, dir string, keep func(string) bool) ([]string, error) {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("vmtest: dpkg-deb: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("vmtest: dpkg-deb: %w", err)
	}
	files, terr := extractTar(out, dir, keep)
	_, _ = io.Copy(io.Discard, out)
	werr := cmd.Wait()
	if terr != nil {
		return nil, fmt.Errorf("vmtest: extract %s: %w", deb, terr)
	}
	if werr != nil {
		return nil, fmt.Errorf("vmtest: dpkg-deb --fsys-tarfile %s: %w: %s", deb, werr, strings.TrimSpace(stderr.String()))
	}
	return files, nil
}

func extractTar(r io.Reader, dir string, keep func(string) bool) ([]string, error) {
	var files []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(h.Name, "./")
		if h.Typeflag != tar.TypeReg || !keep(name) {
			continue
		}
		dst := filepath.Join(dir, filepath.Base(name))
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644|os.FileMode(h.Mode)&0o111)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		files = append(files, dst)
	}
}

// Busybox returns the path of a statically linked busybox for amd64; see
// BusyboxArch.
func (c *Cache) Busybox(ctx context.Context) (string, error) {
	return c.BusyboxArch(ctx, "amd64")
}

// BusyboxArch returns the path of a statically linked busybox for goarch
// ("amd64" or "arm64"): $PROCTRACK_VMTEST_BUSYBOX (amd64) or
// $PROCTRACK_VMTEST_BUSYBOX_<GOARCH>, else /bin/busybox when it is static
// and of that architecture (package busybox-static), else one extracted
// from apt's busybox-static package of that architecture
// ("busybox-static:arm64") into the cache.
func (c *Cache) BusyboxArch(ctx context.Context, goarch string) (string, error) {
	goarch = goArch(goarch)
	mach, ok := elfMachines[goarch]
	if !ok {
		return "", fmt.Errorf("%w %q", ErrUnknownArch, goarch)
	}
	if p := os.Getenv("PROCTRACK_VMTEST_BUSYBOX_" + strings.ToUpper(goarch)); p != "" {
		return p, nil
	}
	if p := os.Getenv("PROCTRACK_VMTEST_BUSYBOX"); p != "" && goarch == "amd64" {
		return p, nil
	}
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if isStaticELF(p, mach) {
			return p, nil
		}
	}
	pkg, sub := "busybox-static", ""
	if goarch != "amd64" {
		pkg, sub = pkg+":"+goarch, goarch
	}
	f, err := aptFields(ctx, pkg)
	if err != nil {
		return "", fmt.Errorf("vmtest: no static busybox for %s (apt-get install %s): %w", goarch, pkg, err)
	}
	dir := filepath.Join(c.dir(), "busybox", sub, f["Version"])
	bin := filepath.Join(dir, "busybox")
	if isStaticELF(bin, mach) {
		return bin, nil
	}
	deb, err := c.download(ctx, pkg, f["Version"])
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("vmtest: %w", err)
	}
	if _, err := extractDeb(ctx, deb, dir, func(n string) bool { return n == "bin/busybox" || n == "usr/bin/busybox" }); err != nil {
		return "", err
	}
	_ = os.Remove(deb)
	if !isStaticELF(bin, mach) {
		return "", fmt.Errorf("vmtest: %s %s: no static bin/busybox", pkg, f["Version"])
	}
	return bin, nil
}

// ErrUnknownArch is returned for an architecture the runner cannot boot.
var ErrUnknownArch = errors.New("vmtest: unknown architecture")

// elfMachines are the architectures the runner boots.
var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// isStaticELF reports whether path is an ELF executable for machine
// without a program interpreter (statically linked).
func isStaticELF(path string, machine elf.Machine) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	if f.Machine != machine {
		f.Close()
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return f.Type == elf.ET_EXEC || f.Type == elf.ET_DYN
}

// stderrOf returns ": <stderr>" of a failed exec.Cmd.Output, or "".
func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return ": " + strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}
