package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cpuPeriod is the CFS period ctlab uses (the kernel default, 100 ms): a
// quota of CPUs*period microseconds per period caps the group at CPUs cores.
const cpuPeriod = 100000

// Update applies l to a live cgroup. l is the complete desired state: a zero
// field removes a limit set earlier (this is what a lesson's set_limit does).
func (c *Cgroup) Update(l Limits) error {
	if err := validate(l); err != nil {
		return fmt.Errorf("update cgroup %s: %w", c.name, err)
	}
	var err error
	switch {
	case c.unit != "":
		err = c.updateSystemd(l)
	case c.mode == V1:
		err = c.updateV1(l)
	default:
		err = c.updateV2(l)
	}
	if err == nil {
		err = c.setDevices(l)
	}
	if err != nil {
		return fmt.Errorf("update cgroup %s: %w", c.name, err)
	}
	return nil
}

func validate(l Limits) error {
	switch {
	case l.MemoryMax < 0:
		return fmt.Errorf("memory limit %d < 0", l.MemoryMax)
	case l.CPUs < 0 || math.IsNaN(l.CPUs) || l.CPUs > 1<<20:
		return fmt.Errorf("cpus %v out of range", l.CPUs)
	case l.CPUWeight > 10000:
		return fmt.Errorf("cpu weight %d out of range 1..10000", l.CPUWeight)
	case l.PidsMax < 0:
		return fmt.Errorf("pids limit %d < 0", l.PidsMax)
	}
	for _, io := range append(append([]IOLimit{}, l.IOReadBPS...), l.IOWriteBPS...) {
		if io.Rate == 0 {
			return fmt.Errorf("io limit %d:%d: rate must be > 0", io.Major, io.Minor)
		}
	}
	for _, r := range l.DeviceRules() {
		if r.Type != 'a' && r.Type != 'b' && r.Type != 'c' {
			return fmt.Errorf("device rule %q: type must be a, b or c", r.String())
		}
		if r.Major < -1 || r.Minor < -1 || r.Major > math.MaxUint32 || r.Minor > math.MaxUint32 {
			return fmt.Errorf("device rule %q: bad major/minor", r.String())
		}
		if err := checkAccess(r.Access); err != nil {
			return fmt.Errorf("device rule %q: %w", r.String(), err)
		}
	}
	return nil
}

func cpuQuota(cpus float64) int64 { return cpuQuotaAt(cpus, cpuPeriod) }

// cpuQuotaAt is the quota for cpus cores in a period of period µs.
func cpuQuotaAt(cpus float64, period uint64) int64 {
	q := int64(math.Round(cpus * float64(period)))
	if q < 1000 {
		q = 1000 // the kernel refuses quotas under 1 ms
	}
	return q
}

// weightToShares maps a v2 cpu.weight (1..10000, default 100) onto v1
// cpu.shares (2..262144, default 1024) proportionally, so the defaults match
// and weight 200 = 2048 shares = "twice the default". (runc's linear range
// mapping sends shares 1024 to weight 39, not 100.)
func weightToShares(w uint64) uint64 {
	if w == 0 {
		return 1024
	}
	s := w * 1024 / 100
	return min(max(s, 2), 262144)
}

func writeFile(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, err)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// ---- v1 ----

func checkV1Limits(paths map[string]string, l Limits) error {
	if err := validate(l); err != nil {
		return err
	}
	need := func(ctrl string, want bool) error {
		if _, ok := paths[ctrl]; want && !ok {
			return fmt.Errorf("the v1 %s controller is not mounted on this host", ctrl)
		}
		return nil
	}
	return errors.Join(
		need("memory", l.MemoryMax > 0),
		need("cpu", l.CPUs > 0 || l.CPUWeight > 0),
		need("pids", l.PidsMax > 0),
		need("blkio", len(l.IOReadBPS)+len(l.IOWriteBPS) > 0),
		need("devices", len(l.Devices)+len(l.DenyDevices) > 0 || l.DenyDefault),
	)
}

// memswFile is memory.memsw.limit_in_bytes of the memory hierarchy, present
// only when the kernel accounts swap per cgroup.
func memswFile(memDir string) string { return filepath.Join(memDir, "memory.memsw.limit_in_bytes") }

// v1Spec translates l into the OCI resources containerd's v1 controllers
// write. Devices are left out: setDevices handles them for both versions.
func v1Spec(paths map[string]string, l Limits) *specs.LinuxResources {
	res := &specs.LinuxResources{}
	if _, ok := paths["cpu"]; ok {
		shares, period, quota := weightToShares(l.CPUWeight), l.period(), int64(-1)
		if l.OCI.CPUShares > 0 {
			shares = l.OCI.CPUShares
		}
		if l.CPUs > 0 {
			quota = cpuQuotaAt(l.CPUs, period)
		}
		res.CPU = &specs.LinuxCPU{Shares: &shares, Period: &period, Quota: &quota}
	}
	if _, ok := paths["cpuset"]; ok {
		if res.CPU == nil {
			res.CPU = &specs.LinuxCPU{}
		}
		res.CPU.Cpus, res.CPU.Mems = l.OCI.CpusetCPUs, l.OCI.CpusetMems
	}
	if mem, ok := paths["memory"]; ok {
		limit := int64(-1)
		if l.MemoryMax > 0 {
			limit = l.MemoryMax
		}
		res.Memory = &specs.LinuxMemory{Limit: &limit}
		// memsw = memory+swap. Setting it equal to the limit means "no swap",
		// so the limit really ends in the OOM killer instead of swapping.
		if exists(memswFile(filepath.Dir(mem))) {
			swap := limit
			if l.OCI.MemorySwap != 0 {
				swap = l.OCI.MemorySwap
			}
			res.Memory.Swap = &swap
		}
		if l.OCI.MemoryReservation > 0 {
			res.Memory.Reservation = &l.OCI.MemoryReservation
		}
		res.Memory.Swappiness = l.OCI.Swappiness
		if l.OCI.DisableOOMKiller {
			res.Memory.DisableOOMKiller = &l.OCI.DisableOOMKiller
		}
	}
	if _, ok := paths["pids"]; ok && l.PidsMax > 0 {
		res.Pids = &specs.LinuxPids{Limit: &l.PidsMax}
	}
	if _, ok := paths["blkio"]; ok && len(l.IOReadBPS)+len(l.IOWriteBPS) > 0 {
		res.BlockIO = &specs.LinuxBlockIO{}
		for _, d := range l.IOReadBPS {
			res.BlockIO.ThrottleReadBpsDevice = append(res.BlockIO.ThrottleReadBpsDevice, throttle(d))
		}
		for _, d := range l.IOWriteBPS {
			res.BlockIO.ThrottleWriteBpsDevice = append(res.BlockIO.ThrottleWriteBpsDevice, throttle(d))
		}
	}
	return res
}

// period is the CFS period l asks for.
func (l Limits) period() uint64 {
	if l.OCI.CPUPeriod > 0 {
		return l.OCI.CPUPeriod
	}
	return cpuPeriod
}

func throttle(d IOLimit) specs.LinuxThrottleDevice {
	t := specs.LinuxThrottleDevice{Rate: d.Rate}
	t.Major, t.Minor = int64(d.Major), int64(d.Minor)
	return t
}

func (c *Cgroup) updateV1(l Limits) error {
	if err := checkV1Limits(c.paths, l); err != nil {
		return err
	}
	// The kernel keeps memsw (memory+swap) >= the memory limit. containerd
	// writes memory.limit_in_bytes first; its reordering for a raise swaps
	// the wrong entries (limit and soft limit, v3.1.3), so raising or lifting
	// the limit fails with EINVAL. Raise memsw to the new value first.
	if mem, ok := c.paths["memory"]; ok && exists(memswFile(mem)) {
		cur, err := readInt(memswFile(mem))
		if err != nil {
			return err
		}
		if l.MemoryMax == 0 && cur != -1 {
			err = writeFile(memswFile(mem), "-1")
		} else if l.MemoryMax > 0 && cur != -1 && l.MemoryMax > cur {
			err = writeFile(memswFile(mem), strconv.FormatInt(l.MemoryMax, 10))
		}
		if err != nil {
			return err
		}
	}
	if err := c.v1.Update(v1Spec(c.paths, l)); err != nil {
		return fmt.Errorf("containerd cgroup1 update: %w", err)
	}
	return c.applyV1Extras(l)
}

// applyV1Extras writes what containerd cannot express: removing a pids limit
// (it skips 0) and removing a throttle (the kernel wants "MAJ:MIN 0").
func (c *Cgroup) applyV1Extras(l Limits) error {
	if p, ok := c.paths["pids"]; ok && l.PidsMax == 0 {
		if err := writeFile(filepath.Join(p, "pids.max"), "max"); err != nil {
			return err
		}
	}
	if p, ok := c.paths["blkio"]; ok {
		for file, want := range map[string][]IOLimit{
			"blkio.throttle.read_bps_device":  l.IOReadBPS,
			"blkio.throttle.write_bps_device": l.IOWriteBPS,
		} {
			lines, err := readLines(filepath.Join(p, file))
			if err != nil {
				return err
			}
			for _, line := range lines {
				dev := strings.Fields(line)[0]
				if !hasDev(want, dev) {
					if err := writeFile(filepath.Join(p, file), dev+" 0"); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

func hasDev(list []IOLimit, dev string) bool {
	for _, d := range list {
		if fmt.Sprintf("%d:%d", d.Major, d.Minor) == dev {
			return true
		}
	}
	return false
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if t := strings.TrimSpace(s.Text()); t != "" {
			out = append(out, t)
		}
	}
	return out, s.Err()
}

// ---- v2 ----

// v2Resources translates l for containerd's cgroup2 manager. Only available
// controllers get a section (a section for a missing controller makes the
// manager write files that do not exist); a limit on a missing one is an error.
func v2Resources(dir string, avail []string, l Limits) (*cgroup2.Resources, error) {
	res := &cgroup2.Resources{}
	parent := filepath.Dir(dir)
	var errs []error
	need := func(ctrl string, want bool) bool {
		if contains(avail, ctrl) {
			return true
		}
		if want {
			errs = append(errs, fmt.Errorf("the v2 %s controller is not available (not in /sys/fs/cgroup/cgroup.controllers)", ctrl))
		}
		return false
	}
	if need("cpu", l.CPUs > 0 || l.CPUWeight > 0) {
		w := l.CPUWeight
		if w == 0 {
			w = 100
		}
		period := l.period()
		var quota *int64
		if l.CPUs > 0 {
			q := cpuQuotaAt(l.CPUs, period)
			quota = &q
		}
		res.CPU = &cgroup2.CPU{Weight: &w, Max: cgroup2.NewCPUMax(quota, &period)}
	}
	if l.OCI.CpusetCPUs != "" || l.OCI.CpusetMems != "" {
		// containerd's manager enables cpuset down the path when these are set.
		if b, err := os.ReadFile(filepath.Join(unifiedRoot, "cgroup.controllers")); err != nil || !contains(strings.Fields(string(b)), "cpuset") {
			errs = append(errs, fmt.Errorf("cpuset pinning (cpus %q, mems %q): the v2 cpuset controller is not available", l.OCI.CpusetCPUs, l.OCI.CpusetMems))
		} else {
			if res.CPU == nil {
				res.CPU = &cgroup2.CPU{}
			}
			res.CPU.Cpus, res.CPU.Mems = l.OCI.CpusetCPUs, l.OCI.CpusetMems
		}
	}
	if need("memory", l.MemoryMax > 0) {
		// memory.max takes "max" or bytes; containerd writes an int64, and
		// the kernel clamps MaxInt64 to "max" (it rejects -1).
		max := int64(math.MaxInt64)
		if l.MemoryMax > 0 {
			max = l.MemoryMax
		}
		res.Memory = &cgroup2.Memory{Max: &max}
		if l.OCI.MemoryReservation > 0 {
			res.Memory.Low = &l.OCI.MemoryReservation
		}
		// v2 swap.max is swap only (v1 memsw is memory+swap): 0 = no swap.
		if exists(filepath.Join(parent, "memory.swap.max")) {
			swap := int64(math.MaxInt64)
			if l.MemoryMax > 0 {
				swap = 0
			}
			if l.OCI.MemorySwap > 0 && l.MemoryMax > 0 {
				swap = 0 // runc's conversion: memory+swap minus memory
				if l.OCI.MemorySwap > l.MemoryMax {
					swap = l.OCI.MemorySwap - l.MemoryMax
				}
			}
			res.Memory.Swap = &swap
		}
	}
	if need("pids", l.PidsMax > 0) {
		max := int64(-1) // containerd writes "max" for -1 and skips 0
		if l.PidsMax > 0 {
			max = l.PidsMax
		}
		res.Pids = &cgroup2.Pids{Max: max}
	}
	if need("io", len(l.IOReadBPS)+len(l.IOWriteBPS) > 0) && len(l.IOReadBPS)+len(l.IOWriteBPS) > 0 {
		res.IO = &cgroup2.IO{}
		for _, d := range l.IOReadBPS {
			res.IO.Max = append(res.IO.Max, cgroup2.Entry{Type: cgroup2.ReadBPS, Major: int64(d.Major), Minor: int64(d.Minor), Rate: d.Rate})
		}
		for _, d := range l.IOWriteBPS {
			res.IO.Max = append(res.IO.Max, cgroup2.Entry{Type: cgroup2.WriteBPS, Major: int64(d.Major), Minor: int64(d.Minor), Rate: d.Rate})
		}
	}
	return res, errors.Join(errs...)
}

func (c *Cgroup) updateV2(l Limits) error {
	avail, err := v2Available()
	if err != nil {
		return err
	}
	res, err := v2Resources(c.v2dir, avail, l)
	if err != nil {
		return err
	}
	if err := c.v2.Update(res); err != nil {
		return fmt.Errorf("containerd cgroup2 update: %w", err)
	}
	return c.applyV2Extras(l)
}

// applyV2Extras resets io.max for devices whose limits were removed: each
// device line is rewritten with the desired rates or "max".
func (c *Cgroup) applyV2Extras(l Limits) error {
	f := filepath.Join(c.v2dir, "io.max")
	if !exists(f) {
		return nil
	}
	lines, err := readLines(f)
	if err != nil {
		return err
	}
	rate := func(list []IOLimit, dev string) string {
		for _, d := range list {
			if fmt.Sprintf("%d:%d", d.Major, d.Minor) == dev {
				return strconv.FormatUint(d.Rate, 10)
			}
		}
		return "max"
	}
	for _, line := range lines {
		dev := strings.Fields(line)[0]
		want := fmt.Sprintf("%s rbps=%s wbps=%s", dev, rate(l.IOReadBPS, dev), rate(l.IOWriteBPS, dev))
		if err := writeFile(f, want); err != nil {
			return err
		}
	}
	return nil
}

// ---- devices ----

// setDevices installs l's device policy: v1 writes devices.deny/allow line by
// line, v2 loads an eBPF program (see devices_v2_linux.go). An unchanged
// policy is left alone, so a set_limit on memory does not briefly deny
// /dev/null to a running container.
func (c *Cgroup) setDevices(l Limits) error {
	rules := l.DeviceRules()
	if c.mode == V2 {
		return setDevicesV2(c.v2dir, rules)
	}
	dir, ok := c.paths["devices"]
	if !ok {
		return nil // checkV1Limits already refused explicit rules
	}
	cur, err := readLines(filepath.Join(dir, "devices.list"))
	if err != nil {
		return err
	}
	want := emulateV1Devices(rules)
	sort.Strings(cur)
	if strings.Join(cur, "\n") == strings.Join(want, "\n") {
		return nil
	}
	for _, r := range rules {
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		if err := writeFile(filepath.Join(dir, file), r.String()); err != nil {
			return err
		}
	}
	return nil
}

// emulateV1Devices computes the devices.list the kernel will show after the
// rules are written in order (security/device_cgroup.c): "a" resets the
// default behaviour and clears exceptions; other rules add access bits to an
// exception when they go against the default, or remove bits from the exact
// same type/major:minor exception when they agree with it.
func emulateV1Devices(rules []DeviceRule) []string {
	type key struct {
		t          byte
		maj, minor int64
	}
	allowAll := true
	ex := map[key]string{}
	order := []key{}
	for _, r := range rules {
		if r.Type == 'a' {
			allowAll = r.Allow
			ex = map[key]string{}
			order = nil
			continue
		}
		k := key{r.Type, r.Major, r.Minor}
		if r.Allow != allowAll { // an exception to the default: add bits
			if _, ok := ex[k]; !ok {
				order = append(order, k)
			}
			ex[k] = mergeAccess(ex[k], r.Access, true)
		} else if cur, ok := ex[k]; ok { // agrees with the default: remove bits
			ex[k] = mergeAccess(cur, r.Access, false)
		}
	}
	if allowAll {
		return []string{"a *:* rwm"}
	}
	var out []string
	for _, k := range order {
		if acc := ex[k]; acc != "" {
			out = append(out, DeviceRule{Type: k.t, Major: k.maj, Minor: k.minor, Access: acc}.String())
		}
	}
	sort.Strings(out)
	return out
}

func mergeAccess(cur, change string, add bool) string {
	var out strings.Builder
	for _, c := range "rwm" {
		has := strings.ContainsRune(cur, c)
		in := strings.ContainsRune(change, c)
		if (add && (has || in)) || (!add && has && !in) {
			out.WriteRune(c)
		}
	}
	return out.String()
}
