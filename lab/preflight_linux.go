package lab

import (
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

// PreflightIn is Preflight with the reasons in lang (en or zh).
func PreflightIn(s *Scenario, lang string) []string { return PreflightLang(s, HostFacts(), lang) }

// PreflightWith checks s against the given facts (tests pass their own).
func PreflightWith(s *Scenario, f host.Facts) []string { return PreflightLang(s, f, "en") }

// PreflightLang checks s against the given facts, reasons in lang.
func PreflightLang(s *Scenario, f host.Facts, lang string) []string {
	r := s.Requires
	var out []string
	if r.Root && !f.Root {
		out = append(out, Msg(lang, "pre.root"))
	}
	if r.Kernel != "" {
		maj, min, _ := strings.Cut(r.Kernel, ".")
		a, _ := strconv.Atoi(maj)
		b, _ := strconv.Atoi(min)
		if !f.AtLeast(a, b) {
			out = append(out, Msg(lang, "pre.kernel", r.Kernel, f.Kernel))
		}
	}
	for _, ns := range r.Namespaces {
		if !f.Namespaces[ns] {
			why := ""
			if ns == "time" {
				why = Msg(lang, "pre.ns.time")
			}
			out = append(out, Msg(lang, "pre.ns", ns, why))
		}
	}
	eff := f.Effective
	if eff == "hybrid" {
		eff = "v1"
	}
	switch r.Cgroup {
	case "v1", "v2":
		if eff != r.Cgroup {
			out = append(out, Msg(lang, "pre.cgroup", r.Cgroup, eff, f.CgroupMode))
		}
	}
	for _, c := range r.Controllers {
		if !f.HasController(c) {
			out = append(out, Msg(lang, "pre.controller", c, strings.Join(f.Controllers, " ")))
		}
	}
	if r.Systemd && f.Driver.Auto != "systemd" {
		out = append(out, Msg(lang, "pre.systemd", f.Driver.SystemdPID1, f.CgroupMode))
	}
	if r.Overlay && !f.Overlay {
		out = append(out, Msg(lang, "pre.overlay"))
	}
	if r.Userns && !f.UserNS {
		out = append(out, Msg(lang, "pre.userns"))
	}
	for _, b := range r.Binaries {
		if !hasAnyBinary(f, b) {
			alts := strings.Split(b, "|")
			if b == "ctlab-oci" {
				out = append(out, Msg(lang, "pre.ctlab-oci"))
				continue
			}
			out = append(out, Msg(lang, "pre.binary", strings.Join(alts, " | "), installHint(alts[len(alts)-1])))
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
			if b == "ctlab-oci" { // ctlab's runtime: beside ctlab too, where the actions look first
				_, err = ociRuntime()
			}
			have = err == nil
		}
		if have {
			return true
		}
	}
	return false
}

// installHint is what to install for a missing command: its Debian package,
// when that is not named like the command.
func installHint(cmd string) string {
	switch cmd {
	case "ctr", "containerd-shim-runc-v2":
		return "containerd"
	}
	return cmd
}
