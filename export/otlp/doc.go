// Package otlp exports proctrack's process events over OTLP, the
// OpenTelemetry protocol, to a collector (gRPC or HTTP): every
// procmon.Event becomes one log record.
//
// # Records
//
// A record's timestamp is the event's time, its event name
// "proctrack.process.<kind>" (proctrack.process.exec, ...), its body the
// kind, its severity INFO (WARN for an operation a sandbox denied). Its
// attributes follow the OpenTelemetry semantic conventions (package
// go.opentelemetry.io/otel/semconv) where they name the thing:
//
//	process.pid, process.parent_pid, thread.id        the event's pids
//	process.executable.path, process.executable.name  the binary (/proc/<pid>/exe)
//	process.command_args                              the argument list, as cmdline holds it
//	process.working_directory, process.creation.time, process.exit.code
//	process.user.id, process.real_user.id, process.saved_user.id  effective, real, saved uid
//	process.linux.cgroup, container.id, container.runtime.name
//
// What the conventions lack is under the one prefix "proctrack." (Prefix):
//
//	proctrack.event.kind, proctrack.method      what happened, the method that saw it
//	proctrack.process.key                       the stable process id, "<pid>-<start ticks>"
//	proctrack.process.comm, proctrack.process.incomplete
//	proctrack.process.gid, proctrack.process.egid, proctrack.process.sgid
//	proctrack.caps.effective, .permitted, .inheritable, .ambient   capability names
//	proctrack.creds.old.uid, .euid, .gid, .egid, proctrack.creds.old.caps.effective   before a credential change
//	proctrack.executable.hash.<algorithm>       md5, sha1, sha256, ima digests computed so far
//	proctrack.rule.matched, proctrack.rule.in_kernel   the rules the event matched, and where
//	proctrack.verdict                           "allowed" or "denied" where a sandbox decided
//	proctrack.exit.signal                       the signal that ended the process (process.exit.code otherwise)
//	proctrack.ptrace.tracer_pid, proctrack.comm.new, proctrack.syscall.name, proctrack.syscall.result
//
// The resource is the host: host.name, host.id (the machine id), os.type,
// os.description and service.name ("proctrack" unless configured).
//
// # Flow
//
// Batching, retries and back-pressure are the SDK's
// (go.opentelemetry.io/otel/sdk/log's BatchProcessor with the otlploggrpc or
// otlploghttp exporter). Export never blocks its caller: at most
// Config.QueueSize records are in flight (queued or being sent), and an
// event that finds them all taken is dropped and counted (Stats), as is a
// batch the collector still refuses after the exporter's retries. When the
// collector is down the queue fills, events are dropped, and the monitor
// feeding the exporter goes on at its own pace.
//
// This package imports the OpenTelemetry SDK and gRPC; procmon does not
// import it, so a program that does not import it carries none of that.
package otlp
