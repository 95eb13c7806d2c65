package seccomp

import (
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

// asm is a tiny classic-BPF assembler with forward labels: a conditional
// jump whose target is more than 255 instructions away (the jt/jf fields
// are 8 bits) becomes a short jump over two unconditional ones (32 bits).
type asm struct {
	code   []asmInsn
	labels []int // label -> index in code of its mark
	rets   map[uint32]label
}

type label int

const next label = -1 // the following instruction

type asmInsn struct {
	ins    bpf.Instruction // a plain instruction, or nil
	cond   bpf.JumpTest
	val    uint32
	jt, jf label
	mark   label // >= 0: this entry only places a label
	long   bool
}

func newAsm() *asm { return &asm{rets: map[uint32]label{}} }

func (a *asm) newLabel() label {
	a.labels = append(a.labels, -1)
	return label(len(a.labels) - 1)
}

func (a *asm) emit(in bpf.Instruction) { a.code = append(a.code, asmInsn{ins: in, mark: -1}) }

func (a *asm) place(l label) {
	a.labels[l] = len(a.code)
	a.code = append(a.code, asmInsn{mark: l})
}

func (a *asm) jump(cond bpf.JumpTest, val uint32, jt, jf label) {
	a.code = append(a.code, asmInsn{cond: cond, val: val, jt: jt, jf: jf, mark: -1})
}

func (a *asm) goTo(l label) { a.jump(bpf.JumpEqual, 0, l, l) }

// ret is a label that returns v (one shared return per value, at the end).
func (a *asm) ret(v uint32) label {
	if l, ok := a.rets[v]; ok {
		return l
	}
	l := a.newLabel()
	a.rets[v] = l
	return l
}

func (a *asm) size(in asmInsn) int {
	switch {
	case in.mark >= 0:
		return 0
	case in.long:
		return 3
	}
	return 1
}

// assemble lays the program out, widening jumps until every one fits.
func (a *asm) assemble() []bpf.Instruction {
	vals := make([]uint32, 0, len(a.rets))
	for v := range a.rets {
		vals = append(vals, v)
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, v := range vals {
		a.place(a.rets[v])
		a.emit(bpf.RetConstant{Val: v})
	}
	for {
		addr := a.layout()
		changed := false
		for i, in := range a.code {
			if in.ins != nil || in.mark >= 0 || in.long || in.jt == in.jf {
				continue
			}
			for _, t := range []label{in.jt, in.jf} {
				if t != next && addr[a.labels[t]]-addr[i]-1 > 255 {
					a.code[i].long, changed = true, true
				}
			}
		}
		if !changed {
			return a.emitAll(addr)
		}
	}
}

// layout returns each entry's address.
func (a *asm) layout() []int {
	addr := make([]int, len(a.code)+1)
	pc := 0
	for i, in := range a.code {
		addr[i] = pc
		pc += a.size(in)
	}
	addr[len(a.code)] = pc
	return addr
}

func (a *asm) emitAll(addr []int) []bpf.Instruction {
	var out []bpf.Instruction
	dist := func(from int, t label) uint32 {
		if t == next {
			return 0
		}
		return uint32(addr[a.labels[t]] - from - 1)
	}
	for _, in := range a.code {
		pc := len(out)
		switch {
		case in.mark >= 0:
		case in.ins != nil:
			out = append(out, in.ins)
		case in.long:
			out = append(out, bpf.JumpIf{Cond: in.cond, Val: in.val, SkipTrue: 0, SkipFalse: 1},
				bpf.Jump{Skip: dist(pc+1, in.jt)}, bpf.Jump{Skip: dist(pc+2, in.jf)})
		case in.jt == in.jf:
			out = append(out, bpf.Jump{Skip: dist(pc, in.jt)})
		default:
			out = append(out, bpf.JumpIf{Cond: in.cond, Val: in.val, SkipTrue: uint8(dist(pc, in.jt)), SkipFalse: uint8(dist(pc, in.jf))})
		}
	}
	return out
}

// assembleSections is the whole program: the architecture dispatch, then
// each section's syscall search and rules, then the shared returns. bad
// answers a syscall of an architecture without a section.
func assembleSections(sections []*archRules, def, bad uint32, stub bool) []bpf.Instruction {
	a := newAsm()
	unlisted := a.ret(bad)
	a.emit(bpf.LoadAbsolute{Off: offArch, Size: 4})
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
		a.jump(bpf.JumpEqual, uint32(id), entry[id], next)
	}
	a.goTo(unlisted)
	for _, id := range ids {
		a.place(entry[id])
		a.emit(bpf.LoadAbsolute{Off: offNr, Size: 4})
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
			a.jump(bpf.JumpGreaterOrEqual, x32Bit, x32l, next)
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
		a.jump(bpf.JumpGreaterThan, ar.maxNr, a.ret(retErrno|errnoENOSYS), next)
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
	sort.Slice(nrs, func(i, j int) bool { return nrs[i] < nrs[j] })
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
		a.jump(bpf.JumpGreaterOrEqual, nrs[mid], right, next)
		a.search(ar, nrs[:mid], miss)
		a.place(right)
		a.search(ar, nrs[mid:], miss)
		return
	}
	rets := map[uint32]label{}
	var order []uint32
	targets := make([]label, len(nrs))
	for i, nr := range nrs {
		if v, ok := ar.uncond[nr]; ok {
			if _, ok := rets[v]; !ok {
				rets[v] = a.newLabel()
				order = append(order, v)
			}
			targets[i] = rets[v]
		} else {
			targets[i] = a.newLabel()
		}
		a.jump(bpf.JumpEqual, nr, targets[i], next)
	}
	a.goTo(miss)
	for _, v := range order {
		a.place(rets[v])
		a.emit(bpf.RetConstant{Val: v})
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
			a.emit(bpf.RetConstant{Val: r.ret})
			a.place(no)
		}
		a.goTo(miss)
	}
}

// jumpOps: op -> the test on the high word that decides alone (strict),
// and the test on the low word when the high words are equal.
var jumpOps = map[specs.LinuxSeccompOperator]struct{ hi, lo bpf.JumpTest }{
	specs.OpEqualTo:      {bpf.JumpEqual, bpf.JumpEqual},
	specs.OpNotEqual:     {bpf.JumpEqual, bpf.JumpEqual}, // EQ negated
	specs.OpGreaterThan:  {bpf.JumpGreaterThan, bpf.JumpGreaterThan},
	specs.OpGreaterEqual: {bpf.JumpGreaterThan, bpf.JumpGreaterOrEqual},
	specs.OpLessThan:     {bpf.JumpGreaterThan, bpf.JumpGreaterOrEqual}, // GE negated
	specs.OpLessEqual:    {bpf.JumpGreaterThan, bpf.JumpGreaterThan},    // GT negated
}

// cond falls through when c holds and jumps to miss when it does not.
// wide compares all 64 bits, else the low word only.
func (a *asm) cond(c specs.LinuxSeccompArg, wide bool, miss label) {
	lo := bpf.LoadAbsolute{Off: offArgs + 8*uint32(c.Index), Size: 4}
	hi := bpf.LoadAbsolute{Off: lo.Off + 4, Size: 4}
	vlo, vhi := uint32(c.Value), uint32(c.Value>>32)
	if c.Op == specs.OpMaskedEqual {
		// (arg & value) == valueTwo
		dlo, dhi := uint32(c.ValueTwo), uint32(c.ValueTwo>>32)
		if wide {
			a.emit(hi)
			a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: vhi})
			a.jump(bpf.JumpEqual, dhi, next, miss)
		}
		a.emit(lo)
		a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: vlo})
		a.jump(bpf.JumpEqual, dlo, next, miss)
		return
	}
	ok := a.newLabel()
	yes, no := ok, miss // where a true test of the positive form goes
	if c.Op == specs.OpNotEqual || c.Op == specs.OpLessThan || c.Op == specs.OpLessEqual {
		yes, no = miss, ok
	}
	t := jumpOps[c.Op]
	if wide {
		a.emit(hi)
		if t.hi == bpf.JumpEqual {
			a.jump(bpf.JumpEqual, vhi, next, no)
		} else {
			a.jump(bpf.JumpGreaterThan, vhi, yes, next)
			a.jump(bpf.JumpEqual, vhi, next, no)
		}
	}
	a.emit(lo)
	a.jump(t.lo, vlo, yes, no)
	a.place(ok)
}
