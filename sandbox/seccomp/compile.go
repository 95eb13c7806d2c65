package seccomp

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"golang.org/x/net/bpf"
)

// seccomp_data offsets.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16

	x32Bit = 0x40000000

	retKillThread  = 0x00000000
	retKillProcess = 0x80000000
	retTrap        = 0x00030000
	retErrno       = 0x00050000
	retTrace       = 0x7ff00000
	retLog         = 0x7ffc0000
	retAllow       = 0x7fff0000

	errnoEPERM  = 1
	errnoENOSYS = 38
)

var seccompArches = map[specs.Arch]*archInfo{
	specs.ArchX86_64: &archX86_64, specs.ArchX86: &archI386, specs.ArchX32: &archX32,
	specs.ArchAARCH64: &archAARCH64, specs.ArchARM: &archARM,
}

// compatArches are the architectures a kernel of the native one runs.
var compatArches = map[string][]*archInfo{
	"x86_64":  {&archX86_64, &archI386, &archX32},
	"aarch64": {&archAARCH64, &archARM},
}

var seccompFlags = map[specs.LinuxSeccompFlag]uint{
	"SECCOMP_FILTER_FLAG_TSYNC":     0, // one thread execs: nothing to sync (runc ignores it too)
	specs.LinuxSeccompFlagLog:       2,
	specs.LinuxSeccompFlagSpecAllow: 4,
}

// Filter is a compiled filter: what a process loads right before it
// execs. It travels as JSON inside the OCI process init's instructions.
type Filter struct {
	Prog  []byte `json:"prog"`            // struct sock_filter array, native endian
	Flags uint   `json:"flags,omitempty"` // SECCOMP_FILTER_FLAG_*
}

// Options are the choices a profile does not express.
type Options struct {
	// UnlistedArchErrno is the errno for a syscall of an architecture the
	// filter has no section for (an i386 int 0x80 call on x86_64, x32
	// numbers when SCMP_ARCH_X32 is not listed). 0 is
	// SECCOMP_RET_KILL_THREAD, libseccomp's bad-arch action and so runc's:
	// what an OCI runtime keeps.
	UnlistedArchErrno uint
}

// seccompRet maps an action to SECCOMP_RET_*.
func seccompRet(a specs.LinuxSeccompAction, errno *uint) (uint32, error) {
	ret := func(base uint32) uint32 {
		e := uint32(errnoEPERM)
		if errno != nil {
			e = uint32(*errno) & 0xffff
		}
		return base | e
	}
	switch a {
	case specs.ActAllow:
		return retAllow, nil
	case specs.ActErrno:
		return ret(retErrno), nil
	case specs.ActKill, specs.ActKillThread:
		return retKillThread, nil
	case specs.ActKillProcess:
		return retKillProcess, nil
	case specs.ActTrap:
		return retTrap, nil
	case specs.ActTrace:
		return ret(retTrace), nil
	case specs.ActLog:
		return retLog, nil
	case specs.ActNotify:
		return 0, fmt.Errorf("seccomp action %s (a listener agent) is not supported by ctlab", a)
	}
	return 0, fmt.Errorf("unknown seccomp action %q", a)
}

// Compile compiles s for the running machine; warn gets the names it
// ignores.
func Compile(s *specs.LinuxSeccomp, opts Options, warn func(string)) (*Filter, error) {
	native, err := nativeArch()
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	raw, flags, err := program(s, native, opts, warn)
	if err != nil {
		return nil, err
	}
	if len(raw) > 4096 {
		return nil, fmt.Errorf("seccomp: the filter has %d instructions, the kernel takes 4096", len(raw))
	}
	f := &Filter{Flags: flags, Prog: make([]byte, 0, 8*len(raw))}
	for _, r := range raw {
		f.Prog = binary.NativeEndian.AppendUint16(f.Prog, r.Op)
		f.Prog = append(f.Prog, r.Jt, r.Jf)
		f.Prog = binary.NativeEndian.AppendUint32(f.Prog, r.K)
	}
	return f, nil
}

// seccompRule is one rule of one syscall: all conds must hold.
type seccompRule struct {
	ret   uint32
	conds []specs.LinuxSeccompArg
}

// archRules are one architecture's rules by syscall number (already
// with the architecture's mask).
type archRules struct {
	info   *archInfo
	rules  map[uint32][]seccompRule // conditional ones, in order
	uncond map[uint32]uint32
	maxNr  uint32
	// missing are the names this architecture lacks, in profile order.
	missing []string
}

// program builds the program for native and the architectures of s it
// can run.
func program(s *specs.LinuxSeccomp, native *archInfo, opts Options, warn func(string)) ([]bpf.RawInstruction, uint, error) {
	if s.ListenerPath != "" {
		return nil, 0, fmt.Errorf("seccomp listenerPath (SCMP_ACT_NOTIFY agents) is not supported by ctlab")
	}
	def, err := seccompRet(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, 0, err
	}
	var flags uint
	for _, f := range s.Flags {
		v, ok := seccompFlags[f]
		if !ok {
			return nil, 0, fmt.Errorf("seccomp flag %q is not supported by ctlab", f)
		}
		flags |= v
	}
	arches, err := filterArches(s.Architectures, native)
	if err != nil {
		return nil, 0, err
	}
	var sections []*archRules
	for _, a := range arches {
		ar, err := collectRules(s, a, def)
		if err != nil {
			return nil, 0, err
		}
		sections = append(sections, ar)
	}
	for _, n := range sections[0].missing { // the native section: a name it knows is known
		if !knownName(n) {
			warn(fmt.Sprintf("ignoring unknown syscall %q in linux.seccomp (as runc does)", n))
		}
	}
	// runc's stub: only when the default refuses and is not already ENOSYS.
	stub := def != retAllow && def != retLog && def != retErrno|errnoENOSYS
	bad := uint32(retKillThread)
	if opts.UnlistedArchErrno != 0 {
		bad = retErrno | uint32(opts.UnlistedArchErrno)&0xffff
	}
	return assembleSections(sections, def, bad, stub), flags, nil
}

// filterArches are the sections: native first, then the listed ones the
// kernel can run on this machine.
func filterArches(list []specs.Arch, native *archInfo) ([]*archInfo, error) {
	out := []*archInfo{native}
	compat := compatArches[native.Name]
	for _, a := range list {
		info, ok := seccompArches[a]
		if !ok {
			if !strings.HasPrefix(string(a), "SCMP_ARCH_") {
				return nil, fmt.Errorf("unknown seccomp architecture %q", a)
			}
			continue // a real architecture this machine never runs
		}
		for _, c := range compat {
			if c == info && info != native {
				out = append(out, info)
			}
		}
	}
	return out, nil
}

// otherArchNames are syscalls of architectures without a table here
// (ppc, s390, mips, riscv; ARM's private calls) that the usual profiles
// (podman's, containerd's, Docker's) name: not typos, so no warning.
var otherArchNames = map[string]bool{
	"swapcontext": true, "syscall": true, "timerfd": true, "sync_file_range2": true, "s390_pci_mmio_read": true,
	"s390_pci_mmio_write": true, "s390_runtime_instr": true, "s390_guarded_storage": true, "s390_sthyi": true,
	"riscv_flush_icache": true, "riscv_hwprobe": true, "spu_create": true, "spu_run": true, "subpage_prot": true,
	"switch_endian": true, "sys_debug_setcontext": true, "multiplexer": true, "rtas": true, "sysmips": true,
	"breakpoint": true, "cacheflush": true, "set_tls": true, "usr26": true, "usr32": true,
}

func knownName(n string) bool {
	if otherArchNames[n] {
		return true
	}
	for _, a := range []*archInfo{&archX86_64, &archI386, &archX32, &archAARCH64, &archARM} {
		if _, ok := a.nr(n); ok {
			return true
		}
	}
	return false
}

// collectRules resolves the profile's rules for one architecture.
func collectRules(s *specs.LinuxSeccomp, a *archInfo, def uint32) (*archRules, error) {
	n := 0
	for _, sc := range s.Syscalls {
		n += len(sc.Names)
	}
	ar := &archRules{info: a, rules: map[uint32][]seccompRule{}, uncond: make(map[uint32]uint32, n)}
	for _, sc := range s.Syscalls {
		ret, err := seccompRet(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, err
		}
		for _, a := range sc.Args {
			if a.Index > 5 {
				return nil, fmt.Errorf("seccomp: argument index %d of %v (at most 5)", a.Index, sc.Names)
			}
			if _, ok := jumpOps[a.Op]; !ok && a.Op != specs.OpMaskedEqual {
				return nil, fmt.Errorf("seccomp: unknown operator %q for %v", a.Op, sc.Names)
			}
		}
		for _, n := range sc.Names {
			num, ok := a.nr(n)
			if !ok {
				ar.missing = append(ar.missing, n)
				continue
			}
			nr := uint32(num | a.SeccompMask)
			ar.maxNr = max(ar.maxNr, nr)
			if ret == def {
				continue
			}
			if len(sc.Args) == 0 {
				if _, ok := ar.uncond[nr]; !ok {
					ar.uncond[nr] = ret
				}
				continue
			}
			ar.rules[nr] = append(ar.rules[nr], splitRule(ret, sc.Args)...)
		}
	}
	for nr := range ar.uncond {
		delete(ar.rules, nr)
	}
	return ar, nil
}

// splitRule is runc's reading of a rule's conditions: all of them when
// each names another argument, else each one alone.
func splitRule(ret uint32, args []specs.LinuxSeccompArg) []seccompRule {
	seen := map[uint]bool{}
	for _, a := range args {
		if seen[a.Index] {
			var out []seccompRule
			for _, a := range args {
				out = append(out, seccompRule{ret: ret, conds: []specs.LinuxSeccompArg{a}})
			}
			return out
		}
		seen[a.Index] = true
	}
	return []seccompRule{{ret: ret, conds: args}}
}

// Features is what the compiler understands, for the runtime's features
// document.
func Features() *features.Seccomp {
	yes := true
	f := &features.Seccomp{Enabled: &yes,
		Actions: []string{string(specs.ActAllow), string(specs.ActErrno), string(specs.ActKill), string(specs.ActKillProcess),
			string(specs.ActKillThread), string(specs.ActLog), string(specs.ActTrace), string(specs.ActTrap)}}
	for op := range jumpOps {
		f.Operators = append(f.Operators, string(op))
	}
	f.Operators = append(f.Operators, string(specs.OpMaskedEqual))
	for a := range seccompArches {
		f.Archs = append(f.Archs, string(a))
	}
	for fl := range seccompFlags {
		f.KnownFlags = append(f.KnownFlags, string(fl))
	}
	sort.Strings(f.Operators)
	sort.Strings(f.Archs)
	sort.Strings(f.KnownFlags)
	f.SupportedFlags = f.KnownFlags
	return f
}
