package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func nsPath(pid int, ns Namespace) string { return fmt.Sprintf("/proc/%d/ns/%s", pid, ns) }

// A container joins another one's net, uts, ipc and pid namespaces by
// path (/proc/PID/ns/KIND, and a bind mount of one): the kernel shows the
// same inodes for both inits, the joined uts keeps the other container's
// hostname, and the joined pid namespace's pid 1 is the other init.
func TestJoinNamespaces(t *testing.T) {
	a, _ := startT(t, sleeper(func(c *Config) {
		c.Namespaces = []Namespace{NSMount, NSUTS, NSIPC, NSNet, NSPID}
		c.Hostname = "box-a"
	}))
	// A bind mount of a namespace file keeps it alive without a process
	// (what `ip netns add` and netavark make).
	bound := filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(bound, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(nsPath(a.Pid, NSNet), bound, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(bound, unix.MNT_DETACH)

	b, _ := startT(t, sleeper(func(c *Config) {
		c.Namespaces = []Namespace{NSMount}
		c.Join = map[Namespace]string{NSNet: bound, NSUTS: nsPath(a.Pid, NSUTS), NSIPC: nsPath(a.Pid, NSIPC), NSPID: nsPath(a.Pid, NSPID)}
	}))
	for _, k := range []Namespace{NSNet, NSUTS, NSIPC, NSPID} {
		ia, err := NSInode(a.Pid, k)
		if err != nil {
			t.Fatal(err)
		}
		ib, err := NSInode(b.Pid, k)
		if err != nil {
			t.Fatal(err)
		}
		if ia != ib {
			t.Errorf("%s: container a has inode %d, b (joined by path) %d", k, ia, ib)
		}
	}
	ma, _ := NSInode(a.Pid, NSMount)
	mb, _ := NSInode(b.Pid, NSMount)
	if ma == mb {
		t.Errorf("mnt: b was to get a new mount namespace, has a's (%d)", ma)
	}
	// The namespace files were closed: the init holds stdio only.
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", b.Pid)); err != nil || len(ents) != 3 {
		t.Errorf("b's init holds %d fds (%v), want 0-2 only", len(ents), err)
	}
	if out, _ := execOut(t, b, "hostname"); out != "box-a" {
		t.Errorf("hostname in b = %q, want a's box-a (a joined uts namespace is not renamed)", out)
	}
	if out, _ := execOut(t, b, "cat", "/proc/1/cmdline"); !strings.HasPrefix(out, "sleep") {
		t.Errorf("pid 1 seen from b = %q, want a's sleep", out)
	}
	if st := readFile(t, fmt.Sprintf("/proc/%d/status", b.Pid)); !strings.Contains(st, "NSpid:\t"+fmt.Sprint(b.Pid)+"\t") {
		t.Errorf("b's init is not in a nested pid namespace:\n%s", st)
	}
}

// Joining a user namespace (runc's order): the container's root is root
// of that namespace (the same uid map), and its new namespaces are made
// after the join, so they belong to it, and an exec (user first) enters
// them.
func TestJoinUserNamespace(t *testing.T) {
	a, _ := startT(t, sleeper(func(c *Config) { c.Namespaces = []Namespace{NSUser, NSMount, NSPID} }))
	b, _ := startT(t, sleeper(func(c *Config) {
		c.Namespaces = []Namespace{NSMount, NSUTS, NSPID}
		c.Join = map[Namespace]string{NSUser: nsPath(a.Pid, NSUser)}
	}))
	ua, _ := NSInode(a.Pid, NSUser)
	if ub, _ := NSInode(b.Pid, NSUser); ua != ub {
		t.Fatalf("user: a %d, b %d", ua, ub)
	}
	if ma, mb := readFile(t, fmt.Sprintf("/proc/%d/uid_map", a.Pid)), readFile(t, fmt.Sprintf("/proc/%d/uid_map", b.Pid)); ma != mb {
		t.Errorf("uid_map a %q, b %q", ma, mb)
	}
	for _, k := range []Namespace{NSMount, NSUTS, NSPID} {
		f, err := os.Open(nsPath(b.Pid, k))
		if err != nil {
			t.Fatal(err)
		}
		owner, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_USERNS)
		f.Close()
		if err != nil {
			t.Fatalf("NS_GET_USERNS %s: %v", k, err)
		}
		var st unix.Stat_t
		unix.Fstat(owner, &st)
		unix.Close(owner)
		if st.Ino != ua {
			t.Errorf("b's new %s namespace belongs to user namespace %d, want the joined %d", k, st.Ino, ua)
		}
	}
	if out, _ := execOut(t, b, "id", "-u"); out != "0" {
		t.Errorf("id -u in b = %q", out)
	}
	if out, _ := execOut(t, b, "hostname"); out != b.Name {
		t.Errorf("hostname in b = %q, want %s", out, b.Name)
	}
}

// A path that is not a namespace file of the asked kind is refused before
// anything is made, with a message that says what is wrong.
func TestJoinBadPath(t *testing.T) {
	requireRoot(t)
	regular := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(regular, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		join map[Namespace]string
		ns   []Namespace
		want string
	}{
		{"regular file", map[Namespace]string{NSNet: regular}, nil, "not a namespace file"},
		{"wrong type", map[Namespace]string{NSNet: "/proc/self/ns/uts"}, nil, "it is a uts namespace"},
		{"directory", map[Namespace]string{NSIPC: "/proc/self/ns"}, nil, "not a namespace file"},
		{"fifo (never opened for real)", map[Namespace]string{NSIPC: fifo}, nil, "not a namespace file"},
		{"missing", map[Namespace]string{NSUTS: "/proc/self/ns/nope"}, nil, "no such file"},
		{"relative", map[Namespace]string{NSUTS: "proc/self/ns/uts"}, nil, "not an absolute path"},
		{"created and joined", map[Namespace]string{NSUTS: "/proc/self/ns/uts"}, []Namespace{NSMount, NSUTS}, "both created and joined"},
		{"user without mnt", map[Namespace]string{NSUser: "/proc/self/ns/user"}, []Namespace{NSPID}, "may not mount"},
		{"from a new userns", map[Namespace]string{NSUTS: "/proc/self/ns/uts"}, []Namespace{NSUser, NSMount}, "new user namespace"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := testName(t)
			ns := tc.ns
			if ns == nil {
				ns = []Namespace{NSMount}
			}
			_, err := Start(context.Background(), Config{Name: name, Namespaces: ns, Join: tc.join, Args: []string{"true"}})
			var ie *InputError
			if err == nil || !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start: %v, want an InputError saying %q", err, tc.want)
			}
			if left := objects(t, name); len(left) > 0 {
				t.Errorf("a refused start left %v", left)
			}
		})
	}
}

// Without a mount namespace of its own (none created, as in a config that
// lists none) the init runs in ctlab's, chrooted into a private copy of
// its root mounted at DIR/rootfs; removing the container removes that
// mount and everything mounted under it.
func TestNoMountNamespace(t *testing.T) {
	requireRoot(t)
	c, err := Start(context.Background(), Config{Name: testName(t), Namespaces: []Namespace{NSUTS, NSPID}, Args: []string{"sleep", "60"}, MountSelf: true})
	if err != nil {
		t.Fatal(err)
	}
	removed := false
	defer func() {
		if !removed {
			c.Remove(context.Background(), true)
		}
	}()
	host, _ := NSInode(0, NSMount)
	got, _ := NSInode(c.Pid, NSMount)
	if host != got {
		t.Errorf("mnt inode %d, want ctlab's %d", got, host)
	}
	root, err := os.Readlink(fmt.Sprintf("/proc/%d/root", c.Pid))
	want := filepath.Join(c.Dir, "rootfs")
	if err != nil || root != want {
		t.Errorf("init's root %q (%v), want %s", root, err, want)
	}
	mps := mountPoints(t)
	for _, m := range []string{want, want + "/proc", want + "/dev"} {
		if !mps[m] {
			t.Errorf("%s is not mounted in ctlab's mount namespace", m)
		}
	}
	// An exec enters the same root (the host has no /.ctlab) and pid
	// namespace.
	if _, code := execOut(t, c, "test", "-e", "/.ctlab/ctlab"); code != 0 {
		t.Errorf("exec does not run in the container's root")
	}
	if got, _ := execOut(t, c, "cat", "/proc/1/cmdline"); strings.TrimRight(got, "\x00") != "sleep\x0060" {
		t.Errorf("pid 1 seen by an exec: %q, want the init's sleep 60", got)
	}
	removed = true
	if err := c.Remove(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	for m := range mountPoints(t) {
		if strings.HasPrefix(m, c.Dir) {
			t.Errorf("%s is still mounted after remove", m)
		}
	}
}

// A start killed at each step, in a joined uts namespace and without a
// mount namespace of its own, is undone by the journal: the rootfs mount in
// ctlab's namespace too.
func TestJoinCleanupAfterKill9(t *testing.T) {
	a, _ := startT(t, sleeper(func(c *Config) { c.Namespaces = []Namespace{NSMount, NSUTS} }))
	for _, fp := range []string{"after-mount", "after-cgroup-attach", "after-start"} {
		t.Run(fp, func(t *testing.T) {
			name := testName(t)
			killedRun(t, fp, name, nsPath(a.Pid, NSUTS))
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if _, err := Cleanup(ctx, CleanupOptions{}); err != nil {
				t.Fatalf("cleanup: %v", err)
			}
			time.Sleep(300 * time.Millisecond) // veth removal follows netns teardown asynchronously
			if left := objects(t, name); len(left) > 0 {
				t.Errorf("after cleanup: %v", left)
			}
		})
	}
}

// With its journal and state lost (while /var/lib survived), cleanup's
// sweep still unmounts the root of a container without a mount namespace
// of its own before it removes the directory.
func TestSweepStrayRootfs(t *testing.T) {
	requireRoot(t)
	name := testName(t)
	c, err := Start(context.Background(), Config{Name: name, Namespaces: []Namespace{NSUTS}, Args: []string{"sleep", "60"}})
	if err != nil {
		t.Fatal(err)
	}
	c.Kill(unix.SIGKILL)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c.Wait(ctx)
	os.Remove(filepath.Join(journalDir(), name+".jsonl"))
	os.Remove(statePath(name))
	if !mountPoints(t)[filepath.Join(c.Dir, "rootfs")] {
		t.Fatal("the root is not mounted: nothing to sweep")
	}
	if _, err := Cleanup(ctx, CleanupOptions{}); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	if left := objects(t, name); len(left) > 0 {
		t.Errorf("after cleanup: %v", left)
	}
}
