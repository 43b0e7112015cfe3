package procfs

import (
	"bytes"
	"strings"
)

// Cgroup is a process's cgroup identity.
type Cgroup struct {
	// Path is the cgroup v2 path ("0::<path>") when the process is in the
	// unified hierarchy, else the first v1 hierarchy path that is not "/",
	// preferring name=systemd.
	Path string
	// ContainerID is the 64-hex id of the container the process runs in,
	// found in the cgroup paths, or "" on the host.
	ContainerID string
	// Runtime names the layout the id was found in: "docker",
	// "containerd", "cri-o", "podman" or "kubepods" (a Kubernetes pod whose
	// runtime the path does not name).
	Runtime string
}

// ReadCgroup reads /proc/<pid>/cgroup.
func ReadCgroup(root string, pid int) (Cgroup, error) {
	b, err := ReadFile(Path(root, pid, "cgroup"))
	if err != nil {
		return Cgroup{}, err
	}
	return ParseCgroup(b), nil
}

// ParseCgroup parses the content of /proc/<pid>/cgroup. Lines it cannot read
// are skipped: a cgroup file has no wrong answer worth failing a lookup for.
func ParseCgroup(b []byte) Cgroup {
	var c Cgroup
	var v2, systemd, firstV1 string
	haveV2 := false
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		// hierarchy-ID:controller-list:cgroup-path; the path may hold ':'.
		parts := bytes.SplitN(line, []byte{':'}, 3)
		if len(parts) != 3 {
			continue
		}
		path := string(parts[2])
		switch {
		case string(parts[0]) == "0" && len(parts[1]) == 0:
			v2, haveV2 = path, true
		case string(parts[1]) == "name=systemd":
			systemd = path
		case firstV1 == "" && path != "/":
			firstV1 = path
		}
		if c.ContainerID == "" {
			c.ContainerID, c.Runtime = ContainerID(path)
		}
	}
	switch {
	case haveV2 && (v2 != "/" || (systemd == "" && firstV1 == "")):
		c.Path = v2
	case systemd != "" && systemd != "/":
		c.Path = systemd
	case firstV1 != "":
		c.Path = firstV1
	case haveV2:
		c.Path = v2
	default:
		c.Path = systemd
	}
	return c
}

// runtimes maps the prefixes container engines give to the last cgroup path
// element before the 64-hex id, to the runtime they name.
var runtimes = []struct{ prefix, runtime string }{
	{"docker-", "docker"},
	{"cri-containerd-", "containerd"},
	{"containerd-", "containerd"},
	{"crio-conmon-", "cri-o"},
	{"crio-", "cri-o"},
	{"libpod-conmon-", "podman"},
	{"libpod-", "podman"},
}

// ContainerID extracts a container id from one cgroup path. It knows these
// layouts (systemd and cgroupfs drivers, v1 and v2):
//
//	/docker/<id>                                   docker, cgroupfs driver
//	/system.slice/docker-<id>.scope                docker, systemd driver
//	/system.slice/containerd.service/.../<id>      containerd
//	/kubepods.slice/.../cri-containerd-<id>.scope  containerd under Kubernetes
//	/kubepods.slice/.../crio-<id>.scope            cri-o
//	/kubepods/burstable/pod<uid>/<id>              Kubernetes, cgroupfs driver
//	/machine.slice/libpod-<id>.scope               podman (also user.slice)
//	/libpod_parent/libpod-<id>                     podman, cgroupfs driver
//
// It returns the id and the runtime, or two empty strings.
func ContainerID(path string) (id, runtime string) {
	elems := strings.Split(path, "/")
	for i := len(elems) - 1; i >= 0; i-- {
		e := strings.TrimSuffix(elems[i], ".scope")
		for _, r := range runtimes {
			if rest, ok := strings.CutPrefix(e, r.prefix); ok && isHexID(rest) {
				return rest, r.runtime
			}
		}
		if !isHexID(e) || i == 0 {
			continue
		}
		switch parent := elems[i-1]; {
		case parent == "docker":
			return e, "docker"
		case strings.HasPrefix(parent, "pod") || strings.HasPrefix(elems[1], "kubepods"):
			return e, "kubepods"
		case strings.Contains(path, "containerd"):
			return e, "containerd"
		case strings.Contains(path, "libpod"):
			return e, "podman"
		}
	}
	return "", ""
}

func isHexID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
