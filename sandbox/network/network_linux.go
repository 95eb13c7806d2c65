// Package network connects a container's network namespace to the host with a veth pair and reads links and routes back from inside any namespace.
package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ContainerIfName is the name the container end of the pair gets inside
// the container's namespace.
const ContainerIfName = "eth0"

// Subnet is the block every attachment's /30 is taken from: 10.213.X.0/30
// with the host end at .1 and the container end at .2.
var Subnet = netip.MustParsePrefix("10.213.0.0/16")

// LockFile serialises address allocation between ctlab processes. Setup
// creates its directory (0700) if missing.
var LockFile = "/run/ctlab/network.lock"

// Attachment is what Setup created.
type Attachment struct {
	HostIf, ContainerIf     string // host end name ("ctl…h"), container end name ("eth0")
	HostAddr, ContainerAddr netip.Prefix
}

// LinkNames returns the host-end and peer names for a container:
// "ctl" + the first 8 hex digits of sha256(container) + "h" or "c".
// 12 bytes, well under the kernel's 15-byte IFNAMSIZ limit, and
// recognisable by Owned so cleanup never touches a link the lab did not make.
func LinkNames(container string) (host, peer string) {
	sum := sha256.Sum256([]byte(container))
	id := "ctl" + hex.EncodeToString(sum[:])[:8]
	return id + "h", id + "c"
}

// ownedName is compiled on first use, not in the package's init: every
// ctlab-oci call and container init links this package, few need it.
var ownedName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^ctl[0-9a-f]{8}[hc]$`) })

// IsOwned reports whether a link name follows the lab's naming pattern.
func IsOwned(name string) bool { return ownedName().MatchString(name) }

// handleAt opens a rtnetlink handle whose socket lives in the namespace at
// nsPath ("" = this process's namespace). NewHandleAt creates the socket
// from a locked thread switched into that namespace; afterwards every
// request on the handle acts there, whatever thread the caller runs on. The
// package-level netlink functions must not be used: they share one cached
// socket opened in whichever namespace the first call ran in.
func handleAt(nsPath string) (*netlink.Handle, error) {
	if nsPath == "" {
		nsPath = "/proc/self/ns/net"
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, fmt.Errorf("network: open netns %s: %w", nsPath, err)
	}
	defer ns.Close() // the socket keeps the namespace alive, not the fd
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("network: netlink handle in %s: %w", nsPath, err)
	}
	return h, nil
}

// retryDump repeats a netlink dump that the kernel flagged as interrupted
// (NLM_F_DUMP_INTR: the table changed while it was being read). netlink
// v1.3.1 returns partial data plus ErrDumpInterrupted and does not retry.
func retryDump[T any](f func() (T, error)) (T, error) {
	var v T
	var err error
	for i := 0; i < 10; i++ {
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
		time.Sleep(time.Duration(i+1) * time.Millisecond)
	}
	return v, err
}

var allocMu sync.Mutex

// lockAlloc takes the in-process and cross-process allocation locks.
func lockAlloc() (unlock func(), err error) {
	allocMu.Lock()
	if err := os.MkdirAll(filepath.Dir(LockFile), 0o700); err != nil {
		allocMu.Unlock()
		return nil, fmt.Errorf("network: %w", err)
	}
	f, err := os.OpenFile(LockFile, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		allocMu.Unlock()
		return nil, fmt.Errorf("network: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		allocMu.Unlock()
		return nil, fmt.Errorf("network: flock %s: %w", LockFile, err)
	}
	return func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
		allocMu.Unlock()
	}, nil
}

// freeSlot picks the first 10.213.X.0/30 (X = 0..255) that overlaps no IPv4
// address already configured on a host link.
func freeSlot(h *netlink.Handle) (netip.Prefix, error) {
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("network: list host addresses: %w", err)
	}
	var used []netip.Prefix
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		used = append(used, netip.PrefixFrom(ip, ones).Masked())
	}
	base := Subnet.Addr().As4()
	for x := 0; x < 256; x++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{base[0], base[1], byte(x), 0}), 30)
		free := true
		for _, u := range used {
			if u.Overlaps(p) {
				free = false
				break
			}
		}
		if free {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("network: no free /30 left in %s (every one overlaps a host address)", Subnet)
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// Setup connects the network namespace of pid to the host:
//
//	host netns:       ctl<id>h  10.213.X.1/30  up
//	container netns:  eth0      10.213.X.2/30  up,  lo up
//
// The veth pair is created with its peer already inside the container's
// namespace (IFLA_NET_NS_FD), so the host end never exists without its
// peer, then the peer is renamed eth0 from a handle opened in that
// namespace. No default route is added: the container can reach exactly
// the host end. On error everything created is removed again.
func Setup(ctx context.Context, container string, pid int) (*Attachment, error) {
	return setup(ctx, container, pid, "")
}

// setup is Setup with the "host" end in the network namespace at hostNs
// ("" = this process's).
func setup(ctx context.Context, container string, pid int, hostNs string) (*Attachment, error) {
	hostName, peerName := LinkNames(container)
	nsPath := fmt.Sprintf("/proc/%d/ns/net", pid)
	target, err := otherNs(nsPath, pid)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	host, err := handleAt(hostNs)
	if err != nil {
		return nil, err
	}
	defer host.Close()
	inside, err := handleAt(nsPath)
	if err != nil {
		return nil, err
	}
	defer inside.Close()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	if hostNs == "" {
		// A private namespace has no other addresses to avoid.
		unlock, err := lockAlloc()
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	slot, err := freeSlot(host)
	if err != nil {
		return nil, err
	}
	hostAddr := netip.PrefixFrom(slot.Addr().Next(), 30)
	ctrAddr := netip.PrefixFrom(hostAddr.Addr().Next(), 30)
	att := &Attachment{HostIf: hostName, ContainerIf: ContainerIfName, HostAddr: hostAddr, ContainerAddr: ctrAddr}

	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: hostName},
		PeerName:      peerName,
		PeerNamespace: netlink.NsFd(int(target)),
	}
	if err := host.LinkAdd(veth); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("network: veth %s already exists (left by a killed run? `ctlab cleanup` removes it): %w", hostName, err)
		}
		return nil, fmt.Errorf("network: ip link add %s type veth peer name %s netns %d: %w", hostName, peerName, pid, err)
	}
	step := func(what string, err error) error {
		if err != nil {
			return fmt.Errorf("network: %s: %w", what, err)
		}
		return ctx.Err()
	}
	err = configureInside(inside, peerName, nsPath, ctrAddr, step)
	if err == nil {
		err = configureHost(host, hostName, hostAddr, step)
	}
	if err != nil {
		if l, lerr := host.LinkByName(hostName); lerr == nil {
			_ = host.LinkDel(l) // removes the peer too
		}
		return nil, err
	}
	return att, nil
}

// otherNs opens the network namespace at nsPath and refuses the host's own.
func otherNs(nsPath string, pid int) (netns.NsHandle, error) {
	target, err := netns.GetFromPath(nsPath)
	if err != nil {
		return target, fmt.Errorf("network: open netns of pid %d: %w", pid, err)
	}
	self, err := netns.GetFromPath("/proc/self/ns/net")
	if err != nil {
		target.Close()
		return target, fmt.Errorf("network: open own netns: %w", err)
	}
	same, err := sameNs(self, target)
	self.Close()
	if err == nil && same {
		err = fmt.Errorf("network: pid %d shares the host network namespace; start it with a new net namespace", pid)
	}
	if err != nil {
		target.Close()
		return target, err
	}
	return target, nil
}

// configureInside renames the peer to eth0, gives it its address and sets
// it and lo up, from a handle in the container's namespace.
func configureInside(inside *netlink.Handle, peerName, nsPath string, ctrAddr netip.Prefix, step func(string, error) error) error {
	peer, err := inside.LinkByName(peerName)
	if err := step("find "+peerName+" in "+nsPath, err); err != nil {
		return err
	}
	if err := step("rename "+peerName+" to "+ContainerIfName, inside.LinkSetName(peer, ContainerIfName)); err != nil {
		return err
	}
	if err := step("add "+ctrAddr.String()+" on "+ContainerIfName,
		inside.AddrAdd(peer, &netlink.Addr{IPNet: ipnet(ctrAddr)})); err != nil {
		return err
	}
	if err := step("set "+ContainerIfName+" up", inside.LinkSetUp(peer)); err != nil {
		return err
	}
	lo, err := inside.LinkByName("lo")
	if err := step("find lo in "+nsPath, err); err != nil {
		return err
	}
	return step("set lo up", inside.LinkSetUp(lo))
}

// configureHost gives the host end its address and sets it up.
func configureHost(host *netlink.Handle, hostName string, hostAddr netip.Prefix, step func(string, error) error) error {
	hl, err := host.LinkByName(hostName)
	if err := step("find "+hostName, err); err != nil {
		return err
	}
	if err := step("add "+hostAddr.String()+" on "+hostName,
		host.AddrAdd(hl, &netlink.Addr{IPNet: ipnet(hostAddr)})); err != nil {
		return err
	}
	return step("set "+hostName+" up", host.LinkSetUp(hl))
}

func sameNs(a, b netns.NsHandle) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Fstat(int(a), &sa); err != nil {
		return false, fmt.Errorf("network: stat netns: %w", err)
	}
	if err := unix.Fstat(int(b), &sb); err != nil {
		return false, fmt.Errorf("network: stat netns: %w", err)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino, nil
}

// Teardown deletes the host end of the container's veth pair; the kernel
// removes the peer with it. Not an error if the link is already gone (the
// pair also disappears when the container's namespace dies).
func Teardown(container string) error {
	hostName, _ := LinkNames(container)
	return DeleteLink(hostName)
}

// DeleteLink deletes a host link created by the lab. It refuses names that
// do not match the lab's pattern (see IsOwned), and is not an error if the
// link does not exist.
func DeleteLink(name string) error {
	if !IsOwned(name) {
		return fmt.Errorf("network: refusing to delete %q: not a ctlab link (ctl<8 hex>h|c)", name)
	}
	h, err := handleAt("")
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return nil
		}
		return fmt.Errorf("network: find %s: %w", name, err)
	}
	if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("network: ip link del %s: %w", name, err)
	}
	return nil
}

// Owned lists links in the host namespace whose names follow the lab's
// pattern: what `ctlab cleanup` may remove.
func Owned() ([]string, error) {
	h, err := handleAt("")
	if err != nil {
		return nil, err
	}
	defer h.Close()
	links, err := retryDump(h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("network: list links: %w", err)
	}
	var out []string
	for _, l := range links {
		if IsOwned(l.Attrs().Name) {
			out = append(out, l.Attrs().Name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// SetupPrivate is Setup with the host end of the pair in a new network
// namespace of its own (the probe namespace) instead of the host's: the
// container reaches nothing of the host, not even a listener on the
// host's 0.0.0.0. The probe namespace has no listener, no route and no
// other link; it lives as long as the returned file (and the container's
// namespace) and needs no cleanup: nothing is left in the host's. Dial
// from it with DialIn.
func SetupPrivate(ctx context.Context, container string, pid int) (*Attachment, *os.File, error) {
	probe, err := newNetns()
	if err != nil {
		return nil, nil, err
	}
	att, err := setup(ctx, container, pid, fmt.Sprintf("/proc/self/fd/%d", probe.Fd()))
	if err != nil {
		probe.Close()
		return nil, nil, err
	}
	return att, probe, nil
}

// inNetns runs f on a locked thread switched into the network namespace
// ns, and switches back.
func inNetns(ns netns.NsHandle, f func()) error {
	return onNetnsThread(func() error { return netns.Set(ns) }, f)
}

// onNetnsThread runs f on a locked thread that enter moved into another
// network namespace, then moves the thread back. If it cannot move back,
// the thread stays locked and dies with its goroutine, so no other
// goroutine ever runs in that namespace.
func onNetnsThread(enter func() error, f func()) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("network: own netns: %w", err)
			return
		}
		defer orig.Close()
		err = enter()
		if err == nil {
			f()
		}
		if serr := netns.Set(orig); serr != nil {
			errc <- fmt.Errorf("network: back to own netns: %w", serr)
			return // locked: the thread exits with the goroutine
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// newNetns makes a new, empty network namespace and returns a file that
// holds it.
func newNetns() (*os.File, error) {
	var h netns.NsHandle = -1
	err := onNetnsThread(func() error {
		var err error
		h, err = netns.New() // unshares the thread into it
		return err
	}, func() {})
	if err != nil {
		if h.IsOpen() {
			h.Close()
		}
		return nil, fmt.Errorf("network: new probe namespace: %w", err)
	}
	return os.NewFile(uintptr(h), "probe netns"), nil
}

// DialIn connects to addr from the network namespace held by ns: a
// socket belongs to the namespace it was created in, whatever thread uses
// it later.
func DialIn(ctx context.Context, ns *os.File, network, addr string) (net.Conn, error) {
	var c net.Conn
	var derr error
	err := inNetns(netns.NsHandle(ns.Fd()), func() {
		var d net.Dialer
		c, derr = d.DialContext(ctx, network, addr)
	})
	if err != nil {
		if c != nil {
			c.Close()
		}
		return nil, err
	}
	return c, derr
}
