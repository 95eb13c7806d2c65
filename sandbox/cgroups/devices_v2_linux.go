package cgroups

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// On v2 there is no devices.allow file: the policy is an eBPF program of type
// BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup directory, run by the
// kernel on every open/mknod of a device node; it returns 1 (allow) or 0
// (EPERM). containerd's DeviceFilter compiles OCI rules into that program.
//
// We attach it ourselves instead of through Manager.Update because
// containerd attaches with BPF_F_ALLOW_MULTI and never detaches: every update
// would stack another program and all of them must allow, so a policy could
// only ever get stricter. We attach the new program, then detach the old ones.

var memlockOnce sync.Once

// specDevices converts rules to OCI form. DeviceFilter dereferences Major and
// Minor, so every rule gets both pointers (-1 = any) and an explicit type.
func specDevices(rules []DeviceRule) []specs.LinuxDeviceCgroup {
	out := make([]specs.LinuxDeviceCgroup, 0, len(rules))
	for _, r := range rules {
		maj, min := r.Major, r.Minor
		if r.Type == 'a' {
			maj, min = -1, -1
		}
		out = append(out, specs.LinuxDeviceCgroup{Allow: r.Allow, Type: string(r.Type), Major: &maj, Minor: &min, Access: r.Access})
	}
	return out
}

func setDevicesV2(dir string, rules []DeviceRule) error {
	insts, license, err := cgroup2.DeviceFilter(specDevices(rules))
	if err != nil {
		return fmt.Errorf("compile device rules to eBPF: %w", err)
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK: lift it
	// there, as cilium/ebpf's rlimit.RemoveMemlock would. Not that package:
	// its init probes the kernel with a BPF map in every process that links
	// it (about 0.1 ms of each ctlab-oci call), needed or not.
	memlockOnce.Do(func() {
		if !kernelAtLeast(5, 11) {
			inf := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
			_ = unix.Setrlimit(unix.RLIMIT_MEMLOCK, &inf)
		}
	})
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "ctlab_devices", Type: ebpf.CGroupDevice, Instructions: insts, License: license,
	})
	if err != nil {
		return fmt.Errorf("load device eBPF program: %w", err)
	}
	defer prog.Close()

	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)

	old, err := attachedDevicePrograms(fd)
	if err != nil {
		return err
	}
	defer func() {
		for _, p := range old {
			p.Close()
		}
	}()
	// Same program already attached alone (the kernel's tag is a hash of the
	// instructions): keep it, nothing changes for running processes.
	if len(old) == 1 {
		newInfo, err1 := prog.Info()
		oldInfo, err2 := old[0].Info()
		if err1 == nil && err2 == nil && newInfo.Tag == oldInfo.Tag {
			return nil
		}
	}
	if err := link.RawAttachProgram(link.RawAttachProgramOptions{
		Target: fd, Program: prog, Attach: ebpf.AttachCGroupDevice, Flags: unix.BPF_F_ALLOW_MULTI,
	}); err != nil {
		return fmt.Errorf("attach device eBPF program to %s: %w", dir, err)
	}
	var errs []error
	for _, p := range old {
		if err := link.RawDetachProgram(link.RawDetachProgramOptions{
			Target: fd, Program: p, Attach: ebpf.AttachCGroupDevice,
		}); err != nil {
			errs = append(errs, fmt.Errorf("detach old device program from %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}

// attachedDevicePrograms opens the device programs attached directly to the
// cgroup fd (BPF_PROG_QUERY; not the inherited, "effective" ones).
func attachedDevicePrograms(fd int) ([]*ebpf.Program, error) {
	res, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return nil, fmt.Errorf("query device eBPF programs: %w", err)
	}
	var out []*ebpf.Program
	for _, ap := range res.Programs {
		p, err := ebpf.NewProgramFromID(ap.ID)
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, fmt.Errorf("open eBPF program %d: %w", ap.ID, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// describeDevicesV2 describes what BPF_PROG_QUERY reports for dir: the v2
// counterpart of reading devices.list.
func describeDevicesV2(dir string) ([]string, error) {
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	var out []string
	for _, q := range []struct {
		flags uint32
		what  string
	}{{0, "attached here"}, {unix.BPF_F_QUERY_EFFECTIVE, "effective (incl. inherited)"}} {
		res, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice, QueryFlags: q.flags})
		if err != nil {
			return nil, fmt.Errorf("query device eBPF programs of %s: %w", dir, err)
		}
		if len(res.Programs) == 0 {
			out = append(out, fmt.Sprintf("%s: no BPF_CGROUP_DEVICE program (every device allowed)", q.what))
		}
		for _, ap := range res.Programs {
			line := fmt.Sprintf("%s: BPF_CGROUP_DEVICE prog id=%d", q.what, ap.ID)
			if p, err := ebpf.NewProgramFromID(ap.ID); err == nil {
				if info, err := p.Info(); err == nil {
					line += fmt.Sprintf(" name=%s tag=%s", info.Name, info.Tag)
				}
				p.Close()
			}
			out = append(out, line)
		}
	}
	return out, nil
}
