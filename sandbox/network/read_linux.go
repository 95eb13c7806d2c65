package network

import (
	"fmt"
	"net"
	"sort"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Link is one network interface as the kernel reports it (`ip addr`).
type Link struct {
	Name, Type, State, MAC string // State is the operational state: "up", "down", "unknown" (lo), ...
	Index, MTU             int
	Addrs                  []string /* CIDR */
	Up                     bool     // administratively up (IFF_UP, `ip link set X up`)
}

// Route is one entry of the main routing table (`ip route`, `ip -6 route`).
type Route struct {
	Dst, Gw, Dev string // Dst "default" for the default route; Gw "" when directly connected
	Family       string // "inet" or "inet6"
}

// ReadLinks lists the links of a network namespace with their addresses.
// nsPath "" means this process's namespace, otherwise e.g.
// /proc/<pid>/ns/net; the netlink socket is opened inside that namespace.
func ReadLinks(nsPath string) ([]Link, error) {
	h, err := handleAt(nsPath)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	links, err := retryDump(h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("network: list links in %q: %w", nsPath, err)
	}
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("network: list addresses in %q: %w", nsPath, err)
	}
	byIndex := map[int][]string{}
	for _, a := range addrs {
		if a.IPNet != nil {
			byIndex[a.LinkIndex] = append(byIndex[a.LinkIndex], a.IPNet.String())
		}
	}
	out := make([]Link, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		out = append(out, Link{
			Name:  a.Name,
			Type:  l.Type(),
			State: a.OperState.String(),
			MAC:   a.HardwareAddr.String(),
			Index: a.Index,
			MTU:   a.MTU,
			Addrs: byIndex[a.Index],
			Up:    a.Flags&net.FlagUp != 0,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

// ReadRoutes lists the main routing table (IPv4 then IPv6) of a network
// namespace; nsPath as for ReadLinks.
func ReadRoutes(nsPath string) ([]Route, error) {
	h, err := handleAt(nsPath)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	links, err := retryDump(h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("network: list links in %q: %w", nsPath, err)
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	var out []Route
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := retryDump(func() ([]netlink.Route, error) { return h.RouteList(nil, fam) })
		if err != nil {
			return nil, fmt.Errorf("network: list routes in %q: %w", nsPath, err)
		}
		for _, r := range routes {
			if r.Table != 0 && r.Table != unix.RT_TABLE_MAIN {
				continue
			}
			rt := Route{Dst: "default", Dev: names[r.LinkIndex], Family: "inet"}
			if fam == netlink.FAMILY_V6 {
				rt.Family = "inet6"
			}
			if r.Dst != nil {
				if ones, _ := r.Dst.Mask.Size(); ones != 0 || !r.Dst.IP.IsUnspecified() {
					rt.Dst = r.Dst.String()
				}
			}
			if r.Gw != nil {
				rt.Gw = r.Gw.String()
			}
			out = append(out, rt)
		}
	}
	return out, nil
}
