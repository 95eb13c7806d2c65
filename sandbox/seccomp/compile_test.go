package seccomp

import (
	"encoding/binary"
	"sort"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// filterVM compiles s for x86_64 and runs calls through x/net/bpf's
// interpreter, which loads words big-endian: the test's seccomp_data is
// written in that order word by word (the low word of an argument first,
// as on a little-endian machine).
type filterVM struct {
	t   *testing.T
	vm  *bpf.VM
	n   int
	raw []bpf.RawInstruction
}

func newFilterVM(t *testing.T, s *specs.LinuxSeccomp) *filterVM {
	t.Helper()
	return newFilterVMOpts(t, s, Options{})
}

func newFilterVMOpts(t *testing.T, s *specs.LinuxSeccomp, opts Options) *filterVM {
	t.Helper()
	raw, _, err := program(s, &archX86_64, opts, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("the program has an instruction x/net/bpf cannot decode: %v", raw)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("the interpreter refuses the program: %v", err)
	}
	return &filterVM{t: t, vm: vm, n: len(raw), raw: raw}
}

func (f *filterVM) run(a *archInfo, name string, args ...uint64) uint32 {
	f.t.Helper()
	nr, ok := a.nr(name)
	if !ok {
		f.t.Fatalf("no %s on %s", name, a.Name)
	}
	return f.runNr(a.ID, uint32(nr|a.SeccompMask), args...)
}

func (f *filterVM) runNr(auditArch, nr uint32, args ...uint64) uint32 {
	f.t.Helper()
	buf := make([]byte, 64)
	binary.BigEndian.PutUint32(buf[0:], nr)
	binary.BigEndian.PutUint32(buf[4:], auditArch)
	for i, v := range args {
		binary.BigEndian.PutUint32(buf[16+8*i:], uint32(v))
		binary.BigEndian.PutUint32(buf[20+8*i:], uint32(v>>32))
	}
	r, err := f.vm.Run(buf)
	if err != nil {
		f.t.Fatal(err)
	}
	return uint32(r)
}

func u(v uint) *uint { return &v }

func TestSeccompDenyMkdir(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat", "chown32"}, Action: specs.ActErrno}}}
	f := newFilterVM(t, s)
	for _, c := range []struct {
		a    *archInfo
		name string
		want uint32
	}{
		{&archX86_64, "mkdir", retErrno | errnoEPERM},
		{&archX86_64, "mkdirat", retErrno | errnoEPERM},
		{&archX86_64, "write", retAllow},
		{&archX86_64, "clone3", retAllow},   // allow default: no ENOSYS stub
		{&archI386, "mkdir", retKillThread}, // not in the list: libseccomp's bad-arch action
		{&archX32, "write", retKillThread},  // x32 not listed
	} {
		if got := f.run(c.a, c.name); got != c.want {
			t.Errorf("%s %s: %#x, want %#x", c.a.Name, c.name, got, c.want)
		}
	}
	if got := f.runNr(0xc00000b7, 1); got != retKillThread {
		t.Errorf("aarch64 call on an x86_64 filter: %#x", got)
	}
	s.Architectures = []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchS390X}
	s.Syscalls[0].ErrnoRet = u(13)
	f = newFilterVM(t, s)
	for _, a := range []*archInfo{&archX86_64, &archI386, &archX32} {
		if got := f.run(a, "mkdir"); got != retErrno|13 {
			t.Errorf("%s mkdir: %#x", a.Name, got)
		}
		if got := f.run(a, "getpid"); got != retAllow {
			t.Errorf("%s getpid: %#x", a.Name, got)
		}
	}
	if got := f.run(&archI386, "chown32"); got != retErrno|13 {
		t.Errorf("i386 chown32 (absent on x86_64): %#x", got)
	}
}

// TestUnlistedArchErrno: the sandbox's hardened filter answers a foreign
// architecture (i386, x32 numbers, anything else) with an errno instead of
// killing the thread; the listed architecture keeps its rules and runc's
// ENOSYS stub above the highest listed number.
func TestUnlistedArchErrno(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write", "getpid"}, Action: specs.ActAllow}}}
	f := newFilterVMOpts(t, s, Options{UnlistedArchErrno: errnoENOSYS})
	for _, c := range []struct {
		a    *archInfo
		name string
		want uint32
	}{
		{&archX86_64, "read", retAllow},
		{&archX86_64, "getpid", retAllow},
		{&archX86_64, "close", retErrno | errnoEPERM},   // below getpid (39): the default
		{&archX86_64, "keyctl", retErrno | errnoENOSYS}, // above every listed one: runc's stub
		{&archI386, "read", retErrno | errnoENOSYS},
		{&archX32, "read", retErrno | errnoENOSYS},
	} {
		if got := f.run(c.a, c.name); got != c.want {
			t.Errorf("%s %s: %#x, want %#x", c.a.Name, c.name, got, c.want)
		}
	}
	if got := f.runNr(0xc00000b7, 63); got != retErrno|errnoENOSYS {
		t.Errorf("aarch64 call on an x86_64 filter: %#x", got)
	}
}

// TestSeccompArgs: personality(0xffffffff) allowed, every other value
// refused, with the high word of the 64-bit argument compared too.
func TestSeccompArgs(t *testing.T) {
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: u(1),
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"write", "exit_group"}, Action: specs.ActAllow},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, Op: specs.OpEqualTo}}},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}},
			// Docker's clone rule: no namespace flag.
			{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x7E020000, ValueTwo: 0, Op: specs.OpMaskedEqual}}},
		}}
	f := newFilterVM(t, s)
	for _, c := range []struct {
		name string
		arg  uint64
		want uint32
	}{
		{"personality", 0xffffffff, retAllow},
		{"personality", 8, retAllow},
		{"personality", 0, retErrno | 1},
		{"personality", 0x1ffffffff, retErrno | 1},
		{"clone", 0x11 | 0x01000000 | 0x00200000, retAllow}, // SIGCHLD|CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID
		{"clone", 0x10000000 | 0x11, retErrno | 1},          // CLONE_NEWUSER
		{"clone", 0x20000 | 0x11, retErrno | 1},             // CLONE_NEWNS
		{"clone3", 0, retErrno | errnoENOSYS},               // newer than every named syscall: runc's stub
		{"mkdir", 0, retErrno | 1},
	} {
		if got := f.run(&archX86_64, c.name, c.arg); got != c.want {
			t.Errorf("%s(%#x): %#x, want %#x", c.name, c.arg, got, c.want)
		}
	}
}

// TestSeccompOperators checks every comparison against Go's on values
// around the operand in both 32-bit words, and AND versus OR of conditions.
func TestSeccompOperators(t *testing.T) {
	ops := map[specs.LinuxSeccompOperator]func(a, v uint64) bool{
		specs.OpEqualTo: func(a, v uint64) bool { return a == v }, specs.OpNotEqual: func(a, v uint64) bool { return a != v },
		specs.OpLessThan: func(a, v uint64) bool { return a < v }, specs.OpLessEqual: func(a, v uint64) bool { return a <= v },
		specs.OpGreaterThan: func(a, v uint64) bool { return a > v }, specs.OpGreaterEqual: func(a, v uint64) bool { return a >= v },
		specs.OpMaskedEqual: func(a, v uint64) bool { return a&v == 0x100000002 },
	}
	v := uint64(0x100000005)
	probes := []uint64{0, 1, 4, 5, 6, 0xffffffff, 0x100000000, 0x100000002, 0x100000004, v, 0x100000006, 0x200000005, 0x1ffffffff, ^uint64(0)}
	for op, want := range ops {
		s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 2, Value: v, ValueTwo: 0x100000002, Op: op}}}}}
		f := newFilterVM(t, s)
		for _, p := range probes {
			got := f.run(&archX86_64, "read", 0, 0, p) == retAllow
			if got != want(p, v) {
				t.Errorf("%s: read(.., .., %#x) allowed=%v, want %v", op, p, got, want(p, v))
			}
		}
	}
	// Distinct arguments: all must hold. The same argument twice: either.
	and := []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 1, Value: 2, Op: specs.OpEqualTo}}
	or := []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 0, Value: 2, Op: specs.OpEqualTo}}
	f := newFilterVM(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"read"}, Action: specs.ActAllow, Args: and}, {Names: []string{"write"}, Action: specs.ActAllow, Args: or}}})
	for _, c := range []struct {
		name string
		a, b uint64
		want bool
	}{{"read", 1, 2, true}, {"read", 1, 3, false}, {"read", 0, 2, false}, {"write", 1, 0, true}, {"write", 2, 0, true}, {"write", 3, 0, false}} {
		if got := f.run(&archX86_64, c.name, c.a, c.b) == retAllow; got != c.want {
			t.Errorf("%s(%d, %d) allowed=%v", c.name, c.a, c.b, got)
		}
	}
}

// TestSeccompLargeProfile: an allow-list of every x86_64 syscall for three
// architectures, every tenth one with a condition: some jumps exceed 8
// bits, and the whole stays under the kernel's 4096 instructions.
func TestSeccompLargeProfile(t *testing.T) {
	var names []string
	for _, c := range archX86_64.calls {
		if c.name != "mkdir" && c.name != "ptrace" {
			names = append(names, c.name)
		}
	}
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"ptrace"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 7, Op: specs.OpEqualTo}}}}}
	sort.Strings(names)
	for i, n := range names {
		sc := specs.LinuxSyscall{Names: []string{n}, Action: specs.ActAllow}
		if i%10 == 0 { // every tenth one only with its first argument other than 12345
			sc.Args = []specs.LinuxSeccompArg{{Index: 0, Value: 12345, Op: specs.OpNotEqual}}
		}
		s.Syscalls = append(s.Syscalls, sc)
	}
	f := newFilterVM(t, s)
	if f.n >= 4096 {
		t.Fatalf("%d instructions: more than the kernel loads", f.n)
	}
	long := 0
	for i, in := range f.raw[:len(f.raw)-2] {
		cond := in.Op&0x07 == unix.BPF_JMP && in.Op != opJa
		if cond && in.Jt == 0 && in.Jf == 1 && f.raw[i+1].Op == opJa && f.raw[i+2].Op == opJa {
			long++
		}
	}
	if long == 0 {
		t.Fatalf("no widened jump in %d instructions: the long form is not exercised", f.n)
	}
	for i, n := range names {
		if got := f.run(&archX86_64, n); got != retAllow {
			t.Fatalf("%s: %#x", n, got)
		}
		want := uint32(retAllow)
		if i%10 == 0 {
			want = retErrno | errnoEPERM
		}
		if got := f.run(&archX86_64, n, 12345); got != want {
			t.Fatalf("%s(12345): %#x, want %#x", n, got, want)
		}
	}
	if got := f.run(&archX86_64, "mkdir"); got != retErrno|errnoEPERM {
		t.Errorf("mkdir: %#x", got)
	}
	if f.run(&archX86_64, "ptrace", 7) != retAllow || f.run(&archX86_64, "ptrace", 8) != retErrno|errnoEPERM {
		t.Error("ptrace's condition")
	}
	if got := f.run(&archI386, "read"); got != retAllow {
		t.Errorf("i386 read: %#x", got)
	}
}

func TestSeccompRefusals(t *testing.T) {
	for _, s := range []*specs.LinuxSeccomp{
		{DefaultAction: specs.ActNotify},
		{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActNotify}}},
		{DefaultAction: specs.ActAllow, ListenerPath: "/run/agent.sock"},
		{DefaultAction: "SCMP_ACT_BOGUS"},
		{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"x86_64"}},
		{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_NEW_LISTENER"}},
		{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}},
		{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_XOR"}}}}},
	} {
		if _, _, err := program(s, &archX86_64, Options{}, func(string) {}); err == nil {
			t.Errorf("%+v compiled", s)
		}
	}
	// podman's profile: setns allowed in the big list, refused later.
	f := newFilterVM(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"setns", "read"}, Action: specs.ActAllow},
		{Names: []string{"setns"}, Action: specs.ActErrno, ErrnoRet: u(1)},
		{Names: []string{"read"}, Action: specs.ActKillProcess, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 3, Op: specs.OpEqualTo}}}}})
	if f.run(&archX86_64, "setns") != retAllow || f.run(&archX86_64, "read", 3) != retAllow {
		t.Error("the first unconditional rule does not decide alone")
	}
	var warned []string
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"mkdri", "chown32", "mkdir"}, Action: specs.ActErrno}}}
	if _, _, err := program(s, &archX86_64, Options{}, func(w string) { warned = append(warned, w) }); err != nil {
		t.Fatal(err)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], `"mkdri"`) {
		t.Errorf("warnings %q: want one, for the typo only", warned)
	}
}
