// Package oci is ctlab's OCI runtime: it reads a runtime-spec bundle
// (config.json) and runs it on the sandbox, with runc's lifecycle
// (create, start, state, kill, delete) so containerd's shim and conmon can
// call ctlab in place of runc. The command line lives in cmd/internal/ocicli.
//
// How a config maps onto the sandbox:
//
//	namespaces            sandbox.Config.Namespaces; with a path, sandbox.Config.Join (no mount one: a chroot)
//	root.path             the root itself (sandbox.Config.RootfsDirect), as with runc
//	mounts                sandbox.Config.Mounts (ctlab makes /proc, /dev, /sys itself)
//	linux.resources       cgroups.Limits (memory, cpu quota/shares, pids); cgroupsPath is ignored
//	process, sysctl,      the process init (procinit_linux.go) inside the container, before it
//	maskedPaths, ...      waits for `start`
package oci

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/cgroups"
)

// LoadSpec reads bundle/config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read bundle config: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse %s/config.json: %w", bundle, err)
	}
	if s.Process == nil || len(s.Process.Args) == 0 {
		return nil, fmt.Errorf("%s/config.json: process.args is empty", bundle)
	}
	if s.Root == nil {
		return nil, fmt.Errorf("%s/config.json: no root", bundle)
	}
	return &s, nil
}

var nsKinds = map[specs.LinuxNamespaceType]sandbox.Namespace{
	specs.PIDNamespace: sandbox.NSPID, specs.NetworkNamespace: sandbox.NSNet, specs.MountNamespace: sandbox.NSMount,
	specs.IPCNamespace: sandbox.NSIPC, specs.UTSNamespace: sandbox.NSUTS, specs.UserNamespace: sandbox.NSUser,
	specs.CgroupNamespace: sandbox.NSCgroup, specs.TimeNamespace: sandbox.NSTime,
}

// sandboxConfig translates a spec into the sandbox's Config (what the
// sandbox does before the exec) and the process init's part (procInit).
func sandboxConfig(s *specs.Spec, bundle, name string) (sandbox.Config, *procInit, error) {
	root := s.Root.Path
	if !filepath.IsAbs(root) {
		root = filepath.Join(bundle, root)
	}
	cfg := sandbox.Config{Name: name, Rootfs: root, Hostname: s.Hostname, MountSelf: true, Detach: true, DetachedStdio: true, RootfsDirect: true}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	cfg.Namespaces = []sandbox.Namespace{} // none listed means none new (nil would be the sandbox's "all")
	for _, ns := range s.Linux.Namespaces {
		kind, ok := nsKinds[ns.Type]
		if !ok {
			return cfg, nil, fmt.Errorf("namespace type %q is not known", ns.Type)
		}
		if ns.Path != "" {
			// The host's own: nothing to join (and ctlab may not be able to
			// setns into its own user namespace).
			if !sameAsHost(kind, ns.Path) {
				if cfg.Join == nil {
					cfg.Join = map[sandbox.Namespace]string{}
				}
				cfg.Join[kind] = ns.Path
			}
			continue
		}
		cfg.Namespaces = append(cfg.Namespaces, kind)
	}
	if sandbox.Has(cfg.Namespaces, sandbox.NSUser) {
		for _, m := range s.Linux.UIDMappings {
			if m.ContainerID == 0 {
				cfg.UIDBase = int(m.HostID)
			}
			cfg.UIDMappings = append(cfg.UIDMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		for _, m := range s.Linux.GIDMappings {
			cfg.GIDMappings = append(cfg.GIDMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
	}
	if cfg.Hostname == "" {
		cfg.Hostname = name
	}
	cfg.Limits = Limits(s.Linux.Resources)
	// linux.devices are made by the process init and allowed in the
	// device cgroup on top of the sandbox's standard nodes.
	for _, d := range s.Linux.Devices {
		t := map[string]byte{"c": 'c', "u": 'c', "b": 'b'}[d.Type]
		if t != 0 {
			cfg.Limits.Devices = append(cfg.Limits.Devices, cgroups.DeviceRule{Allow: true, Type: t, Major: d.Major, Minor: d.Minor, Access: "rwm"})
		}
	}
	mounts, err := specMounts(s.Mounts, bundle)
	if err != nil {
		return cfg, nil, err
	}
	cfg.Mounts = mounts
	pi := newProcInit(s)
	cfg.Args = append([]string{"/.ctlab/ctlab", procInitArg}, pi.encode())
	cfg.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	return cfg, pi, nil
}

// sameAsHost reports whether path names the namespace ctlab itself is in:
// joining it means not creating one.
func sameAsHost(kind sandbox.Namespace, path string) bool {
	var a, b unix.Stat_t
	if unix.Stat(path, &a) != nil || unix.Stat("/proc/self/ns/"+string(kind), &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// Limits maps the resources the sandbox's cgroups know.
func Limits(r *specs.LinuxResources) cgroups.Limits {
	var l cgroups.Limits
	if r == nil {
		return l
	}
	if r.Memory != nil && r.Memory.Limit != nil && *r.Memory.Limit > 0 {
		l.MemoryMax = *r.Memory.Limit
	}
	if c := r.CPU; c != nil {
		if c.Quota != nil && *c.Quota > 0 && c.Period != nil && *c.Period > 0 {
			l.CPUs = float64(*c.Quota) / float64(*c.Period)
		}
		if c.Shares != nil && *c.Shares > 0 {
			// cgroup v1 shares 2..262144 onto v2 weight 1..10000 (runc's formula).
			l.CPUWeight = 1 + ((*c.Shares-2)*9999)/262142
		}
	}
	if r.Pids != nil && r.Pids.Limit != nil && *r.Pids.Limit > 0 {
		l.PidsMax = *r.Pids.Limit
	}
	return l
}

// ctlabOwned are the mount points the sandbox makes itself; a config's
// entries for them are the same thing and are skipped.
var ctlabOwned = map[string]bool{"/proc": true, "/dev": true, "/sys": true, "/dev/pts": true, "/dev/shm": true, "/dev/mqueue": true}

var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY}, "nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV}, "noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC}, "relatime": {false, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "noatime": {false, unix.MS_NOATIME}, "nodiratime": {false, unix.MS_NODIRATIME},
	"sync": {false, unix.MS_SYNCHRONOUS}, "dirsync": {false, unix.MS_DIRSYNC}, "mand": {false, unix.MS_MANDLOCK},
}

var propagation = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC, "slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC, "unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// specMounts parses the config's mounts (options into MS_* flags and
// data), relative bind sources against the bundle.
func specMounts(ms []specs.Mount, bundle string) ([]sandbox.Mount, error) {
	var out []sandbox.Mount
	for _, m := range ms {
		if !filepath.IsAbs(m.Destination) {
			return nil, fmt.Errorf("mount destination %q is not absolute", m.Destination)
		}
		// A "cgroup" mount would need runc's per-hierarchy emulation on
		// cgroup v1; the container sees its cgroup through /proc instead.
		if ctlabOwned[filepath.Clean(m.Destination)] || m.Type == "cgroup" {
			continue
		}
		sm := sandbox.Mount{Source: m.Source, Target: m.Destination, Type: m.Type}
		var data []string
		for _, o := range m.Options {
			if f, ok := mountFlags[o]; ok {
				if f.clear {
					sm.Flags &^= f.flag
				} else {
					sm.Flags |= f.flag
				}
			} else if p, ok := propagation[o]; ok {
				sm.Propagation = p
			} else {
				data = append(data, o)
			}
		}
		sm.Data = strings.Join(data, ",")
		if sm.Flags&unix.MS_BIND != 0 || sm.Type == "bind" {
			sm.Type = "bind"
			sm.Flags |= unix.MS_BIND
			if !filepath.IsAbs(sm.Source) {
				sm.Source = filepath.Join(bundle, sm.Source)
			}
		}
		out = append(out, sm)
	}
	return out, nil
}
