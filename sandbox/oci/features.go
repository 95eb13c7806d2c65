package oci

import (
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/ctlab/ctlab/sandbox/seccomp"
)

// Features is what `features` prints: the namespaces, capabilities, mount
// options, hooks and seccomp parts this runtime understands. AppArmor and
// SELinux are not implemented and say so.
func Features() *features.Features {
	var opts, caps, nss []string
	for o := range mountFlags {
		opts = append(opts, o)
	}
	for o := range propagation {
		opts = append(opts, o)
	}
	for c := range capNumbers {
		caps = append(caps, c)
	}
	for ns := range nsKinds {
		nss = append(nss, string(ns))
	}
	sort.Strings(opts)
	sort.Strings(caps)
	sort.Strings(nss)
	yes, no := true, false
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  opts,
		Linux: &features.Linux{
			Namespaces:   nss,
			Capabilities: caps,
			Cgroup:       &features.Cgroup{V1: &yes, V2: &yes, Systemd: &no, SystemdUser: &no},
			Seccomp:      seccomp.Features(),
			Apparmor:     &features.Apparmor{Enabled: &no},
			Selinux:      &features.Selinux{Enabled: &no},
		},
		Annotations: map[string]string{"org.ctlab.runtime": "ctlab-oci (sandbox/oci)"},
	}
}
