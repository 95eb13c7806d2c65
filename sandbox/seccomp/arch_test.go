package seccomp

import (
	"runtime"
	"sort"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
)

// TestSyscallTables: zsyscalls.go is elastic's tables (go generate after
// a go-seccomp-bpf update), sorted so that nr's binary search works, and
// nativeArch agrees with elastic's GetInfo.
func TestSyscallTables(t *testing.T) {
	for _, c := range []struct {
		got  *archInfo
		want *arch.Info
	}{{&archX86_64, arch.X86_64}, {&archI386, arch.I386}, {&archX32, arch.X32}, {&archAARCH64, arch.AARCH64}, {&archARM, arch.ARM}} {
		if c.got.Name != c.want.Name || c.got.ID != uint32(c.want.ID) || c.got.SeccompMask != c.want.SeccompMask {
			t.Errorf("%s: %+v, elastic has %s %#x %#x", c.want.Name, c.got, c.want.Name, uint32(c.want.ID), c.want.SeccompMask)
		}
		if !sort.SliceIsSorted(c.got.calls, func(i, j int) bool { return c.got.calls[i].name < c.got.calls[j].name }) {
			t.Errorf("%s: table not sorted by name", c.want.Name)
		}
		want := map[string]int{} // x32's duplicates: the higher number (mksyscalls.go)
		for nr, n := range c.want.SyscallNumbers {
			want[n] = max(want[n], nr)
		}
		if len(c.got.calls) != len(want) {
			t.Errorf("%s: %d syscalls, elastic has %d: run go generate ./sandbox/seccomp", c.want.Name, len(c.got.calls), len(want))
		}
		for n, nr := range want {
			if got, ok := c.got.nr(n); !ok || got != nr {
				t.Errorf("%s %s: %d %v, elastic has %d", c.want.Name, n, got, ok, nr)
			}
		}
	}
	if _, ok := archX86_64.nr("no_such_call"); ok {
		t.Error("an unknown name has a number")
	}
	want, err := arch.GetInfo("")
	if err != nil {
		t.Skipf("elastic has no table for %s: %v", runtime.GOARCH, err)
	}
	got, err := nativeArch()
	if err != nil || got.Name != want.Name {
		t.Errorf("nativeArch() = %v, %v; elastic: %s", got, err, want.Name)
	}
}
