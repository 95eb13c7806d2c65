package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// unlimitedV1 is the smallest value treated as "no limit" in v1 files: the
// kernel shows PAGE_COUNTER_MAX*PAGE_SIZE (9223372036854771712 on x86-64).
const unlimitedV1 = int64(1) << 62

// readKV parses "key value" lines (cgroup.events, memory.events, cpu.stat ...).
func readKV(path string) (map[string]uint64, error) {
	lines, err := readLines(path)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 2 {
			if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				out[f[0]] = v
			}
		}
	}
	return out, nil
}

func readRaw(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// readInt reads a one-number file; "max" and v1's huge values become -1.
func readInt(path string) (int64, error) {
	s, err := readRaw(path)
	if err != nil {
		return 0, err
	}
	if s == "max" {
		return -1, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if u, uerr := strconv.ParseUint(s, 10, 64); uerr == nil && u > uint64(unlimitedV1) {
			return -1, nil
		}
		return 0, fmt.Errorf("parse %s %q: %w", path, s, err)
	}
	if v >= unlimitedV1 {
		return -1, nil
	}
	return v, nil
}

// Stats reads the cgroup's files now. Every number comes from the kernel,
// never from what ctlab wrote. A controller that is not mounted leaves its
// fields zero.
func (c *Cgroup) Stats() (*Stats, error) {
	st := &Stats{Mode: c.mode}
	var errs []error
	// keep records the first real error; missing optional files are fine.
	keep := func(err error) {
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	var err error
	if c.mode == V1 {
		c.statsV1(st, keep)
	} else {
		c.statsV2(st, keep)
	}
	if _, ferr := c.freezerFile(); ferr == nil {
		st.FreezerState, err = c.FreezerState()
		keep(err)
		st.Frozen = st.FreezerState == "FROZEN"
	}
	if len(errs) > 0 {
		return st, fmt.Errorf("stats of cgroup %s: %w", c.name, errors.Join(errs...))
	}
	return st, nil
}

func (c *Cgroup) statsV1(st *Stats, keep func(error)) {
	var err error
	if d, ok := c.paths["memory"]; ok {
		st.MemoryCurrent, err = readInt(filepath.Join(d, "memory.usage_in_bytes"))
		keep(err)
		st.MemoryMax, err = readInt(filepath.Join(d, "memory.limit_in_bytes"))
		keep(err)
		st.MemoryPeak, err = readInt(filepath.Join(d, "memory.max_usage_in_bytes"))
		keep(err)
		oc, err := readKV(filepath.Join(d, "memory.oom_control"))
		keep(err)
		// v1 only counts kills (since 4.13); use it for both fields.
		st.OOMKills, st.OOMEvents = oc["oom_kill"], oc["oom_kill"]
		fc, err := readInt(filepath.Join(d, "memory.failcnt"))
		keep(err)
		st.MemoryLimitHits = uint64(fc)
	}
	if d, ok := c.paths["pids"]; ok {
		st.PidsCurrent, err = readInt(filepath.Join(d, "pids.current"))
		keep(err)
		st.PidsMax, err = readInt(filepath.Join(d, "pids.max"))
		keep(err)
	}
	if d, ok := c.paths["cpuacct"]; ok {
		ns, err := readInt(filepath.Join(d, "cpuacct.usage"))
		keep(err)
		st.CPUUsageUsec = uint64(ns) / 1000
	}
	if d, ok := c.paths["cpu"]; ok {
		cs, err := readKV(filepath.Join(d, "cpu.stat"))
		keep(err)
		st.NrPeriods, st.NrThrottled, st.ThrottledUsec = cs["nr_periods"], cs["nr_throttled"], cs["throttled_time"]/1000
		st.CPUQuotaUsec, err = readInt(filepath.Join(d, "cpu.cfs_quota_us"))
		keep(err)
		p, err := readInt(filepath.Join(d, "cpu.cfs_period_us"))
		keep(err)
		st.CPUPeriodUsec = uint64(p)
	}
	if d, ok := c.paths["blkio"]; ok {
		// The throttle counters are the ones kept on every kernel (CFQ is gone).
		file := filepath.Join(d, "blkio.throttle.io_service_bytes_recursive")
		if !exists(file) {
			file = filepath.Join(d, "blkio.throttle.io_service_bytes")
		}
		lines, err := readLines(file)
		keep(err)
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) != 3 {
				continue
			}
			v, _ := strconv.ParseUint(f[2], 10, 64)
			switch f[1] {
			case "Read":
				st.IOReadBytes += v
			case "Write":
				st.IOWriteBytes += v
			}
		}
		for _, name := range []string{"blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device"} {
			lines, err := readLines(filepath.Join(d, name))
			keep(err)
			for _, l := range lines {
				st.IOMax = append(st.IOMax, name+": "+l)
			}
		}
	}
	if d, ok := c.paths["devices"]; ok {
		st.Devices, err = readLines(filepath.Join(d, "devices.list"))
		keep(err)
	}
}

func (c *Cgroup) statsV2(st *Stats, keep func(error)) {
	d := c.v2dir
	var err error
	if exists(filepath.Join(d, "memory.max")) {
		st.MemoryCurrent, err = readInt(filepath.Join(d, "memory.current"))
		keep(err)
		st.MemoryMax, err = readInt(filepath.Join(d, "memory.max"))
		keep(err)
		if exists(filepath.Join(d, "memory.peak")) { // Linux 5.19+
			st.MemoryPeak, err = readInt(filepath.Join(d, "memory.peak"))
			keep(err)
		}
		ev, err := readKV(filepath.Join(d, "memory.events"))
		keep(err)
		st.OOMEvents, st.OOMKills, st.MemoryLimitHits = ev["oom"], ev["oom_kill"], ev["max"]
	}
	if exists(filepath.Join(d, "pids.max")) {
		st.PidsCurrent, err = readInt(filepath.Join(d, "pids.current"))
		keep(err)
		st.PidsMax, err = readInt(filepath.Join(d, "pids.max"))
		keep(err)
	}
	cs, err := readKV(filepath.Join(d, "cpu.stat")) // usage_usec is always there
	keep(err)
	st.CPUUsageUsec, st.NrPeriods, st.NrThrottled, st.ThrottledUsec = cs["usage_usec"], cs["nr_periods"], cs["nr_throttled"], cs["throttled_usec"]
	if s, err := readRaw(filepath.Join(d, "cpu.max")); err == nil {
		f := strings.Fields(s)
		if len(f) == 2 {
			st.CPUQuotaUsec = -1
			if f[0] != "max" {
				st.CPUQuotaUsec, _ = strconv.ParseInt(f[0], 10, 64)
			}
			st.CPUPeriodUsec, _ = strconv.ParseUint(f[1], 10, 64)
		}
	} else {
		keep(err)
	}
	if lines, err := readLines(filepath.Join(d, "io.stat")); err == nil {
		for _, l := range lines {
			for _, kv := range strings.Fields(l)[1:] {
				k, v, _ := strings.Cut(kv, "=")
				n, _ := strconv.ParseUint(v, 10, 64)
				switch k {
				case "rbytes":
					st.IOReadBytes += n
				case "wbytes":
					st.IOWriteBytes += n
				}
			}
		}
	} else {
		keep(err)
	}
	if exists(filepath.Join(d, "io.max")) {
		st.IOMax, err = readLines(filepath.Join(d, "io.max"))
		keep(err)
	}
	st.Devices, err = describeDevicesV2(d)
	keep(err)
}

// Files is the teaching table: each limit and usage file under its v1 and v2
// names, its path on this host, and the raw value the kernel returns now.
// Rows that share this host's file are merged (on v2 "cpu.cfs_quota_us +
// cpu.cfs_period_us" -> cpu.max; on v1 freezer.state -> "cgroup.freeze +
// cgroup.events"). Write-only files show "(write-only)", empty ones "(empty)".
func (c *Cgroup) Files() []File {
	var out []File
	index := map[string]int{}
	if c.mode == V1 {
		for _, p := range NamePairs {
			if i, ok := index[p.V1Name]; ok {
				out[i].V2Name += " + " + p.V2Name
				continue
			}
			f := p
			dir, ok := c.paths[v1Controller(p)]
			if !ok || strings.HasPrefix(p.V1Name, "(") {
				continue
			}
			f.Path = filepath.Join(dir, p.V1Name)
			f.Value = rawValue(f.Path)
			index[p.V1Name] = len(out)
			out = append(out, f)
		}
		return out
	}
	for _, p := range NamePairs {
		if i, ok := index[p.V2Name]; ok {
			out[i].V1Name += " + " + p.V1Name
			continue
		}
		f := p
		if p.V2Name == V2DevicesName {
			f.Path = c.v2dir
			lines, err := describeDevicesV2(c.v2dir)
			f.Value = strings.Join(lines, "; ")
			if err != nil {
				f.Value = "(" + err.Error() + ")"
			}
		} else {
			f.Path = filepath.Join(c.v2dir, p.V2Name)
			if !exists(f.Path) {
				continue // controller not enabled, or file newer than this kernel
			}
			f.Value = rawValue(f.Path)
		}
		index[p.V2Name] = len(out)
		out = append(out, f)
	}
	return out
}

// v1Controller names the v1 hierarchy holding a NamePairs row's v1 file.
func v1Controller(p File) string {
	switch {
	case p.Controller == "io":
		return "blkio"
	case strings.HasPrefix(p.V1Name, "cpuacct."):
		return "cpuacct"
	case p.Controller == "cgroup":
		return "memory" // cgroup.procs exists in every hierarchy; show one
	default:
		return p.Controller
	}
}

func rawValue(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrPermission) || errors.Is(err, os.ErrInvalid) {
			return "(write-only)"
		}
		if st, serr := os.Stat(path); serr == nil && st.Mode().Perm()&0o444 == 0 {
			return "(write-only)"
		}
		return "(" + err.Error() + ")"
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(empty)"
	}
	return strings.ReplaceAll(s, "\n", "; ")
}
