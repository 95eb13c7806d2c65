package cgroups

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3/cgroup2"
	systemdDbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// The systemd driver: instead of making /sys/fs/cgroup/ctlab/<name> itself,
// ctlab asks systemd (PID 1, the owner of the tree) over D-Bus for a
// transient scope unit, ctlab-<name>.scope in ctlab.slice, and passes the
// limits as unit properties: systemd writes memory.max, pids.max, cpu.max
// and cpu.weight, and keeps them across `systemctl daemon-reload`. This is
// what runc does with --systemd-cgroup and containerd with SystemdCgroup =
// true. Device rules have no faithful systemd property (DeviceAllow= takes
// paths), so they stay an eBPF program ctlab attaches to the scope, as runc
// also does.

// Driver names, as accepted by ParseDriver.
const (
	DriverCgroupfs = "cgroupfs"
	DriverSystemd  = "systemd"
	DriverAuto     = "auto"
)

// defaultDBusTimeout bounds one D-Bus round trip to systemd.
const defaultDBusTimeout = 30 * time.Second

// SystemdSlice is the slice every ctlab scope lives in: /sys/fs/cgroup/ctlab.slice.
const SystemdSlice = "ctlab.slice"

// ScopeUnit is the transient unit of container name.
func ScopeUnit(name string) string { return "ctlab-" + name + ".scope" }

// SystemdRunning reports whether systemd is PID 1 (the test sd_booted() uses).
func SystemdRunning() bool {
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// ResolveDriver maps "auto" (or "") to the driver for this host, and checks
// that "systemd" can work here: systemd as PID 1 on a pure v2 host. On a
// hybrid or v1 host auto picks cgroupfs: containerd's systemd driver is
// v2-only, and the v1 controllers live outside systemd's unified tree.
func ResolveDriver(d string) (string, error) {
	switch d {
	case "", DriverAuto:
		if SystemdRunning() && HostMode() == V2 {
			return DriverSystemd, nil
		}
		return DriverCgroupfs, nil
	case DriverCgroupfs:
		return d, nil
	case DriverSystemd:
		if !SystemdRunning() {
			return "", fmt.Errorf("cgroup driver systemd: systemd is not PID 1 here (no /run/systemd/system)")
		}
		if HostMode() != V2 {
			return "", fmt.Errorf("cgroup driver systemd: this host is %s; ctlab's systemd driver needs pure cgroup v2 (boot with systemd.unified_cgroup_hierarchy=1)", HostMode())
		}
		return d, nil
	}
	return "", fmt.Errorf("unknown cgroup driver %q (want systemd, cgroupfs or auto)", d)
}

// scopeDir is the scope's directory in the unified tree.
func scopeDir(name string) string {
	return filepath.Join(unifiedRoot, SystemdSlice, ScopeUnit(name))
}

func prop(name string, v any) systemdDbus.Property {
	return systemdDbus.Property{Name: name, Value: dbus.MakeVariant(v)}
}

// scopeProperties turns l into unit properties. A zero limit is "infinity"
// (math.MaxUint64), so the same list also removes a limit in an update.
func scopeProperties(l Limits) []systemdDbus.Property {
	inf := uint64(math.MaxUint64)
	mem, swap, tasks, quota := inf, inf, inf, inf
	if l.MemoryMax > 0 {
		mem, swap = uint64(l.MemoryMax), 0 // no swap: the limit is real, as on cgroupfs
	}
	if l.PidsMax > 0 {
		tasks = uint64(l.PidsMax)
	}
	if l.CPUs > 0 {
		// CPUQuotaPerSecUSec: µs of CPU per second of wall time.
		quota = uint64(cpuQuota(l.CPUs)) * 1000000 / cpuPeriod
	}
	weight := l.CPUWeight
	if weight == 0 {
		weight = 100
	}
	ps := []systemdDbus.Property{
		prop("MemoryAccounting", true), prop("TasksAccounting", true), prop("CPUAccounting", true),
		prop("IOAccounting", true),
		prop("MemoryMax", mem), prop("MemorySwapMax", swap), prop("TasksMax", tasks),
		prop("CPUQuotaPerSecUSec", quota), prop("CPUQuotaPeriodUSec", uint64(cpuPeriod)),
		prop("CPUWeight", weight),
	}
	type bw struct {
		Path string
		Rate uint64
	}
	for name, list := range map[string][]IOLimit{"IOReadBandwidthMax": l.IOReadBPS, "IOWriteBandwidthMax": l.IOWriteBPS} {
		var v []bw
		for _, d := range list {
			// udev's /dev/block/MAJ:MIN names the whole disk on every systemd host.
			v = append(v, bw{fmt.Sprintf("/dev/block/%d:%d", d.Major, d.Minor), d.Rate})
		}
		if v == nil {
			v = []bw{}
		}
		ps = append(ps, prop(name, v))
	}
	return ps
}

// waitJob waits for a systemd job's result ("done" is success).
func waitJob(ctx context.Context, what string, ch <-chan string) error {
	select {
	case s := <-ch:
		if s != "done" {
			return fmt.Errorf("%s: systemd job result %q", what, s)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
}

// CreateSystemd asks systemd for ctlab-<name>.scope in ctlab.slice holding
// pid (a scope cannot be created empty: systemd moves pid into it) with l's
// limits, then attaches l's device policy. The caller journals ScopeUnit(name)
// before calling, so a cleanup after kill -9 knows which unit to stop.
func CreateSystemd(ctx context.Context, name string, l Limits, pid int) (*Cgroup, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	// The slice first, through containerd's own systemd support (an existing
	// slice is fine). Its Slice= for scopes is fixed to system.slice, so the
	// scope below is started with go-systemd directly, as containerd would.
	if _, err := cgroup2.NewSystemd("", SystemdSlice, -1, &cgroup2.Resources{}); err != nil {
		return nil, fmt.Errorf("create %s: %w", SystemdSlice, err)
	}
	return CreateScope(ctx, name, ctlabScope(name), l, pid)
}

// CreateScope asks systemd for the scope sc holding pid, with l's limits
// and device policy; systemd makes the slice implicitly if it has no unit
// yet (as for runc's --systemd-cgroup). The caller journals sc first.
func CreateScope(ctx context.Context, name string, sc Scope, l Limits, pid int) (*Cgroup, error) {
	if err := validate(l); err != nil {
		return nil, fmt.Errorf("create scope for %s: %w", name, err)
	}
	conn, err := systemdDbus.NewWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to systemd over D-Bus: %w", err)
	}
	defer conn.Close()
	unit := sc.Unit
	// A failed leftover of the same name would make StartTransientUnit fail.
	_ = conn.ResetFailedUnitContext(ctx, unit)
	props := append([]systemdDbus.Property{
		systemdDbus.PropDescription("ctlab container " + name),
		systemdDbus.PropSlice(sc.Slice),
		prop("DefaultDependencies", false),
		prop("Delegate", true),
		prop("PIDs", []uint32{uint32(pid)}),
	}, scopeProperties(l)...)
	ch := make(chan string, 1)
	if _, err := conn.StartTransientUnitContext(ctx, unit, "replace", props, ch); err != nil {
		return nil, fmt.Errorf("start %s: %w", unit, err)
	}
	if err := waitJob(ctx, "start "+unit, ch); err != nil {
		return nil, err
	}
	c, err := OpenScope(name, sc)
	if err == nil {
		err = c.setDevices(l)
	}
	if err != nil {
		_ = StopUnit(context.WithoutCancel(ctx), unit)
		return nil, fmt.Errorf("create scope for %s: %w", name, err)
	}
	return c, nil
}

// OpenSystemd returns the scope cgroup of container name.
func OpenSystemd(name string) (*Cgroup, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	return OpenScope(name, ctlabScope(name))
}

// OpenScope returns the cgroup of the scope sc.
func OpenScope(name string, sc Scope) (*Cgroup, error) {
	dir, err := sc.Dir()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("open scope %s: %w", sc.Unit, err)
	}
	m, err := cgroup2.LoadSystemd(sc.Slice, sc.Unit)
	if err != nil {
		return nil, fmt.Errorf("open scope %s: %w", sc.Unit, err)
	}
	avail, _ := v2Available()
	return &Cgroup{name: name, mode: V2, v2: m, v2dir: dir, paths: v2PathMap(dir, avail), unit: sc.Unit}, nil
}

// Unit is the systemd unit that owns the cgroup, "" for a cgroupfs one.
func (c *Cgroup) Unit() string { return c.unit }

// updateSystemd sets l as the scope's runtime properties: systemd writes the
// files, and a later daemon-reload re-applies these values, not older ones.
func (c *Cgroup) updateSystemd(l Limits) error {
	ctx, cancel := context.WithTimeout(context.Background(), defaultDBusTimeout)
	defer cancel()
	conn, err := systemdDbus.NewWithContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to systemd over D-Bus: %w", err)
	}
	defer conn.Close()
	if err := conn.SetUnitPropertiesContext(ctx, c.unit, true, scopeProperties(l)...); err != nil {
		return fmt.Errorf("set properties of %s: %w", c.unit, err)
	}
	return nil
}

// StopScope stops ctlab-<name>.scope: systemd kills what is left in it and
// removes its cgroup. A unit that is gone already is fine.
func StopScope(ctx context.Context, name string) error { return StopUnit(ctx, ScopeUnit(name)) }

// StopUnit stops a scope unit: systemd kills what is left in it and removes
// its cgroup. A unit that is gone already is fine.
func StopUnit(ctx context.Context, unit string) error {
	conn, err := systemdDbus.NewWithContext(ctx)
	if err != nil {
		return fmt.Errorf("stop %s: connect to systemd over D-Bus: %w", unit, err)
	}
	defer conn.Close()
	ch := make(chan string, 1)
	if _, err := conn.StopUnitContext(ctx, unit, "replace", ch); err != nil {
		var de dbus.Error
		if errors.As(err, &de) && strings.HasSuffix(de.Name, ".NoSuchUnit") {
			return nil
		}
		return fmt.Errorf("stop %s: %w", unit, err)
	}
	if err := waitJob(ctx, "stop "+unit, ch); err != nil {
		return err
	}
	_ = conn.ResetFailedUnitContext(ctx, unit)
	return nil
}

// UnitState reads the ActiveState and SubState of a unit ("active running").
func UnitState(ctx context.Context, unit string) (string, error) {
	conn, err := systemdDbus.NewWithContext(ctx)
	if err != nil {
		return "", fmt.Errorf("connect to systemd over D-Bus: %w", err)
	}
	defer conn.Close()
	ps, err := conn.GetUnitPropertiesContext(ctx, unit)
	if err != nil {
		return "", fmt.Errorf("properties of %s: %w", unit, err)
	}
	return fmt.Sprintf("%v %v", ps["ActiveState"], ps["SubState"]), nil
}

// SystemdVersion asks PID 1 for its version ("252.39-1~deb12u1").
func SystemdVersion(ctx context.Context) (string, error) {
	conn, err := systemdDbus.NewWithContext(ctx)
	if err != nil {
		return "", fmt.Errorf("connect to systemd over D-Bus: %w", err)
	}
	defer conn.Close()
	v, err := conn.GetManagerProperty("Version")
	if err != nil {
		return "", fmt.Errorf("systemd version: %w", err)
	}
	return strings.Trim(v, `"`), nil
}

// listScopes returns the container names of the scopes in ctlab.slice.
func listScopes() []string {
	ents, err := os.ReadDir(filepath.Join(unifiedRoot, SystemdSlice))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		n, ok := strings.CutPrefix(e.Name(), "ctlab-")
		if n, ok2 := strings.CutSuffix(n, ".scope"); ok && ok2 && e.IsDir() && ValidName(n) == nil {
			out = append(out, n)
		}
	}
	return out
}
