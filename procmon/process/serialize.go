package process

import "time"

// Serialized is the stable, JSON-ready form of a Process returned by
// Serialize. Field names and JSON keys are part of proctrack's API: they are
// only ever added to, never renamed or removed.
type Serialized struct {
	// ID is the stable process id, Key.String ("<pid>-<start ticks>").
	ID         string            `json:"id"`
	PID        int               `json:"pid"`
	PPID       int               `json:"ppid"`
	UID        int               `json:"uid"`
	Comm       string            `json:"comm"`
	Path       string            `json:"path"`
	RealPath   string            `json:"real_path,omitempty"`
	CWD        string            `json:"cwd,omitempty"`
	Args       []string          `json:"args"`
	Env        map[string]string `json:"env,omitempty"`
	Checksums  map[string]string `json:"checksums,omitempty"`
	StartTicks int64             `json:"start_ticks"`
	StartTime  time.Time         `json:"start_time"`
	// Tree lists the ancestors, parent first.
	Tree             []SerializedAncestor `json:"tree,omitempty"`
	Creds            SerializedCreds      `json:"creds"`
	Namespaces       Namespaces           `json:"namespaces"`
	Root             string               `json:"root,omitempty"`
	Cgroup           string               `json:"cgroup,omitempty"`
	ContainerID      string               `json:"container_id,omitempty"`
	ContainerRuntime string               `json:"container_runtime,omitempty"`
	KernelThread     bool                 `json:"kernel_thread,omitempty"`
	Zombie           bool                 `json:"zombie,omitempty"`
	ExeDeleted       bool                 `json:"exe_deleted,omitempty"`
	Fileless         bool                 `json:"fileless,omitempty"`
	Incomplete       bool                 `json:"incomplete,omitempty"`
	// ArgsTruncated and EnvTruncated: Args and Env were cut to their bounds
	// (Process.ArgsTruncated, EnvTruncated).
	ArgsTruncated bool `json:"args_truncated,omitempty"`
	EnvTruncated  bool `json:"env_truncated,omitempty"`
}

// SerializedAncestor is one element of Serialized.Tree.
type SerializedAncestor struct {
	PID  uint32 `json:"pid"`
	Path string `json:"path"`
}

// SerializedCreds are Credentials with capability sets as lists of names.
type SerializedCreds struct {
	UID        uint32   `json:"uid"`
	EUID       uint32   `json:"euid"`
	SUID       uint32   `json:"suid"`
	FSUID      uint32   `json:"fsuid"`
	GID        uint32   `json:"gid"`
	EGID       uint32   `json:"egid"`
	SGID       uint32   `json:"sgid"`
	FSGID      uint32   `json:"fsgid"`
	Groups     []uint32 `json:"groups"`
	CapInh     []string `json:"cap_inheritable"`
	CapPrm     []string `json:"cap_permitted"`
	CapEff     []string `json:"cap_effective"`
	CapBnd     []string `json:"cap_bounding"`
	CapAmb     []string `json:"cap_ambient"`
	NoNewPrivs bool     `json:"no_new_privs"`
	Seccomp    int      `json:"seccomp"`
	UserNS     uint64   `json:"user_ns"`
}

// Serialize returns the process as a Serialized value. The result shares
// no mutable state with the Process.
func (p *Process) Serialize() *Serialized {
	if p.lazy != nil {
		c := *p // what FindProcess left for later, read (once) into a copy
		c.Complete()
		p = &c
	}
	s := &Serialized{
		ID: p.Key().String(), PID: p.ID, PPID: p.PPID, UID: p.UID,
		Comm: p.Comm, Path: p.Path, RealPath: p.RealPath, CWD: p.CWD,
		Args:       append([]string{}, p.Args...),
		Env:        copyMap(p.Env),
		Checksums:  copyMap(p.Checksums),
		StartTicks: p.Starttime, StartTime: p.StartedAt,
		Namespaces: p.NS, Root: p.Root, Cgroup: p.Cgroup,
		ContainerID: p.ContainerID, ContainerRuntime: p.ContainerRuntime,
		KernelThread: p.KernelThread, Zombie: p.Zombie, ExeDeleted: p.ExeDeleted,
		Fileless: p.Fileless, Incomplete: p.Incomplete,
		ArgsTruncated: p.ArgsTruncated, EnvTruncated: p.EnvTruncated,
	}
	for _, t := range p.Tree {
		s.Tree = append(s.Tree, SerializedAncestor{PID: t.Value, Path: t.Key})
	}
	c := &p.Creds
	s.Creds = SerializedCreds{
		UID: c.UID, EUID: c.EUID, SUID: c.SUID, FSUID: c.FSUID,
		GID: c.GID, EGID: c.EGID, SGID: c.SGID, FSGID: c.FSGID,
		Groups: append([]uint32{}, c.Groups...),
		CapInh: c.CapInheritable.Names(), CapPrm: c.CapPermitted.Names(),
		CapEff: c.CapEffective.Names(), CapBnd: c.CapBounding.Names(),
		CapAmb: c.CapAmbient.Names(), NoNewPrivs: c.NoNewPrivs,
		Seccomp: c.Seccomp, UserNS: c.UserNS,
	}
	return s
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
