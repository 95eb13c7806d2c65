package seccomp

import (
	"fmt"
	"runtime"
	"sort"
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
	i := sort.Search(len(a.calls), func(i int) bool { return a.calls[i].name >= name })
	if i < len(a.calls) && a.calls[i].name == name {
		return int(a.calls[i].nr), true
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
