package cgroups

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests start their workloads as child processes: the test binary
// re-executed with CTLAB_CGTEST_HELPER=<name>. The child blocks on fd 3 until
// the parent has moved it into the cgroup and writes one byte, so the
// workload never runs outside its limits (runc's sync pipe, in miniature).
const helperEnv = "CTLAB_CGTEST_HELPER"

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		os.Exit(runHelper(h))
	}
	os.Exit(m.Run())
}

func runHelper(name string) int {
	release := os.NewFile(3, "release")
	var b [1]byte
	if n, _ := release.Read(b[:]); n != 1 {
		fmt.Fprintln(os.Stderr, "helper: parent did not release us (not attached to the cgroup)")
		return 2
	}
	release.Close()
	switch name {
	case "spin":
		for i := 0; i < 2; i++ {
			go func() {
				for {
				}
			}()
		}
		fmt.Println("spinning")
		select {}
	case "sleep":
		fmt.Println("sleeping")
		select {}
	case "hog":
		// 128 MiB, every page touched so it is really charged.
		buf := make([]byte, 128<<20)
		for i := 0; i < len(buf); i += 4096 {
			buf[i] = 1
		}
		fmt.Println("survived", len(buf))
		return 0
	case "forker":
		return helperForker()
	case "counter":
		return helperCounter(os.Getenv("CTLAB_CGTEST_FILE"))
	case "devices":
		res := []string{}
		for _, dev := range []string{"/dev/null", "/dev/zero"} {
			f, err := os.OpenFile(dev, os.O_RDONLY, 0)
			if err != nil {
				var errno syscall.Errno
				if errors.As(err, &errno) {
					res = append(res, dev+"="+unix.ErrnoName(errno))
				} else {
					res = append(res, dev+"="+err.Error())
				}
				continue
			}
			f.Close()
			res = append(res, dev+"=ok")
		}
		fmt.Println(strings.Join(res, " "))
		return 0
	case "ioread":
		return helperIORead(os.Getenv("CTLAB_CGTEST_FILE"))
	}
	fmt.Fprintln(os.Stderr, "unknown helper", name)
	return 2
}

// helperForker starts `sleep` children until fork fails and reports why.
// The children are a non-Go binary so they add exactly one task each.
func helperForker() int {
	sleep := os.Getenv("CTLAB_CGTEST_SLEEP")
	var kids []*exec.Cmd
	for i := 0; i < 50; i++ {
		cmd := exec.Command(sleep, "600")
		if err := cmd.Start(); err != nil {
			var errno syscall.Errno
			name := err.Error()
			if errors.As(err, &errno) {
				name = unix.ErrnoName(errno)
			}
			fmt.Printf("ERR %s after %d\n", name, len(kids))
			select {}
		}
		kids = append(kids, cmd)
	}
	fmt.Printf("OK %d\n", len(kids))
	select {}
}

// helperCounter increments a counter and writes it, fixed width at offset 0
// (no truncation, so a reader never sees an empty file), every 2 ms.
func helperCounter(path string) int {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("counting")
	for n := 1; ; n++ {
		if _, err := f.WriteAt([]byte(fmt.Sprintf("%20d", n)), 0); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// helperIORead reads the file with O_DIRECT (bypassing the page cache, so
// every byte is a real disk read that blk-throttle sees) and reports the rate.
func helperIORead(path string) int {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer unix.Close(fd)
	// O_DIRECT wants a buffer aligned to the logical block size: use mmap'd memory.
	buf, err := unix.Mmap(-1, 0, 1<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	start := time.Now()
	var total int
	for {
		n, err := unix.Read(fd, buf)
		if err != nil {
			fmt.Fprintln(os.Stderr, "read:", err)
			return 1
		}
		if n == 0 {
			break
		}
		total += n
	}
	fmt.Printf("%d %f\n", total, time.Since(start).Seconds())
	return 0
}

var testSeq atomic.Int64

// testName is unique per test and per test process.
func testName() string {
	return fmt.Sprintf("test-%d-%d", os.Getpid(), testSeq.Add(1))
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("cgroup tests need root: euid is %d", os.Geteuid())
	}
	if Effective() == Unavailable {
		t.Skipf("no cgroup filesystem: HostMode() = %v", HostMode())
	}
}

// needController skips when the host lacks ctrl (by our Controllers names).
func needController(t testing.TB, names ...string) {
	t.Helper()
	have, err := Controllers()
	if err != nil {
		t.Fatalf("Controllers: %v", err)
	}
	for _, n := range names {
		if !contains(have, n) {
			t.Skipf("controller %s not available on this host (have %v, mode %v)", n, have, Effective())
		}
	}
}

// newCgroup creates a uniquely named cgroup that is deleted when the test ends.
func newCgroup(t testing.TB, l Limits) *Cgroup {
	t.Helper()
	name := testName()
	c, err := Create(name, l)
	if err != nil {
		t.Fatalf("Create(%s): %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Delete(ctx); err != nil {
			t.Errorf("cleanup Delete(%s): %v", name, err)
		}
	})
	return c
}

type helper struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
	state *os.ProcessState
	err   error
}

// startHelper starts helper name already inside c: started, attached, released.
func startHelper(t testing.TB, c *Cgroup, name string, env ...string) *helper {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), helperEnv+"="+name), env...)
	cmd.ExtraFiles = []*os.File{r}
	cmd.Stdout = outW
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper %s: %v", name, err)
	}
	r.Close()
	outW.Close()
	h := &helper{cmd: cmd, lines: make(chan string, 16), done: make(chan struct{})}
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			h.lines <- s.Text()
		}
		out.Close()
	}()
	go func() {
		h.err = cmd.Wait()
		h.state = cmd.ProcessState
		close(h.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // no-op if the cgroup Delete already killed it
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			t.Errorf("helper %s (pid %d) did not exit", name, cmd.Process.Pid)
		}
	})
	if err := c.Add(cmd.Process.Pid); err != nil {
		w.Close() // the child exits without running its workload
		t.Fatalf("Add(helper %s): %v", name, err)
	}
	if _, err := w.Write([]byte{1}); err != nil {
		t.Fatalf("release helper: %v", err)
	}
	w.Close()
	return h
}

// line waits for the helper's next output line.
func (h *helper) line(t testing.TB, timeout time.Duration) string {
	t.Helper()
	select {
	case l := <-h.lines:
		return l
	case <-h.done:
		select {
		case l := <-h.lines:
			return l
		case <-time.After(100 * time.Millisecond):
		}
		t.Fatalf("helper exited without output: %v", h.err)
	case <-time.After(timeout):
		t.Fatalf("helper gave no output within %v", timeout)
	}
	return ""
}

// wait waits for the helper to exit.
func (h *helper) wait(t testing.TB, timeout time.Duration) *os.ProcessState {
	t.Helper()
	select {
	case <-h.done:
		return h.state
	case <-time.After(timeout):
		t.Fatalf("helper did not exit within %v", timeout)
	}
	return nil
}

func inCgroup(t testing.TB, c *Cgroup, pid int) bool {
	t.Helper()
	pids, err := c.Procs()
	if err != nil {
		t.Fatalf("Procs: %v", err)
	}
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}

func readCounter(t testing.TB, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("counter file %q: %v", b, err)
	}
	return n
}
