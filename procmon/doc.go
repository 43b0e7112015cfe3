// Package procmon is proctrack's face: the one import a firewall or EDR needs
// to ask "which process is doing this". It re-exports the core model of
// package process (Process, Credentials, the method and hash constants) with
// type aliases, and offers the package functions of OpenSnitch's procmon API
// (FindProcess, NewProcess, ...) so a user of that API can switch.
//
// This package builds on the others, not the reverse: the Monitor (here)
// runs an event source of package methods (ebpf, netlink, audit, proc,
// chosen at run time) and keeps the process cache of package cache current;
// the socket lookups come from package sockets. See ARCHITECTURE.md for
// where each lives.
package procmon
