package seccomp

import (
	"fmt"
	"runtime"
)

//go:generate go run mksyscalls.go

// archInfo is one architecture of the seccomp compiler: its audit arch,
// the x32 bit its numbers carry, and its syscall table sorted by name
// (zsyscalls.go, static data: no map is built when a process starts).
type archInfo struct {
	Name        string
	ID          uint32 // AUDIT_ARCH_*
	SeccompMask int
	calls       []syscallNr
}

type syscallNr struct {
	name string
	nr   int32
}

// nr is name's number on a (without the mask).
func (a *archInfo) nr(name string) (int, bool) {
	// A plain binary search: sort.Search's closure doubles the cost, and a
	// hardened container's init looks up some 400 names per start.
	lo, hi := 0, len(a.calls)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if a.calls[m].name < name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(a.calls) && a.calls[lo].name == name {
		return int(a.calls[lo].nr), true
	}
	return 0, false
}

// nativeArch is the architecture this binary runs as.
func nativeArch() (*archInfo, error) {
	switch runtime.GOARCH {
	case "amd64":
		return &archX86_64, nil
	case "386":
		return &archI386, nil
	case "arm64":
		return &archAARCH64, nil
	case "arm":
		return &archARM, nil
	}
	return nil, fmt.Errorf("no syscall table for GOARCH %s", runtime.GOARCH)
}
