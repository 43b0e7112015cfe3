// Package cli holds what the example programs share on their command line.
// A usage error, the flag package's own or one of these checks, is one
// line on standard error and exit status 2; the programs take no positional
// arguments, so a stray one (which would make the flag package stop
// parsing, silently ignoring the flags after it) is such an error too.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// Parse parses the command line as flag.Parse does, except that an error
// is the flag package's one line without the list of flags after it (-h
// prints that list and exits 0), and fails on any positional argument.
func Parse() {
	fs := flag.CommandLine
	fs.Init(name(), flag.ContinueOnError)
	fs.Usage = func() {} // the error line is enough; -h is handled below
	switch err := fs.Parse(os.Args[1:]); {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(fs.Output(), "Usage of %s:\n", name())
		fs.PrintDefaults()
		os.Exit(0)
	case err != nil:
		os.Exit(2) // the flag package printed the error
	}
	if flag.NArg() > 0 {
		Fail("unexpected argument %q: this program takes only flags", flag.Arg(0))
	}
}

// Fail prints "<program>: <message>" on standard error and exits with
// status 2.
func Fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s: %s\n", name(), fmt.Sprintf(format, args...))
	os.Exit(2)
}

// NotNegative fails unless the duration flag's value d is zero or more.
func NotNegative(flagName string, d time.Duration) {
	if d < 0 {
		Fail("-%s %v: a duration must not be negative", flagName, d)
	}
}

// AtLeast fails unless the duration flag's value d is at least min.
func AtLeast(flagName string, d, min time.Duration) {
	if d < min {
		Fail("-%s %v: must be at least %v", flagName, d, min)
	}
}

// Context returns a context that ends at SIGINT or SIGTERM and, when
// duration is more than zero, after duration. A program that returns
// normally once it ends exits 0 on Ctrl-C.
func Context(duration time.Duration) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if duration <= 0 {
		return ctx, stop
	}
	ctx, cancel := context.WithTimeout(ctx, duration)
	return ctx, func() { cancel(); stop() }
}

func name() string { return filepath.Base(os.Args[0]) }
