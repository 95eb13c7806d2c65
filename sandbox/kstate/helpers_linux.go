package kstate

import (
	"fmt"

	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/network"
	"github.com/ctlab/ctlab/sandbox/overlay"
)

// Cgroup reads the live statistics and the teaching table (each limit file
// under its v1 and v2 name, with its path and current value) of the ctlab
// cgroup "ctlab/<name>".
func Cgroup(name string) (*cgroups.Stats, []cgroups.File, error) {
	c, err := cgroups.Open(name)
	if err != nil {
		return nil, nil, fmt.Errorf("kstate: open cgroup %s: %w", name, err)
	}
	st, err := c.Stats()
	if err != nil {
		return nil, c.Files(), fmt.Errorf("kstate: read cgroup %s: %w", name, err)
	}
	return st, c.Files(), nil
}

// Links lists the links and addresses of a network namespace (nsPath ""
// = ctlab's own), read over netlink from a socket opened inside it.
// source names the call for evidence.
func Links(nsPath string) (links []network.Link, source string, err error) {
	links, err = network.ReadLinks(nsPath)
	return links, netSource("RTM_GETLINK+RTM_GETADDR", nsPath), err
}

// Routes lists the main routing table of a network namespace.
func Routes(nsPath string) (routes []network.Route, source string, err error) {
	routes, err = network.ReadRoutes(nsPath)
	return routes, netSource("RTM_GETROUTE", nsPath), err
}

func netSource(call, nsPath string) string {
	if nsPath == "" {
		nsPath = "/proc/self/ns/net"
	}
	return fmt.Sprintf("netlink %s in %s", call, nsPath)
}

// Upper lists what the kernel wrote into an overlay's upperdir: copied-up
// and new files, whiteouts (deletions) and opaque directories.
func Upper(l overlay.Layout) (changes []overlay.Change, source string, err error) {
	changes, err = overlay.Diff(l)
	return changes, "upperdir " + l.Upper, err
}
