package network

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	childEnv   = "CTLAB_NETWORK_TEST_CHILD"
	listenPort = 7777
)

// TestMain doubles as the process that lives in the test's own network
// namespace: the test re-executes its binary with CLONE_NEWNET and this
// environment variable set.
func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "listen":
		// Bind before eth0 exists; the wildcard address covers it later.
		ln, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", listenPort))
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		go func() { io.Copy(io.Discard, os.Stdin); os.Exit(0) }() // parent gone: exit
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(1)
			}
			fmt.Fprintf(c, "hello %s\n", c.RemoteAddr())
			c.Close()
		}
	case "sleep":
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("creating veth pairs and network namespaces needs root: euid is %d", os.Geteuid())
	}
}

// startInNewNetns runs this test binary in mode inside a fresh network
// namespace and waits until it says ready. The namespace dies with it.
func startInNewNetns(t testing.TB, mode string) int {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child in new netns: %v", err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("child: %q, %v", line, err)
	}
	return cmd.Process.Pid
}

func linkMap(t testing.TB, ns string) map[string]Link {
	t.Helper()
	ls, err := ReadLinks(ns)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]Link{}
	for _, l := range ls {
		m[l.Name] = l
	}
	return m
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func TestLinkNames(t *testing.T) {
	h, c := LinkNames("web")
	if len(h) != 12 || !IsOwned(h) || !IsOwned(c) || h[:11] != c[:11] || h[11] != 'h' || c[11] != 'c' {
		t.Fatalf("LinkNames(web) = %q, %q", h, c)
	}
	if h2, _ := LinkNames("web2"); h2 == h {
		t.Fatal("different containers got the same link name")
	}
	if IsOwned("eth0") || IsOwned("ctl0123456h") || IsOwned("ctl0123456789h") {
		t.Fatal("IsOwned accepts a foreign name")
	}
	if err := DeleteLink("lo"); err == nil {
		t.Fatal("DeleteLink(lo) was not refused")
	}
}

func TestSetupConnectTeardown(t *testing.T) {
	needRoot(t)
	before := linkMap(t, "")
	pid := startInNewNetns(t, "listen")
	nsPath := fmt.Sprintf("/proc/%d/ns/net", pid)
	name := fmt.Sprintf("nettest-%d", os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	att, err := Setup(ctx, name, pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Teardown(name) })
	hostName, _ := LinkNames(name)
	if att.HostIf != hostName || att.ContainerIf != "eth0" {
		t.Fatalf("attachment %+v", att)
	}
	if !Subnet.Contains(att.HostAddr.Addr()) || att.HostAddr.Bits() != 30 ||
		att.ContainerAddr.Addr() != att.HostAddr.Addr().Next() || att.HostAddr.Addr().As4()[3] != 1 {
		t.Fatalf("addresses %v / %v", att.HostAddr, att.ContainerAddr)
	}

	// Read back from inside the container's namespace.
	inside := linkMap(t, nsPath)
	if len(inside) != 2 {
		t.Fatalf("links inside = %v, want lo and eth0 only", inside)
	}
	eth0, lo := inside["eth0"], inside["lo"]
	if eth0.Type != "veth" || !eth0.Up || !contains(eth0.Addrs, att.ContainerAddr.String()) {
		t.Fatalf("eth0 inside = %+v, want veth up with %s", eth0, att.ContainerAddr)
	}
	if !lo.Up || !contains(lo.Addrs, "127.0.0.1/8") {
		t.Fatalf("lo inside = %+v", lo)
	}
	routes, err := ReadRoutes(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	connected := false
	for _, r := range routes {
		if r.Dst == "default" {
			t.Fatalf("default route inside: %+v", routes)
		}
		if r.Family == "inet" && r.Dst == att.HostAddr.Masked().String() && r.Dev == "eth0" {
			connected = true
		}
	}
	if !connected {
		t.Fatalf("no connected route %s dev eth0 inside: %+v", att.HostAddr.Masked(), routes)
	}

	// The host end, read from the host namespace.
	hl, ok := linkMap(t, "")[hostName]
	if !ok || !hl.Up || !contains(hl.Addrs, att.HostAddr.String()) {
		t.Fatalf("host end %s = %+v (present %v)", hostName, hl, ok)
	}
	owned, err := Owned()
	if err != nil || !contains(owned, hostName) {
		t.Fatalf("Owned() = %v, %v; want %s", owned, err, hostName)
	}

	// TCP from the host to the listener inside the namespace.
	c, err := net.DialTimeout("tcp4", netip.AddrPortFrom(att.ContainerAddr.Addr(), listenPort).String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial container: %v", err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	msg, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(msg, "hello "+att.HostAddr.Addr().String()+":") {
		t.Fatalf("listener said %q; want a connection from %s", msg, att.HostAddr.Addr())
	}

	// A second Setup for the same container must not clobber the first.
	if _, err := Setup(ctx, name, pid); err == nil {
		t.Fatal("second Setup with the same name succeeded")
	}

	if err := Teardown(name); err != nil {
		t.Fatal(err)
	}
	if _, ok := linkMap(t, "")[hostName]; ok {
		t.Fatalf("%s still exists after Teardown", hostName)
	}
	if in := linkMap(t, nsPath); len(in) != 1 || in["lo"].Name != "lo" {
		t.Fatalf("links inside after Teardown = %v, want lo only", in)
	}
	if err := Teardown(name); err != nil {
		t.Fatalf("second Teardown: %v", err)
	}
	after := linkMap(t, "")
	for n, l := range before {
		if a, ok := after[n]; !ok || a.Index != l.Index {
			t.Errorf("pre-existing link %s (index %d) changed: %+v present=%v", n, l.Index, a, ok)
		}
	}
}

// Two attachments at once must get different /30s: the second sees the
// first one's address on a host link and skips it.
func TestSetupTwoNoCollision(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	var atts []*Attachment
	for i := 0; i < 2; i++ {
		pid := startInNewNetns(t, "sleep")
		name := fmt.Sprintf("nettest2-%d-%d", os.Getpid(), i)
		att, err := Setup(ctx, name, pid)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { Teardown(name) })
		atts = append(atts, att)
	}
	if atts[0].HostAddr.Masked().Overlaps(atts[1].HostAddr.Masked()) {
		t.Fatalf("subnets collide: %v and %v", atts[0].HostAddr, atts[1].HostAddr)
	}
}

func TestSetupRefusesHostNamespace(t *testing.T) {
	needRoot(t)
	if _, err := Setup(context.Background(), "selftest", os.Getpid()); err == nil {
		Teardown("selftest")
		t.Fatal("Setup into our own (host) namespace succeeded")
	}
}

func BenchmarkVethSetupTeardown(b *testing.B) {
	needRoot(b)
	pid := startInNewNetns(b, "sleep")
	name := fmt.Sprintf("netbench-%d", os.Getpid())
	ctx := context.Background()
	b.Cleanup(func() { Teardown(name) })
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Setup(ctx, name, pid); err != nil {
			b.Fatal(err)
		}
		if err := Teardown(name); err != nil {
			b.Fatal(err)
		}
	}
}
