package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ctlab/ctlab/sandbox/overlay"
	"github.com/ctlab/ctlab/sandbox/rootfs"
	"golang.org/x/sys/unix"
)

// Attacks on the host from an image (issue 12). Each performs the attack
// and asserts that the host is untouched.

var hardened = Hardening{DropCaps: true, NoNewPrivs: true, MaskPaths: true, Seccomp: true}

// hostileEnv names every variable the C stage once read from the
// environment, pointing at a host canary: with configuration in the
// environment, an image's ENV made host root write "0" to the canary before
// any setns.
func hostileEnv(canary string) []string {
	return []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"_CTLAB_INIT=pid", "_CTLAB_CG_JOIN=" + canary,
		"_CTLAB_NSEXEC=mnt:0", "_CTLAB_CGROUP_PROCS=" + canary, "_CTLAB_CWD=/proc/self/fd/3",
	}
}

func canaryFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "canary")
	if err := os.WriteFile(p, []byte("host canary\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func checkCanary(t *testing.T, p string) {
	t.Helper()
	if b, err := os.ReadFile(p); err != nil || string(b) != "host canary\n" {
		t.Errorf("host canary %s changed: %q %v", p, b, err)
	}
}

// An image's ENV (start) and an exec's environment (exec) cannot configure
// the C stage: the canary stays, and the commands run normally.
func TestAttackEnvConfig(t *testing.T) {
	for _, h := range []Hardening{{}, hardened} {
		canary := canaryFile(t)
		c, _ := startT(t, Config{
			Namespaces: []Namespace{NSMount, NSUTS, NSIPC, NSPID, NSNet, NSCgroup},
			Harden:     h, Env: hostileEnv(canary),
			Args: []string{"sh", "-c", "echo started; sleep 60"},
		})
		got, code := execOut(t, c, "sh", "-c", "echo exec-ok; pwd")
		if code != 0 || got != "exec-ok\n/" {
			t.Errorf("exec with a hostile env: %q (exit %d)", got, code)
		}
		var buf bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		code, err := c.Exec(ctx, ExecConfig{Args: []string{"true"}, Env: hostileEnv(canary), Stdout: &buf, Stderr: &buf})
		cancel()
		if err != nil || code != 0 {
			t.Errorf("exec with an explicit hostile env: %d %v %q", code, err, buf.String())
		}
		checkCanary(t, canary)
	}
}

// ctlab exec into a hardened container gets the same hardening as its
// init: the capability drop, no_new_privs and the seccomp filter. The
// attack: unshare a user namespace from an exec'd shell.
func TestAttackExecHardened(t *testing.T) {
	c, _ := startT(t, Config{
		Namespaces: []Namespace{NSMount, NSUTS, NSIPC, NSPID, NSNet, NSCgroup},
		Harden:     hardened,
		Args:       []string{"sleep", "60"},
	})
	init := readFile(t, fmt.Sprintf("/proc/%d/status", c.Pid))
	st, _ := execOut(t, c, "cat", "/proc/self/status")
	for _, f := range []string{"CapEff:", "CapBnd:", "CapPrm:", "NoNewPrivs:", "Seccomp:"} {
		if a, b := grepLine(init, f), grepLine(st, f); a != b || a == "" {
			t.Errorf("exec'd %q, init %q", b, a)
		}
	}
	if l := grepLine(st, "Seccomp:"); !strings.HasSuffix(l, "2") {
		t.Errorf("exec'd process has no seccomp filter: %q", l)
	}
	out, _ := execOut(t, c, "sh", "-c", "unshare -U true; echo rc=$?")
	if !strings.Contains(out, "rc=1") {
		t.Errorf("unshare -U in a hardened exec: %q, want refused", out)
	}
	// The exec'd process is in a session of its own, with no host tty.
	if out, _ := execOut(t, c, "sh", "-c", "test -e /dev/tty && echo tty; cat /proc/self/stat"); strings.HasPrefix(out, "tty") {
		t.Errorf("hardened container has /dev/tty")
	}
}

// A WorkingDir of /proc/self/fd/N (runc's CVE-2024-21626) never gives the
// command a cwd outside the container's root, for start and exec, with and
// without the C stage (a pid namespace; on v2 it clone3s with the cgroup's
// directory fd).
func TestAttackWorkdirFd(t *testing.T) {
	requireRoot(t)
	for _, nss := range [][]Namespace{{NSMount, NSPID}, {NSMount, NSUTS}} {
		for n := 3; n <= 8; n++ {
			cwd := fmt.Sprintf("/proc/self/fd/%d", n)
			cfg := Config{Name: testName(t), Namespaces: nss, Cwd: cwd, Args: []string{"sh", "-c", "ls ../../.. >/dev/null; pwd; sleep 60"}, MountSelf: true}
			var out bytes.Buffer
			cfg.Stdout, cfg.Stderr = &out, &out
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			c, err := Start(ctx, cfg)
			cancel()
			if err == nil {
				cwdLink, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", c.Pid))
				t.Errorf("%v: WorkingDir %s accepted, cwd %q, output %q", nss, cwd, cwdLink, out.String())
				c.Remove(context.Background(), true)
				continue
			}
			if !strings.Contains(err.Error(), "chdir") {
				t.Errorf("%v: WorkingDir %s: %v, want a refused chdir", nss, cwd, err)
			}
		}
	}
	c, _ := startT(t, Config{Namespaces: []Namespace{NSMount, NSPID}, Args: []string{"sleep", "60"}})
	for n := 3; n <= 8; n++ {
		var buf bytes.Buffer
		code, err := c.Exec(context.Background(), ExecConfig{Args: []string{"pwd"}, Cwd: fmt.Sprintf("/proc/self/fd/%d", n), Stdout: &buf, Stderr: &buf})
		if err != nil || code == 0 {
			t.Errorf("exec with cwd /proc/self/fd/%d: exit %d %v %q, want refused", n, code, err, buf.String())
		}
	}
	// An ordinary WorkingDir, and one through a symlink that climbs out,
	// which resolves inside the root.
	out, _ := execOut(t, c, "sh", "-c", "mkdir -p /w && ln -sfn ../../../../tmp /w/up")
	var buf bytes.Buffer
	if code, err := c.Exec(context.Background(), ExecConfig{Args: []string{"pwd", "-P"}, Cwd: "/w/up", Stdout: &buf, Stderr: &buf}); err != nil || code != 0 || strings.TrimSpace(buf.String()) != "/tmp" {
		t.Errorf("exec with cwd /w/up: %d %v %q (%s), want /tmp", code, err, buf.String(), out)
	}
}

// `kill -TERM 0` from a container's command or an exec'd one reaches only
// the container: ctlab (this test process) and its process group stay.
func TestAttackKillZero(t *testing.T) {
	requireRoot(t)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM)
	defer signal.Stop(sigs)
	for _, nss := range [][]Namespace{{NSMount, NSPID}, {NSMount}} {
		c, _ := startT(t, Config{Namespaces: nss, Args: []string{"sh", "-c", "kill -TERM 0; true"}})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c.Wait(ctx)
		cancel()
		c2, _ := startT(t, Config{Namespaces: nss, Harden: hardened, Args: []string{"sleep", "60"}})
		execOut(t, c2, "sh", "-c", "kill -TERM 0; sleep 1")
	}
	select {
	case s := <-sigs:
		t.Errorf("ctlab's process group got %v from a container", s)
	case <-time.After(200 * time.Millisecond):
	}
	if pg, _ := syscall.Getpgid(0); pg != syscall.Getpgrp() {
		t.Errorf("process group changed")
	}
}

// imageLayer makes a layer directory with files owned by host root and by
// uid 33, and the given /etc/passwd and /etc/group, and returns it with
// the default rootfs (owned by host root, like unpacked image layers)
// below it.
func imageLayer(t *testing.T, passwd, group string) []string {
	t.Helper()
	base, err := rootfs.Ensure(context.Background(), "default", filepath.Join(DataDir, "rootfs"), rootfs.Owner{})
	if err != nil {
		t.Fatal(err)
	}
	l := t.TempDir()
	os.Chmod(l, 0o755)
	for name, owner := range map[string]int{"owned0": 0, "owned33": 33} {
		p := filepath.Join(l, name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chown(p, owner, owner)
	}
	os.MkdirAll(filepath.Join(l, "etc"), 0o755)
	os.WriteFile(filepath.Join(l, "etc/passwd"), []byte(passwd), 0o644)
	if group != "" {
		os.WriteFile(filepath.Join(l, "etc/group"), []byte(group), 0o644)
	}
	return []string{l, base}
}

// An image runs in a user namespace: its root is an unprivileged host
// uid, the layer files show their owners inside (idmapped lower layers),
// and USER is honoured, for the command and for execs.
func TestAttackImageUserns(t *testing.T) {
	layers := imageLayer(t, "root:x:0:0::/:/bin/sh\nweb:x:1000:1000::/:/bin/sh\n", "root:x:0:\nweb:x:1000:\nextra:x:2000:web\n")
	c, _ := startT(t, Config{
		Namespaces: []Namespace{NSUser, NSMount, NSUTS, NSIPC, NSPID, NSNet, NSCgroup},
		Layers:     layers, Harden: hardened,
		Args: []string{"sleep", "60"},
	})
	if m, _ := execOut(t, c, "cat", "/proc/self/uid_map"); strings.Join(strings.Fields(m), " ") != fmt.Sprintf("0 %d %d", DefaultUIDBase, IDRange) {
		t.Errorf("uid_map inside: %q, want 0 %d %d (never 0 0 4294967295)", m, DefaultUIDBase, IDRange)
	}
	if out, _ := execOut(t, c, "stat", "-c", "%u:%g", "/owned0", "/owned33", "/bin/sh"); out != "0:0\n33:33\n0:0" {
		t.Errorf("owners inside: %q, want 0:0 33:33 0:0", out)
	}
	if out, code := execOut(t, c, "sh", "-c", "cat /owned0 && echo new > /new && id -u"); code != 0 || !strings.HasSuffix(out, "0") {
		t.Errorf("root inside cannot use its own files: %q %d", out, code)
	}
	if st, err := os.Stat(filepath.Join(c.Layout.Upper, "new")); err != nil || st.Sys().(*syscall.Stat_t).Uid != DefaultUIDBase {
		t.Errorf("a file the container's root made is not owned by host uid %d: %v %v", DefaultUIDBase, st, err)
	}

	cu, _ := startT(t, Config{
		Namespaces: []Namespace{NSUser, NSMount, NSUTS, NSIPC, NSPID, NSNet, NSCgroup},
		Layers:     layers, Harden: hardened, User: "web",
		Args: []string{"sleep", "60"},
	})
	st := readFile(t, fmt.Sprintf("/proc/%d/status", cu.Pid))
	if l := strings.Fields(grepLine(st, "Uid:")); len(l) < 2 || l[1] != strconv.Itoa(DefaultUIDBase+1000) {
		t.Errorf("USER web: host Uid line %v, want %d", l, DefaultUIDBase+1000)
	}
	if out, _ := execOut(t, cu, "id"); !strings.Contains(out, "uid=1000") || !strings.Contains(out, "2000") {
		t.Errorf("exec as USER web: %q, want uid 1000 in group 2000", out)
	}
	if out, code := execOut(t, cu, "cat", "/owned0"); code == 0 {
		t.Errorf("USER web reads root's 0600 file: %q", out)
	}
}

// The image's /etc/passwd is read bounded, inside the root, and only when
// it is a regular file: a FIFO (which would block), a symlink to the
// host's /etc/passwd, or a giant file do not hang or leak.
func TestAttackImagePasswd(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name string
		make func(etc string)
	}{
		{"fifo", func(etc string) { syscall.Mkfifo(filepath.Join(etc, "passwd"), 0o644) }},
		{"host symlink", func(etc string) { os.Symlink("/proc/1/root/etc/passwd", filepath.Join(etc, "passwd")) }},
		{"giant", func(etc string) {
			f, _ := os.Create(filepath.Join(etc, "passwd"))
			f.Truncate(1 << 40)
			f.Close()
		}},
	} {
		layers := imageLayer(t, "", "")
		etc := filepath.Join(layers[0], "etc")
		os.Remove(filepath.Join(etc, "passwd"))
		tc.make(etc)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, err := Start(ctx, Config{Name: testName(t), Namespaces: []Namespace{NSUser, NSMount, NSPID}, Layers: layers, User: "root", Args: []string{"true"}})
		cancel()
		if err == nil {
			c.Remove(context.Background(), true)
			t.Errorf("%s /etc/passwd: USER root resolved", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), "/etc/passwd") && !strings.Contains(err.Error(), "USER") {
			t.Errorf("%s /etc/passwd: refused for another reason: %v", tc.name, err)
		}
		t.Logf("%s /etc/passwd: %v", tc.name, err)
	}
}

// dialMain (the test binary as /.ctlab/ctlab dial ADDR...) tries a TCP
// connection to each address and prints "ok ADDR" or "fail ADDR".
func dialMain(addrs []string) int {
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, 2*time.Second)
		if err != nil {
			fmt.Printf("fail %s: %v\n", a, err)
			continue
		}
		c.Close()
		fmt.Printf("ok %s\n", a)
	}
	return 0
}

// serveMain (/.ctlab/ctlab serve ADDR) answers every connection with "hi".
func serveMain(args []string) int {
	l, err := net.Listen("tcp", args[0])
	if err != nil {
		fmt.Println(err)
		return 1
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return 1
		}
		c.Write([]byte("hi"))
		c.Close()
	}
}

// A grading container (NetPrivate) reaches nothing of the host: not a
// listener on the host's 0.0.0.0 through the veth's peer address, nor the
// host's loopback. The control (the veth's host end in the host's
// namespace, as lessons have it) shows the attack works there. The host
// still reaches the container's server through DialContext.
func TestAttackGraderNetwork(t *testing.T) {
	requireRoot(t)
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	for _, private := range []bool{true, false} {
		c, out := startT(t, Config{
			Namespaces: []Namespace{NSUser, NSMount, NSUTS, NSIPC, NSPID, NSNet, NSCgroup},
			Net:        true, NetPrivate: private, Harden: hardened,
			Args: []string{"/.ctlab/ctlab", "serve", ":8080"},
		})
		before := accepted.Load()
		peer := c.Net.HostAddr.Addr().String()
		got, _ := execOut(t, c, "/.ctlab/ctlab", "dial", fmt.Sprintf("%s:%d", peer, port), fmt.Sprintf("127.0.0.1:%d", port))
		// The kernel completes a connection before the accept loop sees it:
		// give the loop a moment to count what the dial reported.
		for wait := time.Now().Add(2 * time.Second); strings.Contains(got, "ok ") && accepted.Load() == before && time.Now().Before(wait); {
			time.Sleep(10 * time.Millisecond)
		}
		reached := accepted.Load() - before
		if private && (reached != 0 || strings.Contains(got, "ok ")) {
			t.Errorf("private: the container reached a host listener (%d accepts): %s", reached, got)
		}
		if !private && reached == 0 {
			t.Errorf("control: the container did not reach the host listener through %s: %s", peer, got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var conn net.Conn
		for ctx.Err() == nil {
			if conn, err = c.DialContext(ctx, "tcp", c.Net.ContainerAddr.Addr().String()+":8080"); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		if conn == nil {
			t.Fatalf("private=%v: the host cannot reach the container's server: %v (%s)", private, err, out)
		}
		b := make([]byte, 2)
		if _, err := io.ReadFull(conn, b); err != nil || string(b) != "hi" {
			t.Errorf("private=%v: read from the container's server: %q %v", private, b, err)
		}
		conn.Close()
		// In the private case, nothing of the container's is in the host's
		// namespace.
		if private {
			if _, err := net.InterfaceByName(c.Net.HostIf); err == nil {
				t.Errorf("the veth's host end %s is in the host's namespace", c.Net.HostIf)
			}
		}
	}
}

// A container with UpperLimit writes until its upper layer is full: the
// write fails with ENOSPC inside, the data is on the container's tmpfs,
// never on the host's disk, and deletions and renames (whiteouts) still
// work. Remove unmounts the tmpfs.
func TestAttackUpperFill(t *testing.T) {
	const limit = 16 << 20
	c, _ := startT(t, Config{
		Namespaces: []Namespace{NSUser, NSMount, NSUTS, NSIPC, NSPID, NSNet, NSCgroup},
		Harden:     hardened, UpperLimit: limit,
		Args: []string{"sleep", "60"},
	})
	var fsst unix.Statfs_t
	if err := unix.Statfs(c.Layout.Upper, &fsst); err != nil || fsst.Type != unix.TMPFS_MAGIC {
		t.Fatalf("upper %s is not on a tmpfs: %x %v", c.Layout.Upper, fsst.Type, err)
	}
	out, code := execOut(t, c, "sh", "-c", "dd if=/dev/zero of=/fill bs=1M count=64 2>&1; echo rc=$?; rm -f /bin/true && echo rm-ok")
	if code != 0 || !strings.Contains(out, "No space left") || !strings.Contains(out, "rm-ok") {
		t.Errorf("fill: %q (exit %d), want ENOSPC and a working rm", out, code)
	}
	if st, err := os.Stat(filepath.Join(c.Layout.Upper, "fill")); err != nil || st.Size() > limit {
		t.Errorf("the filled file: %v %v, want at most %d bytes", st, err, limit)
	}
	rw := filepath.Join(c.Dir, "rw")
	if err := c.Remove(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if mounted, _ := overlay.IsMounted(rw); mounted {
		t.Errorf("%s still mounted after Remove", rw)
	}
}

// In a user namespace the container's root can reopen its own stdio
// (nginx logs to /dev/stderr): the pipes ctlab made are given to it, and
// nothing else of the host changes owner.
func TestUsernsReopenStdio(t *testing.T) {
	c, out := startT(t, Config{
		Namespaces: []Namespace{NSUser, NSMount, NSUTS, NSIPC, NSPID},
		Harden:     hardened,
		Args:       []string{"sh", "-c", "echo reopened > /dev/stderr"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.Wait(ctx)
	if !strings.Contains(out.String(), "reopened") {
		t.Errorf("reopening /dev/stderr in a user namespace: %q", out.String())
	}
}
