package vmtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BuildTest compiles the tests of the Go package pkg (a path go test
// accepts, resolved in the working directory) into a static binary in
// outDir with CGO_ENABLED=0 go test -c, and returns it as a Test with args.
// The package's testdata directory, if any, goes with it.
func BuildTest(ctx context.Context, pkg, outDir string, args ...string) (Test, error) {
	return BuildTestArch(ctx, pkg, "amd64", outDir, args...)
}

// BuildTestArch is BuildTest cross-compiling for goarch (GOARCH=goarch
// GOOS=linux): "arm64" builds the binaries the arm64 guests run.
func BuildTestArch(ctx context.Context, pkg, goarch, outDir string, args ...string) (Test, error) {
	goTool := "go"
	if g := os.Getenv("GO"); g != "" {
		goTool = g
	}
	list := exec.CommandContext(ctx, goTool, "list", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{.Name}}", pkg)
	out, err := list.Output()
	if err != nil {
		return Test{}, fmt.Errorf("vmtest: go list %s: %w%s", pkg, err, stderrOf(err))
	}
	f := strings.Split(strings.TrimSpace(string(out)), "\t")
	if len(f) != 3 || strings.Contains(f[2], "\n") {
		return Test{}, fmt.Errorf("vmtest: go list %s: want one package, got %q", pkg, out)
	}
	importPath, dir := f[0], f[1]
	goarch = goArch(goarch)
	bin := filepath.Join(outDir, goarch, strings.ReplaceAll(importPath, "/", "_")+".test")
	cmd := exec.CommandContext(ctx, goTool, "test", "-c", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return Test{}, fmt.Errorf("vmtest: go test -c %s: %w: %s", pkg, err, strings.TrimSpace(stderr.String()))
	}
	if _, err := os.Stat(bin); err != nil {
		return Test{}, fmt.Errorf("vmtest: go test -c %s wrote no binary (no test files?): %w", pkg, err)
	}
	t := Test{Name: importPath, Binary: bin, Args: args}
	if st, err := os.Stat(filepath.Join(dir, "testdata")); err == nil && st.IsDir() {
		t.Testdata = filepath.Join(dir, "testdata")
	}
	return t, nil
}
