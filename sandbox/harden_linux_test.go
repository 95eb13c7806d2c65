package sandbox

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A hardened container (what the grader runs student images in) has only
// the kept capabilities, no_new_privs, masked kernel files, a read-only
// /proc/sys, and no file descriptor of ctlab's.
func TestHardening(t *testing.T) {
	c, _ := startT(t, Config{
		Namespaces: []Namespace{NSMount, NSUTS, NSIPC, NSPID, NSNet, NSCgroup},
		Harden:     Hardening{DropCaps: true, NoNewPrivs: true, MaskPaths: true, Seccomp: true},
		Args:       []string{"sleep", "60"},
	})
	st := readFile(t, fmt.Sprintf("/proc/%d/status", c.Pid))
	var want uint64
	for _, cp := range KeptCapabilities {
		want |= 1 << cp
	}
	for _, field := range []string{"CapEff:", "CapBnd:"} {
		v, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(grepLine(st, field), field)), 16, 64)
		if err != nil || v != want {
			t.Errorf("%s %x, want %x", field, v, want)
		}
	}
	if l := grepLine(st, "NoNewPrivs:"); !strings.HasSuffix(l, "1") {
		t.Errorf("no_new_privs not set: %q", l)
	}
	if l := grepLine(st, "Seccomp:"); !strings.HasSuffix(l, "2") {
		t.Errorf("no seccomp filter: %q", l)
	}
	// The filter answers EPERM for what it denies, in the command and all
	// its descendants (exec'd processes join namespaces, not the filter).
	c2, out2 := startT(t, Config{
		Namespaces: []Namespace{NSMount, NSUTS, NSIPC, NSPID, NSNet, NSCgroup},
		Harden:     Hardening{DropCaps: true, NoNewPrivs: true, MaskPaths: true, Seccomp: true},
		Args:       []string{"sh", "-c", "unshare -U true; echo rc=$?"},
	})
	c2.Wait(context.Background())
	if o := out2.String(); !strings.Contains(o, "rc=1") || !strings.Contains(strings.ToLower(o), "not permitted") {
		t.Errorf("unshare under the filter: %q, want EPERM", o)
	}
	// /proc/interrupts exists on every kernel; masked, it reads empty.
	if out, _ := execOut(t, c, "sh", "-c", "wc -c < /proc/interrupts"); strings.TrimSpace(out) != "0" {
		t.Errorf("/proc/interrupts not masked: %q", out)
	}
	if _, code := execOut(t, c, "sh", "-c", "echo 1 > /proc/sys/kernel/domainname"); code == 0 {
		t.Errorf("/proc/sys is writable")
	}
	// The init's descriptors: only stdio survives the exec.
	out, _ := execOut(t, c, "ls", "/proc/1/fd")
	if f := strings.Fields(out); len(f) != 3 {
		t.Errorf("init holds fds %v, want only 0 1 2", f)
	}
	// The old root is gone after pivot_root: / is the overlay.
	if out, _ := execOut(t, c, "sh", "-c", "grep ' / / ' /proc/self/mountinfo"); !strings.Contains(out, "overlay") {
		t.Errorf("root mount is not the overlay: %q", out)
	}
}

// Starting and removing containers leaks no file descriptor of ours
// (runc's TestFdLeaks idea).
func TestNoFdLeak(t *testing.T) {
	requireRoot(t)
	count := func() []string {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ents {
			l, _ := os.Readlink("/proc/self/fd/" + e.Name())
			out = append(out, e.Name()+"->"+l)
		}
		return out
	}
	run := func() {
		c, _ := startT(t, Config{Net: true, Args: []string{"true"}})
		c.Wait(context.Background())
		if err := c.Remove(context.Background(), true); err != nil {
			t.Fatal(err)
		}
	}
	run() // warm up: the first run opens long-lived fds (netlink, epoll)
	before := count()
	run()
	run()
	time.Sleep(100 * time.Millisecond)
	if after := count(); len(after) > len(before) {
		t.Errorf("fds grew from %d to %d:\nbefore %v\nafter  %v", len(before), len(after), before, after)
	}
}
