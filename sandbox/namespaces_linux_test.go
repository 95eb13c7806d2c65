package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctlab/ctlab/sandbox/network"
)

func sleeper(extra ...func(*Config)) Config {
	cfg := Config{Args: []string{"sleep", "60"}}
	for _, f := range extra {
		f(&cfg)
	}
	return cfg
}

// Every kind, created one at a time: the container's inode differs from the
// host's for that kind (and mnt, which a container always needs).
func TestEachNamespaceDiffers(t *testing.T) {
	for _, ns := range AllNamespaces {
		t.Run(string(ns), func(t *testing.T) {
			kinds := []Namespace{NSMount}
			if ns != NSMount {
				kinds = append(kinds, ns)
			}
			c, _ := startT(t, sleeper(func(c *Config) { c.Namespaces = kinds }))
			for _, k := range AllNamespaces {
				host, err := NSInode(0, k)
				if err != nil {
					t.Fatal(err)
				}
				got, err := NSInode(c.Pid, k)
				if err != nil {
					t.Fatal(err)
				}
				want := Has(kinds, k)
				if (host != got) != want {
					t.Errorf("%s: host inode %d, container %d; expected differ=%v", k, host, got, want)
				}
			}
		})
	}
}

func TestUTSNamespace(t *testing.T) {
	hostBefore, _ := os.Hostname()
	c, _ := startT(t, sleeper(func(c *Config) { c.Hostname = "box-uts" }))
	if out, _ := execOut(t, c, "hostname"); out != "box-uts" {
		t.Errorf("hostname inside = %q, want box-uts", out)
	}
	execOut(t, c, "hostname", "changed-inside")
	if out, _ := execOut(t, c, "hostname"); out != "changed-inside" {
		t.Errorf("hostname inside after change = %q", out)
	}
	if h, _ := os.Hostname(); h != hostBefore {
		t.Errorf("host hostname changed from %q to %q", hostBefore, h)
	}
}

func TestPIDNamespace(t *testing.T) {
	c, _ := startT(t, sleeper())
	if c.Pid == 1 {
		t.Fatalf("host sees the container init as pid 1")
	}
	// Inside, the init is pid 1: /proc/1/cmdline is our sleep.
	out, _ := execOut(t, c, "cat", "/proc/1/cmdline")
	if !strings.HasPrefix(out, "sleep") {
		t.Errorf("/proc/1/cmdline inside = %q, want sleep", out)
	}
	// NSpid in the host's status shows both numbers: host pid, then 1.
	st := readFile(t, fmt.Sprintf("/proc/%d/status", c.Pid))
	if !strings.Contains(st, fmt.Sprintf("NSpid:\t%d\t1\n", c.Pid)) {
		t.Errorf("NSpid line missing or wrong in status:\n%s", grepLine(st, "NSpid"))
	}
	// A foreground command run as the init sees itself as pid 1.
	c2, out2 := startT(t, Config{Args: []string{"sh", "-c", "echo pid=$$"}})
	c2.Wait(context.Background())
	if !strings.Contains(out2.String(), "pid=1") {
		t.Errorf("init's own pid = %q, want pid=1", out2.String())
	}
}

func grepLine(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func mountPoints(t testing.TB) map[string]bool {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			m[fields[4]] = true
		}
	}
	return m
}

func TestMountNamespace(t *testing.T) {
	before := mountPoints(t)
	func() {
		c, _ := startT(t, sleeper())
		out, code := execOut(t, c, "sh", "-c", "mkdir -p /mnt/inside && mount -t tmpfs tmpfs /mnt/inside && grep ' /mnt/inside ' /proc/self/mountinfo")
		if code != 0 || !strings.Contains(out, "tmpfs") {
			t.Fatalf("mount inside failed (%d): %s", code, out)
		}
		for mp := range mountPoints(t) {
			if strings.HasSuffix(mp, "/mnt/inside") {
				t.Errorf("mount made inside is visible on the host at %s", mp)
			}
		}
		c.Remove(context.Background(), true)
	}()
	after := mountPoints(t)
	for mp := range after {
		if !before[mp] {
			t.Errorf("host mountinfo gained %s over the container's life", mp)
		}
	}
	for mp := range before {
		if !after[mp] {
			t.Errorf("host mountinfo lost %s over the container's life", mp)
		}
	}
}

func TestNetNamespace(t *testing.T) {
	c, _ := startT(t, sleeper())
	links, err := network.ReadLinks(c.NSPath(NSNet))
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || links[0].Name != "lo" {
		t.Errorf("links without --net = %+v, want only lo", links)
	}

	const body = "hello from inside"
	c2, _ := startT(t, Config{Net: true, Args: []string{"/.ctlab/ctlab", "load", "serve", "8080", body, "--seconds", "60"}})
	links, err = network.ReadLinks(c2.NSPath(NSNet))
	if err != nil {
		t.Fatal(err)
	}
	var eth *network.Link
	for i := range links {
		if links[i].Name == "eth0" {
			eth = &links[i]
		}
	}
	if eth == nil || len(eth.Addrs) == 0 || eth.Addrs[0] != c2.Net.ContainerAddr.String() {
		t.Fatalf("eth0 in the container netns = %+v, want address %s", eth, c2.Net.ContainerAddr)
	}
	// Host -> container TCP, to the address inside the namespace we made.
	addr := fmt.Sprintf("%s:8080", c2.Net.ContainerAddr.Addr())
	var got string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if got, err = dialRead(addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got != body {
		t.Errorf("TCP %s: got %q, %v; want %q", addr, got, err, body)
	}
	host, _ := network.LinkNames(c2.Name)
	c2.Remove(context.Background(), true)
	hl, _ := network.ReadLinks("")
	for _, l := range hl {
		if l.Name == host {
			t.Errorf("host link %s survived removal", host)
		}
	}
}

func TestIPCNamespace(t *testing.T) {
	c, _ := startT(t, sleeper())
	const key = 0x7c7ab
	if out, code := execOut(t, c, "/.ctlab/ctlab", "load", "shm", strconv.Itoa(key)); code != 0 {
		t.Fatalf("create shm inside: %s", out)
	}
	inside, _ := execOut(t, c, "cat", "/proc/sysvipc/shm")
	if !strings.Contains(inside, strconv.Itoa(key)) {
		t.Errorf("shm key %d not visible inside:\n%s", key, inside)
	}
	if host := readFile(t, "/proc/sysvipc/shm"); strings.Contains(host, " "+strconv.Itoa(key)+" ") {
		t.Errorf("shm key %d made inside is visible on the host", key)
	}
}

func TestUserNamespace(t *testing.T) {
	c, _ := startT(t, sleeper())
	m := strings.Fields(readFile(t, fmt.Sprintf("/proc/%d/uid_map", c.Pid)))
	if len(m) != 3 || m[0] != "0" || m[1] != strconv.Itoa(DefaultUIDBase) {
		t.Fatalf("uid_map = %v, want 0 %d %d", m, DefaultUIDBase, IDRange)
	}
	if out, _ := execOut(t, c, "id", "-u"); out != "0" {
		t.Errorf("uid inside = %q, want 0", out)
	}
	st := readFile(t, fmt.Sprintf("/proc/%d/status", c.Pid))
	if l := grepLine(st, "Uid:"); !strings.Contains(l, strconv.Itoa(DefaultUIDBase)) {
		t.Errorf("host sees the container's root as %q, want uid %d", l, DefaultUIDBase)
	}
	// Root inside can write its own root filesystem.
	if out, code := execOut(t, c, "sh", "-c", "echo hi > /root/x && cat /root/x"); code != 0 || out != "hi" {
		t.Errorf("root inside cannot write its rootfs: %d %q", code, out)
	}
}

func TestCgroupNamespace(t *testing.T) {
	c, _ := startT(t, sleeper())
	out, _ := execOut(t, c, "cat", "/proc/self/cgroup")
	for _, l := range strings.Split(out, "\n") {
		if l == "" {
			continue
		}
		parts := strings.SplitN(l, ":", 3)
		if len(parts) == 3 && strings.Contains(parts[1], "memory") && parts[2] != "/" {
			t.Errorf("inside, the memory cgroup reads %q, want /", parts[2])
		}
	}
	host := readFile(t, fmt.Sprintf("/proc/%d/cgroup", c.Pid))
	if !strings.Contains(host, "/ctlab/"+c.Name) {
		t.Errorf("host view of the container's cgroup lacks /ctlab/%s:\n%s", c.Name, host)
	}
}

func TestTimeNamespace(t *testing.T) {
	const shift = 10 * 24 * time.Hour
	c, _ := startT(t, sleeper(func(c *Config) { c.Time = TimeOffsets{Monotonic: shift, Boottime: shift} }))
	offs := readFile(t, fmt.Sprintf("/proc/%d/timens_offsets", c.Pid))
	if !strings.Contains(offs, "monotonic") || !strings.Contains(offs, strconv.Itoa(int(shift.Seconds()))) {
		t.Errorf("timens_offsets = %q", offs)
	}
	inside, _ := execOut(t, c, "cat", "/proc/uptime")
	hostUp := uptime(t, readFile(t, "/proc/uptime"))
	in := uptime(t, inside)
	if in < hostUp+shift.Seconds()-60 {
		t.Errorf("uptime inside %.0f s, host %.0f s: expected the %v shift", in, hostUp, shift)
	}
	if h := uptime(t, readFile(t, "/proc/uptime")); h > hostUp+60 {
		t.Errorf("host uptime jumped to %.0f", h)
	}
}

func uptime(t testing.TB, s string) float64 {
	f, err := strconv.ParseFloat(strings.Fields(s)[0], 64)
	if err != nil {
		t.Fatalf("parse uptime %q: %v", s, err)
	}
	return f
}

func dialRead(addr string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(conn)
	return string(b), err
}
