package oci

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox"
)

// TestSandboxConfig checks the translation of a config into the sandbox's
// Config: namespaces, the rootfs, mounts (options into flags), resources,
// devices and the process init's argument.
func TestSandboxConfig(t *testing.T) {
	mem, quota, period, pids := int64(64<<20), int64(50000), uint64(100000), int64(20)
	s := &specs.Spec{
		Process:  &specs.Process{Args: []string{"sh"}, Env: []string{"A=1"}, Cwd: "/tmp"},
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Hostname: "h",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=755"}},
			{Destination: "/etc/hosts", Type: "bind", Source: "hosts", Options: []string{"rbind", "ro", "rprivate"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup"},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.NetworkNamespace, Path: "/proc/self/ns/net"}},
			Resources: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &mem},
				CPU: &specs.LinuxCPU{Quota: &quota, Period: &period}, Pids: &specs.LinuxPids{Limit: &pids}},
			Devices: []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}, {Path: "/dev/p", Type: "p"}},
		},
	}
	cfg, pi, err := sandboxConfig(s, "/b", "oci-x")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Rootfs != "/b/rootfs" || !cfg.RootfsDirect || cfg.Hostname != "h" {
		t.Errorf("rootfs %q direct %v hostname %q", cfg.Rootfs, cfg.RootfsDirect, cfg.Hostname)
	}
	// The path to join is this process's own: shared, not created.
	if len(cfg.Namespaces) != 2 || !sandbox.Has(cfg.Namespaces, sandbox.NSPID) || sandbox.Has(cfg.Namespaces, sandbox.NSNet) {
		t.Errorf("namespaces %v", cfg.Namespaces)
	}
	if len(cfg.Mounts) != 2 {
		t.Fatalf("mounts %+v: /proc is the sandbox's own and cgroup is skipped", cfg.Mounts)
	}
	run, hosts := cfg.Mounts[0], cfg.Mounts[1]
	if run.Flags != unix.MS_NOSUID|unix.MS_NODEV || run.Data != "mode=755" {
		t.Errorf("/run: %+v", run)
	}
	if hosts.Source != "/b/hosts" || hosts.Flags != unix.MS_BIND|unix.MS_REC|unix.MS_RDONLY || hosts.Propagation != unix.MS_PRIVATE|unix.MS_REC {
		t.Errorf("/etc/hosts: %+v", hosts)
	}
	if cfg.Limits.MemoryMax != mem || cfg.Limits.CPUs != 0.5 || cfg.Limits.PidsMax != pids {
		t.Errorf("limits %+v", cfg.Limits)
	}
	if len(cfg.Limits.Devices) != 1 || cfg.Limits.Devices[0].Major != 10 {
		t.Errorf("device rules %+v: one for the char device, none for the fifo", cfg.Limits.Devices)
	}
	if cfg.Args[0] != "/.ctlab/ctlab" || cfg.Args[1] != procInitArg || !strings.Contains(cfg.Args[2], `"args":["sh"]`) {
		t.Errorf("args %q", cfg.Args)
	}
	if !pi.ReadonlyRoot || pi.Cwd != "/tmp" || len(pi.Devices) != 2 {
		t.Errorf("process init %+v", pi)
	}
	// A path that is not this process's own namespace is joined; a config
	// without a mount namespace is fine (the sandbox chroots).
	s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.UTSNamespace, Path: "/proc/1/ns/uts-elsewhere"}}
	cfg, _, err = sandboxConfig(s, "/b", "oci-x")
	if err != nil || len(cfg.Namespaces) != 1 || cfg.Join[sandbox.NSUTS] != "/proc/1/ns/uts-elsewhere" {
		t.Errorf("namespaces %v, join %v, err %v", cfg.Namespaces, cfg.Join, err)
	}
}
