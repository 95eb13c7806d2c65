package seccomp

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// asm is a tiny classic-BPF assembler with forward labels: a conditional
// jump whose target is more than 255 instructions away (the jt/jf fields
// are 8 bits) becomes a short jump over two unconditional ones (32 bits).
// It writes raw instructions, not bpf.Instruction values (an allocation
// each behind the interface): a hardened container's init compiles its
// filter on every start.
type asm struct {
	code   []asmInsn
	labels []int32 // label -> index in code of its mark
	rets   map[uint32]label
}

type label int32

const next label = -1 // the following instruction

// The opcodes the compiler uses.
const (
	opLd  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	opAnd = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	opRet = unix.BPF_RET | unix.BPF_K
	opJa  = unix.BPF_JMP | unix.BPF_JA
	opJeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	opJgt = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	opJge = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
)

type asmKind uint8

const (
	kindPlain asmKind = iota // raw is the instruction
	kindJump                 // raw.Op is the test, raw.K its value; jt == jf: unconditional
	kindMark                 // places label jt
)

type asmInsn struct {
	raw    bpf.RawInstruction
	jt, jf label
	kind   asmKind
	long   bool
}

// newAsm sizes the code for about n entries.
func newAsm(n int) *asm {
	return &asm{code: make([]asmInsn, 0, n), rets: map[uint32]label{}}
}

func (a *asm) newLabel() label {
	a.labels = append(a.labels, -1)
	return label(len(a.labels) - 1)
}

func (a *asm) emit(op uint16, k uint32) {
	a.code = append(a.code, asmInsn{raw: bpf.RawInstruction{Op: op, K: k}})
}

func (a *asm) ld(off uint32) { a.emit(opLd, off) }

func (a *asm) retK(v uint32) { a.emit(opRet, v) }

func (a *asm) place(l label) {
	a.labels[l] = int32(len(a.code))
	a.code = append(a.code, asmInsn{kind: kindMark, jt: l})
}

func (a *asm) jump(op uint16, val uint32, jt, jf label) {
	a.code = append(a.code, asmInsn{raw: bpf.RawInstruction{Op: op, K: val}, jt: jt, jf: jf, kind: kindJump})
}

func (a *asm) goTo(l label) { a.jump(opJeq, 0, l, l) }

// ret is a label that returns v (one shared return per value, at the end).
func (a *asm) ret(v uint32) label {
	if l, ok := a.rets[v]; ok {
		return l
	}
	l := a.newLabel()
	a.rets[v] = l
	return l
}

func (a *asm) size(in *asmInsn) int {
	switch {
	case in.kind == kindMark:
		return 0
	case in.long:
		return 3
	}
	return 1
}

// assemble lays the program out, widening jumps until every one fits.
func (a *asm) assemble() []bpf.RawInstruction {
	vals := make([]uint32, 0, len(a.rets))
	for v := range a.rets {
		vals = append(vals, v)
	}
	slices.Sort(vals)
	for _, v := range vals {
		a.place(a.rets[v])
		a.retK(v)
	}
	addr := make([]int, len(a.code)+1)
	for {
		a.layout(addr)
		changed := false
		for i := range a.code {
			in := &a.code[i]
			if in.kind != kindJump || in.long || in.jt == in.jf {
				continue
			}
			for _, t := range [2]label{in.jt, in.jf} {
				if t != next && addr[a.labels[t]]-addr[i]-1 > 255 {
					in.long, changed = true, true
				}
			}
		}
		if !changed {
			return a.emitAll(addr)
		}
	}
}

// layout sets each entry's address.
func (a *asm) layout(addr []int) {
	pc := 0
	for i := range a.code {
		addr[i] = pc
		pc += a.size(&a.code[i])
	}
	addr[len(a.code)] = pc
}

func (a *asm) emitAll(addr []int) []bpf.RawInstruction {
	out := make([]bpf.RawInstruction, 0, addr[len(a.code)])
	dist := func(from int, t label) uint32 {
		if t == next {
			return 0
		}
		return uint32(addr[a.labels[t]] - from - 1)
	}
	for i := range a.code {
		in := &a.code[i]
		pc := len(out)
		switch {
		case in.kind == kindMark:
		case in.kind == kindPlain:
			out = append(out, in.raw)
		case in.long:
			out = append(out, bpf.RawInstruction{Op: in.raw.Op, Jt: 0, Jf: 1, K: in.raw.K},
				bpf.RawInstruction{Op: opJa, K: dist(pc+1, in.jt)}, bpf.RawInstruction{Op: opJa, K: dist(pc+2, in.jf)})
		case in.jt == in.jf:
			out = append(out, bpf.RawInstruction{Op: opJa, K: dist(pc, in.jt)})
		default:
			out = append(out, bpf.RawInstruction{Op: in.raw.Op, Jt: uint8(dist(pc, in.jt)), Jf: uint8(dist(pc, in.jf)), K: in.raw.K})
		}
	}
	return out
}

// assembleSections is the whole program: the architecture dispatch, then
// each section's syscall search and rules, then the shared returns. bad
// answers a syscall of an architecture without a section.
func assembleSections(sections []*archRules, def, bad uint32, stub bool) []bpf.RawInstruction {
	n := 16
	for _, s := range sections {
		n += 3 * (len(s.uncond) + len(s.rules))
	}
	a := newAsm(n)
	unlisted := a.ret(bad)
	a.ld(offArch)
	byID := map[uint32][]*archRules{}
	var ids []uint32
	for _, s := range sections {
		if byID[s.info.ID] == nil {
			ids = append(ids, s.info.ID)
		}
		byID[s.info.ID] = append(byID[s.info.ID], s)
	}
	entry := map[uint32]label{}
	for _, id := range ids {
		entry[id] = a.newLabel()
		a.jump(opJeq, uint32(id), entry[id], next)
	}
	a.goTo(unlisted)
	for _, id := range ids {
		a.place(entry[id])
		a.ld(offNr)
		secs := byID[id]
		if id == archX86_64.ID {
			// x86_64 and x32 share the audit arch: the number tells them apart.
			var x64, x32 *archRules
			for _, s := range secs {
				if s.info == &archX32 {
					x32 = s
				} else {
					x64 = s
				}
			}
			x32l := unlisted
			if x32 != nil {
				x32l = a.newLabel()
			}
			a.jump(opJge, x32Bit, x32l, next)
			a.section(x64, def, stub)
			if x32 != nil {
				a.place(x32l)
				a.section(x32, def, stub)
			}
			continue
		}
		a.section(secs[0], def, stub)
	}
	return a.assemble()
}

// section is one architecture's part, entered with A = the syscall number.
func (a *asm) section(ar *archRules, def uint32, stub bool) {
	if ar == nil {
		a.goTo(a.ret(def))
		return
	}
	if stub && ar.maxNr > 0 {
		a.jump(opJgt, ar.maxNr, a.ret(retErrno|errnoENOSYS), next)
	}
	var nrs []uint32
	for nr := range ar.uncond {
		nrs = append(nrs, nr)
	}
	for nr := range ar.rules {
		if _, ok := ar.uncond[nr]; !ok {
			nrs = append(nrs, nr)
		}
	}
	slices.Sort(nrs)
	a.search(ar, nrs, a.ret(def))
}

func is64(i *archInfo) bool { return i == &archX86_64 || i == &archAARCH64 }

// search is a binary search over the sorted numbers (A = the number).
// Each leaf keeps its returns and rules right behind it, so its jumps stay
// short (8 bits): a podman profile for three architectures fits the
// kernel's 4096 instructions with room to spare.
func (a *asm) search(ar *archRules, nrs []uint32, miss label) {
	if len(nrs) > 8 {
		mid := len(nrs) / 2
		right := a.newLabel()
		a.jump(opJge, nrs[mid], right, next)
		a.search(ar, nrs[:mid], miss)
		a.place(right)
		a.search(ar, nrs[mid:], miss)
		return
	}
	// The leaf's returns, in order of first use (at most 8: a slice).
	var rets [8]struct {
		v uint32
		l label
	}
	nrets := 0
	var targets [8]label
	for i, nr := range nrs {
		v, ok := ar.uncond[nr]
		if !ok {
			targets[i] = a.newLabel()
			a.jump(opJeq, nr, targets[i], next)
			continue
		}
		j := 0
		for j < nrets && rets[j].v != v {
			j++
		}
		if j == nrets {
			rets[j].v, rets[j].l = v, a.newLabel()
			nrets++
		}
		targets[i] = rets[j].l
		a.jump(opJeq, nr, targets[i], next)
	}
	a.goTo(miss)
	for _, r := range rets[:nrets] {
		a.place(r.l)
		a.retK(r.v)
	}
	for i, nr := range nrs {
		if _, ok := ar.uncond[nr]; ok {
			continue
		}
		a.place(targets[i])
		for _, r := range ar.rules[nr] {
			no := a.newLabel()
			for _, c := range r.conds {
				a.cond(c, is64(ar.info), no)
			}
			a.retK(r.ret)
			a.place(no)
		}
		a.goTo(miss)
	}
}

// jumpOps: op -> the test on the high word that decides alone (strict),
// and the test on the low word when the high words are equal.
var jumpOps = map[specs.LinuxSeccompOperator]struct{ hi, lo uint16 }{
	specs.OpEqualTo:      {opJeq, opJeq},
	specs.OpNotEqual:     {opJeq, opJeq}, // EQ negated
	specs.OpGreaterThan:  {opJgt, opJgt},
	specs.OpGreaterEqual: {opJgt, opJge},
	specs.OpLessThan:     {opJgt, opJge}, // GE negated
	specs.OpLessEqual:    {opJgt, opJgt}, // GT negated
}

// cond falls through when c holds and jumps to miss when it does not.
// wide compares all 64 bits, else the low word only.
func (a *asm) cond(c specs.LinuxSeccompArg, wide bool, miss label) {
	lo := offArgs + 8*uint32(c.Index)
	hi := lo + 4
	vlo, vhi := uint32(c.Value), uint32(c.Value>>32)
	if c.Op == specs.OpMaskedEqual {
		// (arg & value) == valueTwo
		dlo, dhi := uint32(c.ValueTwo), uint32(c.ValueTwo>>32)
		if wide {
			a.ld(hi)
			a.emit(opAnd, vhi)
			a.jump(opJeq, dhi, next, miss)
		}
		a.ld(lo)
		a.emit(opAnd, vlo)
		a.jump(opJeq, dlo, next, miss)
		return
	}
	ok := a.newLabel()
	yes, no := ok, miss // where a true test of the positive form goes
	if c.Op == specs.OpNotEqual || c.Op == specs.OpLessThan || c.Op == specs.OpLessEqual {
		yes, no = miss, ok
	}
	t := jumpOps[c.Op]
	if wide {
		a.ld(hi)
		if t.hi == opJeq {
			a.jump(opJeq, vhi, next, no)
		} else {
			a.jump(opJgt, vhi, yes, next)
			a.jump(opJeq, vhi, next, no)
		}
	}
	a.ld(lo)
	a.jump(t.lo, vlo, yes, no)
	a.place(ok)
}
