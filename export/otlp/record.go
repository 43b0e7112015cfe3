package otlp

import (
	"path/filepath"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"golang.org/x/sys/unix"

	"github.com/proctrack/proctrack/procmon/process"
)

// Prefix is the prefix of proctrack's own attributes, for what the
// OpenTelemetry semantic conventions do not name.
const Prefix = "proctrack."

// EventNamePrefix starts the event name of every record:
// "proctrack.process.exec", "proctrack.process.fork", ...
const EventNamePrefix = Prefix + "process."

// proctrack's own attribute names (see the package documentation).
const (
	KeyKind          = Prefix + "event.kind"
	KeyMethod        = Prefix + "method"
	KeyProcessKey    = Prefix + "process.key"
	KeyComm          = Prefix + "process.comm"
	KeyIncomplete    = Prefix + "process.incomplete"
	KeyGID           = Prefix + "process.gid"
	KeyEGID          = Prefix + "process.egid"
	KeySGID          = Prefix + "process.sgid"
	KeyCapsEffective = Prefix + "caps.effective"
	KeyCapsPermitted = Prefix + "caps.permitted"
	KeyCapsInherit   = Prefix + "caps.inheritable"
	KeyCapsAmbient   = Prefix + "caps.ambient"
	KeyOldUID        = Prefix + "creds.old.uid"
	KeyOldEUID       = Prefix + "creds.old.euid"
	KeyOldGID        = Prefix + "creds.old.gid"
	KeyOldEGID       = Prefix + "creds.old.egid"
	KeyOldCaps       = Prefix + "creds.old.caps.effective"
	KeyHashPrefix    = Prefix + "executable.hash."
	KeyRules         = Prefix + "rule.matched"
	KeyRulesInKernel = Prefix + "rule.in_kernel"
	KeyVerdict       = Prefix + "verdict"
	KeyExitSignal    = Prefix + "exit.signal"
	KeyTracer        = Prefix + "ptrace.tracer_pid"
	KeyNewComm       = Prefix + "comm.new"
	KeySyscall       = Prefix + "syscall.name"
	KeySyscallResult = Prefix + "syscall.result"
)

// Record returns the log record of one event (see the package
// documentation for its attributes). The process is read through
// Process.Serialize, a consistent copy, since the monitor may still be
// completing it (the working directory, namespaces and cgroup come 50 ms
// after an exec).
func Record(ev *process.Event) log.Record {
	var r log.Record
	r.SetTimestamp(ev.Time)
	r.SetObservedTimestamp(time.Now())
	kind := ev.Kind.String()
	r.SetEventName(EventNamePrefix + kind)
	r.SetBody(attribute.StringValue(kind))
	r.SetSeverity(log.SeverityInfo)
	if ev.Verdict == process.VerdictDenied {
		r.SetSeverity(log.SeverityWarn)
	}
	attrs := make([]attribute.KeyValue, 0, 32)
	attrs = append(attrs,
		attribute.String(KeyKind, kind),
		attribute.String(KeyMethod, ev.Method),
		semconv.ProcessPID(ev.PID),
	)
	if ev.TID != 0 && ev.TID != ev.PID {
		attrs = append(attrs, semconv.ThreadID(ev.TID))
	}
	ppid := ev.PPID
	if p := ev.Process; p != nil {
		s := p.Serialize()
		attrs = processAttrs(attrs, s)
		if ppid == 0 {
			ppid = s.PPID
		}
	}
	if ppid != 0 {
		attrs = append(attrs, semconv.ProcessParentPID(ppid))
	}
	attrs = eventAttrs(attrs, ev)
	r.AddAttributes(attrs...)
	return r
}

// processAttrs appends what the process is.
func processAttrs(attrs []attribute.KeyValue, p *process.Serialized) []attribute.KeyValue {
	attrs = append(attrs, attribute.String(KeyProcessKey, p.ID))
	if p.Path != "" {
		attrs = append(attrs, semconv.ProcessExecutablePath(p.Path), semconv.ProcessExecutableName(filepath.Base(p.Path)))
	}
	if len(p.Args) > 0 {
		attrs = append(attrs, semconv.ProcessCommandArgs(p.Args...))
	}
	if p.CWD != "" {
		attrs = append(attrs, semconv.ProcessWorkingDirectory(p.CWD))
	}
	if !p.StartTime.IsZero() {
		attrs = append(attrs, semconv.ProcessCreationTime(p.StartTime.UTC().Format(time.RFC3339Nano)))
	}
	if p.Comm != "" {
		attrs = append(attrs, attribute.String(KeyComm, p.Comm))
	}
	if p.Incomplete {
		attrs = append(attrs, attribute.Bool(KeyIncomplete, true))
	}
	c := &p.Creds
	attrs = append(attrs,
		semconv.ProcessUserID(int(c.EUID)), semconv.ProcessRealUserID(int(c.UID)), semconv.ProcessSavedUserID(int(c.SUID)),
		attribute.Int64(KeyGID, int64(c.GID)), attribute.Int64(KeyEGID, int64(c.EGID)), attribute.Int64(KeySGID, int64(c.SGID)),
		attribute.StringSlice(KeyCapsEffective, c.CapEff), attribute.StringSlice(KeyCapsPermitted, c.CapPrm),
	)
	if len(c.CapInh) > 0 {
		attrs = append(attrs, attribute.StringSlice(KeyCapsInherit, c.CapInh))
	}
	if len(c.CapAmb) > 0 {
		attrs = append(attrs, attribute.StringSlice(KeyCapsAmbient, c.CapAmb))
	}
	if p.Cgroup != "" {
		attrs = append(attrs, semconv.ProcessLinuxCgroup(p.Cgroup))
	}
	if p.ContainerID != "" {
		attrs = append(attrs, semconv.ContainerID(p.ContainerID))
		// "kubepods" says only that it is a Kubernetes pod, not which
		// runtime runs it.
		if p.ContainerRuntime != "" && p.ContainerRuntime != "kubepods" {
			attrs = append(attrs, semconv.ContainerRuntimeName(p.ContainerRuntime))
		}
	}
	for algo, sum := range p.Checksums {
		attrs = append(attrs, attribute.String(KeyHashPrefix+strings.TrimPrefix(algo, "process.hash."), sum))
	}
	return attrs
}

// eventAttrs appends what the event itself carries.
func eventAttrs(attrs []attribute.KeyValue, ev *process.Event) []attribute.KeyValue {
	switch ev.Kind {
	case process.EventExit:
		// ExitCode is the wait(2) status: the exit code, or the signal.
		if ws := unix.WaitStatus(ev.ExitCode); ws.Signaled() {
			attrs = append(attrs, attribute.Int(KeyExitSignal, int(ws.Signal())))
		} else {
			attrs = append(attrs, semconv.ProcessExitCode(ws.ExitStatus()))
		}
	case process.EventPtrace:
		attrs = append(attrs, attribute.Int(KeyTracer, ev.Tracer))
	case process.EventComm:
		attrs = append(attrs, attribute.String(KeyNewComm, ev.Comm))
	}
	if c := ev.Creds; c != nil {
		attrs = append(attrs,
			attribute.Int64(KeyOldUID, int64(c.Old.UID)), attribute.Int64(KeyOldEUID, int64(c.Old.EUID)),
			attribute.Int64(KeyOldGID, int64(c.Old.GID)), attribute.Int64(KeyOldEGID, int64(c.Old.EGID)),
			attribute.StringSlice(KeyOldCaps, c.Old.CapEffective.Names()))
	}
	if s := ev.Syscall; s != nil {
		attrs = append(attrs, attribute.String(KeySyscall, s.Name), attribute.Int64(KeySyscallResult, s.Result))
	}
	if len(ev.Matched) > 0 {
		attrs = append(attrs, attribute.StringSlice(KeyRules, ev.Matched), attribute.Bool(KeyRulesInKernel, ev.MatchedInKernel))
	}
	if ev.Verdict != process.VerdictNone {
		attrs = append(attrs, attribute.String(KeyVerdict, ev.Verdict.String()))
	}
	return attrs
}
