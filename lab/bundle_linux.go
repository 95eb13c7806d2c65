package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/kstate"
	"github.com/ctlab/ctlab/sandbox/overlay"
)

// hostProc is a process a trusted host command started, named by
// host_process: its pid plus its start time, so a recycled pid is not
// mistaken for it.
type hostProc struct {
	pid   int
	start uint64
}

// alive: the same process (start time) and not a zombie -- a killed
// process whose new parent (pid 1, or a subreaper) has not reaped it yet
// has stopped running although /proc still lists it.
func (h *hostProc) alive() bool {
	p, err := kstate.ReadStat(h.pid)
	return err == nil && p.Start == h.start && p.State != 'Z' && p.State != 'X'
}

// dirOf is the directory of an overlay (its merged view), layer or bundle
// the scenario made, "" for other targets.
func (e *Engine) dirOf(name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if o := e.overlays[name]; o != nil {
		return o.layout.Merged
	}
	if d := e.layers[name]; d != "" {
		return d
	}
	return e.bundles[name]
}

// bundleCgroup is the cgroupsPath a written bundle asks for: beside
// ctlab's own /ctlab tree, so the two runtimes' groups can be compared
// and neither removes the other's.
func (e *Engine) bundleCgroup(as string) string { return "/ctlab-runc-" + e.s.ID + "-" + as }

// writeBundle writes an OCI runtime bundle of a running container: what
// ctlab knows about it as config.json, and its root filesystem as rootfs/,
// a bind mount of the overlay's merged directory (the same files, so a
// runtime started on the bundle sees what the container sees).
func (e *Engine) writeBundle(w *WriteBundle) (string, *int, error) {
	c, err := e.running(w.In)
	if err != nil {
		return "", nil, err
	}
	dir := filepath.Join(e.labDir(), w.As)
	rootfs := filepath.Join(dir, "rootfs")
	if ok, _ := overlay.IsMounted(rootfs); ok {
		if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil {
			return "", nil, fmt.Errorf("write_bundle: unmount old %s: %w", rootfs, err)
		}
	}
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return "", nil, fmt.Errorf("write_bundle: %w", err)
	}
	if err := sandbox.IntendCgroupPath(e.s.ID, e.bundleCgroup(w.As)); err != nil { // runc makes it
		return "", nil, fmt.Errorf("write_bundle: %w", err)
	}
	spec := ociSpec(c, e.bundleCgroup(w.As))
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return "", nil, fmt.Errorf("write_bundle: encode config.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), append(b, '\n'), 0o644); err != nil {
		return "", nil, fmt.Errorf("write_bundle: %w", err)
	}
	// Registered before the mount, so a reset unmounts it even if a later
	// step fails.
	e.mu.Lock()
	e.bundles[w.As] = dir
	e.mu.Unlock()
	if err := sandbox.BindMount(e.s.ID, c.Layout.Merged, rootfs); err != nil {
		return "", nil, fmt.Errorf("write_bundle: %w", err)
	}
	return fmt.Sprintf("bundle %s\n  config.json (ociVersion %s, %d namespaces, cgroupsPath %s)\n  rootfs/ = bind mount of %s\n",
		dir, spec.Version, len(spec.Linux.Namespaces), spec.Linux.CgroupsPath, c.Layout.Merged), nil, nil
}

// ociSpec translates a ctlab container's configuration into runtime-spec
// terms (https://github.com/opencontainers/runtime-spec/blob/main/config.md),
// with runc's defaults (`runc spec`) for what ctlab does not configure.
func ociSpec(c *sandbox.Container, cgroupsPath string) *specs.Spec {
	kinds := map[sandbox.Namespace]specs.LinuxNamespaceType{
		sandbox.NSMount: specs.MountNamespace, sandbox.NSUTS: specs.UTSNamespace, sandbox.NSIPC: specs.IPCNamespace,
		sandbox.NSPID: specs.PIDNamespace, sandbox.NSNet: specs.NetworkNamespace, sandbox.NSUser: specs.UserNamespace,
		sandbox.NSCgroup: specs.CgroupNamespace, sandbox.NSTime: specs.TimeNamespace,
	}
	version := "1.0.2" // what Debian 12's runc 1.1 speaks
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	s := &specs.Spec{
		Version: version,
		Process: &specs.Process{
			User: specs.User{UID: 0, GID: 0}, Args: c.Args, Env: c.Env, Cwd: "/",
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs"},
		Hostname: c.Hostname,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		},
		Linux: &specs.Linux{
			CgroupsPath:   cgroupsPath,
			MaskedPaths:   []string{"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	if !sandbox.Has(c.Namespaces, sandbox.NSUTS) {
		s.Hostname = "" // runc refuses a hostname without a uts namespace
	}
	for _, ns := range sandbox.AllNamespaces {
		if sandbox.Has(c.Namespaces, ns) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: kinds[ns]})
		}
	}
	if sandbox.Has(c.Namespaces, sandbox.NSIPC) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}})
	}
	if sandbox.Has(c.Namespaces, sandbox.NSNet) && !sandbox.Has(c.Namespaces, sandbox.NSUser) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}})
	} else {
		// sysfs can only be mounted by the owner of the net namespace
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys", Type: "none", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}})
	}
	if sandbox.Has(c.Namespaces, sandbox.NSUser) {
		base := c.UIDBase
		if base == 0 {
			base = sandbox.DefaultUIDBase
		}
		m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(base), Size: sandbox.IDRange}}
		s.Linux.UIDMappings, s.Linux.GIDMappings = m, m
	}
	if sandbox.Has(c.Namespaces, sandbox.NSTime) {
		s.Version = "1.2.0" // time namespaces entered the spec in 1.2
	}
	l := c.Limits
	r := &specs.LinuxResources{}
	if l.MemoryMax > 0 {
		r.Memory = &specs.LinuxMemory{Limit: &l.MemoryMax}
	}
	if l.CPUs > 0 {
		period := uint64(100000)
		quota := int64(l.CPUs * float64(period))
		r.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	if l.CPUWeight > 0 {
		// runtime-spec speaks v1 shares; runc maps them back to a v2 weight
		shares := 2 + (l.CPUWeight-1)*262142/9999
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		r.CPU.Shares = &shares
	}
	if l.PidsMax > 0 {
		r.Pids = &specs.LinuxPids{Limit: &l.PidsMax}
	}
	for _, x := range l.IOReadBPS {
		if r.BlockIO == nil {
			r.BlockIO = &specs.LinuxBlockIO{}
		}
		r.BlockIO.ThrottleReadBpsDevice = append(r.BlockIO.ThrottleReadBpsDevice, specs.LinuxThrottleDevice{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: int64(x.Major), Minor: int64(x.Minor)}, Rate: x.Rate})
	}
	for _, x := range l.IOWriteBPS {
		if r.BlockIO == nil {
			r.BlockIO = &specs.LinuxBlockIO{}
		}
		r.BlockIO.ThrottleWriteBpsDevice = append(r.BlockIO.ThrottleWriteBpsDevice, specs.LinuxThrottleDevice{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: int64(x.Major), Minor: int64(x.Minor)}, Rate: x.Rate})
	}
	if r.Memory != nil || r.CPU != nil || r.Pids != nil || r.BlockIO != nil {
		s.Linux.Resources = r
	}
	return s
}

// unmountBundles unmounts the rootfs/ bind mounts of every bundle in the
// lab directory (also those a killed run left). It reports the dirs whose
// rootfs is still mounted: those must not be removed recursively, or the
// removal would descend into the container's files.
func unmountBundles(labDir string) (stillMounted map[string]bool, err error) {
	stillMounted = map[string]bool{}
	ents, rerr := os.ReadDir(labDir)
	if rerr != nil {
		return stillMounted, nil
	}
	var errs []error
	for _, ent := range ents {
		rootfs := filepath.Join(labDir, ent.Name(), "rootfs")
		for i := 0; i < 8; i++ { // a bind may have been stacked by a replay
			ok, _ := overlay.IsMounted(rootfs)
			if !ok {
				break
			}
			if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", rootfs, err))
				break
			}
		}
		if ok, _ := overlay.IsMounted(rootfs); ok {
			stillMounted[ent.Name()] = true
		}
	}
	return stillMounted, errors.Join(errs...)
}
