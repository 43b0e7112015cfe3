// Package procmon is proctrack's face: the one import a firewall or EDR needs
// to ask "which process is doing this". It re-exports the core model of
// package process (Process, Credentials, the method and hash constants) with
// type aliases, and offers the package functions of OpenSnitch's procmon API
// (FindProcess, NewProcess, ...) so a user of that API can switch: with
// procmon/monitor (Init, End, ReconfigureMonitorMethod) and sockets/netstat
// (Entry), OpenSnitch's call sites compile with only the import paths
// changed. The differences that remain are listed in the README ("Using the
// process model").
//
// This package builds on the others, not the reverse: the Monitor (here)
// runs an event source of package methods (ebpf, netlink, audit, proc,
// chosen at run time) and keeps the process cache of package cache current;
// the socket lookups come from package sockets. See ARCHITECTURE.md for
// where each lives.
//
// # Configuration files
//
// LoadConfig and ParseConfig read seed 000's YAML configuration (FileConfig
// describes it). A file is at most 4 MiB (MaxConfigBytes), checked before
// it is parsed, a file by its size before it is read; a larger one is an
// error matching ErrConfig and ErrTooLarge. Every rule needs a name unique
// in its hook (rules.ErrDuplicate) and an event expression, `event: ANY`
// for every event. Errors give the line and column of the offending key,
// value or rule token, and quote at most 64 bytes of a value, then "..."
// and its length.
package procmon
