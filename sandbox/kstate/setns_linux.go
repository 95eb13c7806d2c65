package kstate

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

var nsFlags = map[string]int{
	"uts": unix.CLONE_NEWUTS,
	"ipc": unix.CLONE_NEWIPC,
	"net": unix.CLONE_NEWNET,
}

// InNamespace runs fn on an OS thread that has joined the kind namespace
// of pid (uts, ipc or net: the kinds a multi-threaded process may join).
//
// Namespaces belong to threads, not processes: setns moves only the calling
// thread. The goroutine locks itself to its thread and never unlocks, so
// when it returns the Go runtime throws the thread away instead of reusing
// it for unrelated goroutines that would then run in the wrong namespace.
// It also switches the thread back before returning, because the runtime
// cannot throw away the main thread: a goroutine that happens to run there
// leaves it parked ("wedged") for good, and since /proc/<pid>/ns/* shows the
// main thread's namespaces, an unrestored main thread would make the whole
// process look as if it lived in the container's namespace.
func InNamespace(pid int, kind string, fn func() error) error {
	flag, ok := nsFlags[kind]
	if !ok {
		return fmt.Errorf("kstate: cannot join a %s namespace from a Go process", kind)
	}
	target := fmt.Sprintf("/proc/%d/ns/%s", pid, kind)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // no Unlock: the thread dies with the goroutine
		errc <- inNamespaceLocked(target, kind, flag, fn)
	}()
	return <-errc
}

func inNamespaceLocked(target, kind string, flag int, fn func() error) error {
	var want, have unix.Stat_t
	if err := unix.Stat(target, &want); err != nil {
		return fmt.Errorf("stat %s: %w", target, err)
	}
	self := "/proc/thread-self/ns/" + kind
	if err := unix.Stat(self, &have); err != nil {
		return fmt.Errorf("stat %s: %w", self, err)
	}
	if want.Ino == have.Ino && want.Dev == have.Dev {
		return fn() // already there
	}
	orig, err := unix.Open(self, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", self, err)
	}
	defer unix.Close(orig)
	fd, err := unix.Open(target, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", target, err)
	}
	err = unix.Setns(fd, flag)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("setns %s: %w", target, err)
	}
	ferr := fn()
	if err := unix.Setns(orig, flag); err != nil {
		return errors.Join(ferr, fmt.Errorf("setns back to the original %s namespace: %w", kind, err))
	}
	return ferr
}

// UTSNames reads the hostname and domain name of pid's uts namespace from
// /proc/sys/kernel/{hostname,domainname} on a thread inside that
// namespace. source is the prefix of the files read, with how.
func UTSNames(pid int) (hostname, domainname, source string, err error) {
	source = fmt.Sprintf("setns(/proc/%d/ns/uts) + /proc/sys/kernel/", pid)
	err = InNamespace(pid, "uts", func() error {
		h, err := os.ReadFile("/proc/sys/kernel/hostname")
		if err != nil {
			return fmt.Errorf("read hostname: %w", err)
		}
		d, err := os.ReadFile("/proc/sys/kernel/domainname")
		if err != nil {
			return fmt.Errorf("read domainname: %w", err)
		}
		hostname, domainname = strings.TrimSpace(string(h)), strings.TrimSpace(string(d))
		return nil
	})
	return hostname, domainname, source, err
}

// IPC lists SysV IPC objects of one ipc namespace.
type IPC struct {
	Shm []IPCObject `json:"shm"`
	Msg []IPCObject `json:"msg"`
	Sem []IPCObject `json:"sem"`
}

// IPCObject is one line of /proc/sysvipc/{shm,msg,sem}.
type IPCObject struct {
	Key   int64  `json:"key"`
	ID    int64  `json:"id"`
	Perms string `json:"perms"`
	UID   int64  `json:"uid"`
}

// Of returns the objects of one kind: "shm", "msg" or "sem".
func (i IPC) Of(kind string) []IPCObject {
	switch kind {
	case "shm":
		return i.Shm
	case "msg":
		return i.Msg
	case "sem":
		return i.Sem
	}
	return nil
}

// IPCObjects reads /proc/sysvipc/* on a thread inside pid's ipc namespace.
func IPCObjects(pid int) (IPC, string, error) {
	source := fmt.Sprintf("setns(/proc/%d/ns/ipc) + /proc/sysvipc/{shm,msg,sem}", pid)
	var out IPC
	err := InNamespace(pid, "ipc", func() error {
		for _, k := range []struct {
			name string
			dst  *[]IPCObject
		}{{"shm", &out.Shm}, {"msg", &out.Msg}, {"sem", &out.Sem}} {
			b, err := os.ReadFile("/proc/sysvipc/" + k.name)
			if err != nil {
				return fmt.Errorf("read /proc/sysvipc/%s: %w", k.name, err)
			}
			*k.dst = parseSysvipc(string(b))
		}
		return nil
	})
	return out, source, err
}

// parseSysvipc reads the table format: a header line naming the columns,
// then one object per line. Columns are found by name (key, shmid/msqid/
// semid, perms, uid) because the three files differ.
func parseSysvipc(s string) []IPCObject {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) < 2 {
		return nil
	}
	col := map[string]int{}
	for i, h := range strings.Fields(lines[0]) {
		col[h] = i
	}
	get := func(f []string, names ...string) int64 {
		for _, n := range names {
			if i, ok := col[n]; ok && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
		return 0
	}
	var out []IPCObject
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		o := IPCObject{Key: get(f, "key"), ID: get(f, "shmid", "msqid", "semid"), UID: get(f, "uid")}
		if i, ok := col["perms"]; ok && i < len(f) {
			o.Perms = f[i]
		}
		out = append(out, o)
	}
	return out
}
