package kstate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ctlab/ctlab/sandbox/cgroups"
)

// CPUUsage returns the CPU time all tasks of the ctlab cgroup
// "ctlab/<name>" have used since it was made, and the file it read.
//
// v2 keeps it as usage_usec in cpu.stat (kernel/cgroup/rstat.c,
// cgroup_base_stat_cputime_show); v1 in cpuacct.usage, in nanoseconds
// (kernel/sched/cpuacct.c, cpuusage_read). One read is a counter, not a
// rate: a caller reads twice and divides by the time between.
func CPUUsage(name string) (time.Duration, string, error) {
	cg, err := cgroups.Open(name)
	if err != nil {
		return 0, "cpu.stat usage_usec", fmt.Errorf("kstate: open cgroup %s: %w", name, err)
	}
	paths := cg.Paths()
	if dir := paths["cpuacct"]; dir != "" {
		p := filepath.Join(dir, "cpuacct.usage")
		b, err := os.ReadFile(p)
		if err == nil {
			ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			if err != nil {
				return 0, p, fmt.Errorf("kstate: parse %s: %w", p, err)
			}
			return time.Duration(ns), p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return 0, p, err
		}
	}
	dir := paths["cpu"]
	if dir == "" {
		for _, d := range paths {
			dir = d
			break
		}
	}
	if dir == "" {
		return 0, "cpu.stat usage_usec", fmt.Errorf("kstate: cgroup %s has no cpu controller directory", name)
	}
	p := filepath.Join(dir, "cpu.stat")
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, p, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "usage_usec" {
			us, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, p + " usage_usec", fmt.Errorf("kstate: parse %s: %w", p, err)
			}
			return time.Duration(us) * time.Microsecond, p + " usage_usec", nil
		}
	}
	return 0, p + " usage_usec", fmt.Errorf("kstate: no usage_usec line in %s (a v1 cpu.stat has none: mount cpuacct)", p)
}

// IOBytes returns the bytes the tasks of the ctlab cgroup "ctlab/<name>"
// have read from and written to the block device major:minor (a whole
// disk: the kernel accounts I/O per request queue, not per partition).
//
// v2: the "MAJ:MIN rbytes=N wbytes=N ..." line of io.stat
// (block/blk-cgroup.c, blkcg_print_one_stat). v1: "MAJ:MIN Read N" and
// "MAJ:MIN Write N" of blkio.throttle.io_service_bytes, which the v1
// block layer counts for every bio of every group, limited or not, once
// blk-throttle is active on that disk (block/blk-throttle.h,
// blk_should_throtl; since Linux 6.10 it activates when the first
// throttle limit is set on the disk). A device with no line yet has
// moved nothing: 0, no error.
func IOBytes(name string, major, minor uint32) (read, write uint64, source string, err error) {
	cg, err := cgroups.Open(name)
	if err != nil {
		return 0, 0, "io.stat", fmt.Errorf("kstate: open cgroup %s: %w", name, err)
	}
	paths := cg.Paths()
	dev := fmt.Sprintf("%d:%d", major, minor)
	if dir := paths["blkio"]; dir != "" {
		p := filepath.Join(dir, "blkio.throttle.io_service_bytes")
		b, err := os.ReadFile(p)
		if err != nil {
			return 0, 0, p, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) != 3 || f[0] != dev {
				continue
			}
			n, _ := strconv.ParseUint(f[2], 10, 64)
			switch f[1] {
			case "Read":
				read = n
			case "Write":
				write = n
			}
		}
		return read, write, p + " " + dev, nil
	}
	dir := paths["io"]
	if dir == "" {
		// v2: every controller maps to the one directory
		for _, d := range paths {
			dir = d
			break
		}
	}
	if dir == "" {
		return 0, 0, "io.stat", fmt.Errorf("kstate: cgroup %s has no io/blkio controller directory", name)
	}
	p := filepath.Join(dir, "io.stat")
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, 0, p, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != dev {
			continue
		}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseUint(v, 10, 64)
			switch k {
			case "rbytes":
				read = n
			case "wbytes":
				write = n
			}
		}
	}
	return read, write, p + " " + dev, nil
}
