package lab

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	"github.com/ctlab/ctlab/sandbox/host"
)

var (
	factsOnce sync.Once
	facts     host.Facts
)

// HostFacts gathers what this machine offers, once per process.
func HostFacts() host.Facts {
	factsOnce.Do(func() { facts = host.Gather() })
	return facts
}

// Preflight returns why s cannot run on this host: one sentence per unmet
// requirement, empty when it can run.
func Preflight(s *Scenario) []string { return PreflightWith(s, HostFacts()) }

// PreflightWith checks s against the given facts (tests pass their own).
func PreflightWith(s *Scenario, f host.Facts) []string {
	r := s.Requires
	var out []string
	if r.Root && !f.Root {
		out = append(out, "needs root: run it with sudo")
	}
	if r.Kernel != "" {
		maj, min, _ := strings.Cut(r.Kernel, ".")
		a, _ := strconv.Atoi(maj)
		b, _ := strconv.Atoi(min)
		if !f.AtLeast(a, b) {
			out = append(out, fmt.Sprintf("needs Linux %s or newer; this kernel is %s", r.Kernel, f.Kernel))
		}
	}
	for _, ns := range r.Namespaces {
		if !f.Namespaces[ns] {
			why := ""
			if ns == "time" {
				why = " (time namespaces arrived in Linux 5.6)"
			}
			out = append(out, fmt.Sprintf("needs the %s namespace, which /proc/self/ns does not offer%s", ns, why))
		}
	}
	eff := f.Effective
	if eff == "hybrid" {
		eff = "v1"
	}
	switch r.Cgroup {
	case "v1", "v2":
		if eff != r.Cgroup {
			out = append(out, fmt.Sprintf("needs cgroup %s; this host uses %s (mode %s)", r.Cgroup, eff, f.CgroupMode))
		}
	}
	for _, c := range r.Controllers {
		if !f.HasController(c) {
			out = append(out, fmt.Sprintf("needs the %s cgroup controller; usable here: %s", c, strings.Join(f.Controllers, " ")))
		}
	}
	if r.Systemd && f.Driver.Auto != "systemd" {
		out = append(out, fmt.Sprintf("needs systemd as PID 1 on a pure cgroup v2 host (here: systemd PID 1 %v, cgroup mode %s)", f.Driver.SystemdPID1, f.CgroupMode))
	}
	if r.Overlay && !f.Overlay {
		out = append(out, "needs overlayfs (modprobe overlay)")
	}
	if r.Userns && !f.UserNS {
		out = append(out, "needs user namespaces (sysctl user.max_user_namespaces is 0, or the kernel lacks them)")
	}
	for _, b := range r.Binaries {
		if !hasAnyBinary(f, b) {
			alts := strings.Split(b, "|")
			out = append(out, fmt.Sprintf("needs the %s command on the host (e.g. apt-get install %s)", strings.Join(alts, " or "), alts[len(alts)-1]))
		}
	}
	return out
}

// hasAnyBinary reports whether the host has one of the commands in spec,
// which names alternatives with "|": "busybox|ping" is met by either, since
// the default rootfs takes busybox's applet when busybox is there and the
// host's own command otherwise.
func hasAnyBinary(f host.Facts, spec string) bool {
	for _, b := range strings.Split(spec, "|") {
		have, known := f.Binaries[b]
		if !known {
			_, err := exec.LookPath(b)
			have = err == nil
		}
		if have {
			return true
		}
	}
	return false
}
