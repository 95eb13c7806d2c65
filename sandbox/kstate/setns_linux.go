package kstate

import (
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
// When pid already shares the namespace with this process, fn simply runs.
func InNamespace(pid int, kind string, fn func() error) error {
	flag, ok := nsFlags[kind]
	if !ok {
		return fmt.Errorf("kstate: cannot join a %s namespace from a Go process", kind)
	}
	theirs, err := NSInode(pid, kind)
	if err != nil {
		return err
	}
	ours, err := NSInode(os.Getpid(), kind)
	if err != nil {
		return err
	}
	if theirs == ours {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // no Unlock: the thread dies with the goroutine
		p := fmt.Sprintf("/proc/%d/ns/%s", pid, kind)
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open %s: %w", p, err)
			return
		}
		err = unix.Setns(fd, flag)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("setns %s: %w", p, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
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
