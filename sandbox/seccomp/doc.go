// Package seccomp compiles an OCI seccomp profile (linux.seccomp of a
// runtime-spec config: a default action, syscall rules with argument
// conditions, architectures and flags) into the classic BPF program the
// kernel's seccomp(2) runs on every system call, and loads it.
//
// Both of ctlab's filters come from here: the OCI runtime's (sandbox/oci:
// the bundle's profile, compiled by ctlab-oci and loaded by the process
// init) and the hardened container's allow-list (sandbox, seccomp_linux.go).
//
// Why not libseccomp: it needs cgo and a C library in every binary, while
// a seccomp program is just an array of 8-byte instructions; Go's
// golang.org/x/net/bpf encodes them. Why not a Go filter library
// (elastic/go-seccomp-bpf): it has one action per group, no MASKED_EQ with
// a separate datum and a single architecture, and its package init builds
// maps of every syscall table (about 0.2 ms of every container start). The
// tables here are generated static data (zsyscalls.go, `go generate`), so
// importing the package costs nothing.
//
// The program follows what runc (libseccomp plus its patchbpf stub) loads:
//
//   - one section per architecture the kernel can run for this machine
//     (x86_64 with SCMP_ARCH_X86 and SCMP_ARCH_X32; aarch64 with
//     SCMP_ARCH_ARM), the native one always; the other architectures of
//     the list cannot occur and are skipped. A syscall of an architecture
//     not in the filter gets SECCOMP_RET_KILL_THREAD (libseccomp's
//     bad-arch action) or the errno of Options.UnlistedArchErrno. x32
//     shares AUDIT_ARCH_X86_64: numbers with __X32_SYSCALL_BIT go to the
//     x32 section if listed, else count as an unlisted architecture.
//   - a syscall newer than every syscall the profile names gets ENOSYS
//     instead of a non-permissive default action (runc's stub), so libc
//     falls back from calls the profile author did not know.
//   - rules of the same syscall, merged as libseccomp does: the first
//     unconditional rule decides alone (podman's profile allows setns in
//     its big list and refuses it again later: runc allows it); else the
//     rules with argument conditions in config order, first match wins,
//     else the default. (Where two conditional rules with different
//     actions both match, libseccomp's tree may pick the other one; the
//     usual profiles have no such overlap.) A rule whose conditions name
//     distinct arguments needs all of them; one naming an argument twice
//     is split into a rule per condition (runc's "old behaviour"). A rule
//     whose action is the default action is skipped (runc).
//   - a name this architecture lacks is skipped (chown32 on x86_64), as
//     libseccomp does; a name no architecture knows is ignored like runc
//     does, but with a warning, so a typo does not silently disable a rule.
//   - 64-bit arguments compare both 32-bit halves (high word first);
//     32-bit architectures compare the low word only.
package seccomp
