package rootfs

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// HostBinaries are the tools a "host" rootfs gets, whichever of them exist.
// "sh" is not listed: /bin/sh is a link to bash, or dash without bash.
// Every command a lesson asks the learner to type in a container must be
// here too: many learners' VMs have no busybox, and then this list is the
// whole container userland (lab's TestLessonCommandsInHostRootfs checks it).
var HostBinaries = []string{
	"ls", "cat", "ps", "hostname", "domainname", "mount", "umount", "ip", "sleep", "echo", "env", "id",
	"mkdir", "rm", "touch", "cp", "mv", "ln", "grep", "sed", "head", "tail", "wc", "cut", "dd", "date",
	"uname", "readlink", "stat", "ipcmk", "ipcs", "ipcrm", "unshare", "nsenter", "lsns", "free", "df",
	"kill", "true", "false", "chmod", "chown", "find", "sort", "tr", "seq", "whoami", "printf", "test",
	"nproc", "mknod", "awk", "xargs", "tee", "rmdir", "du", "basename", "dirname", "yes", "sync",
	"mountpoint", "ping", "pgrep", "pkill", "uptime", "tac", "md5sum", "sha256sum", "expr", "pwd",
	"hexdump", "od", "nice", "renice", "timeout", "chroot", "pivot_root", "setsid", "getent", "findmnt",
	"ss",
}

// plan is everything a build copies from the host, decided before anything
// is written so the cache key can be computed from it.
type plan struct {
	kind     string
	files    map[string]string // rootfs path -> host path of a regular file
	links    map[string]string // rootfs path -> symlink target
	binaries []string          // command names in /bin
	skipped  []string          // "name: reason" for tools left out
}

func newPlan(kind string) *plan {
	return &plan{kind: kind, files: map[string]string{}, links: map[string]string{}}
}

func (p *plan) addFile(dst, src string) {
	if _, ok := p.files[dst]; !ok {
		p.files[dst] = src
	}
}

// addChain copies a file the loader opens by path (a library or the
// interpreter), following its symlink chain: every link is recreated at the
// same path in the rootfs and the final regular file is copied.
func (p *plan) addChain(path string) error {
	for i := 0; i < 40; i++ {
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			if !fi.Mode().IsRegular() {
				return fmt.Errorf("%s is not a regular file", path)
			}
			p.addFile(path, path)
			return nil
		}
		t, err := os.Readlink(path)
		if err != nil {
			return err
		}
		var next string
		switch {
		case filepath.IsAbs(t):
			next = t
		case !strings.Contains(t, ".."):
			// Dir(path)/t names the same file on the host whatever
			// symlinked directories path went through, and the same
			// relative link works in the rootfs.
			next = filepath.Join(filepath.Dir(path), t)
		default:
			realDir, err := filepath.EvalSymlinks(filepath.Dir(path))
			if err != nil {
				return err
			}
			next = filepath.Join(realDir, t)
			t = next // absolute, so it resolves identically in the rootfs
		}
		if _, ok := p.links[path]; !ok {
			p.links[path] = t
		}
		path = next
	}
	return fmt.Errorf("%s: too many levels of symbolic links", path)
}

// addBinary puts the host tool found at hostPath into /bin under name, with
// its ELF dependencies. When the host entry is a symlink to a differently
// named file (domainname -> hostname, awk -> mawk) the real file is copied
// under its own name and name becomes a symlink to it: multi-call programs
// look at argv[0].
func (p *plan) addBinary(d *elfDeps, name, hostPath string) error {
	real, err := filepath.EvalSymlinks(hostPath)
	if err != nil {
		return err
	}
	deps, err := d.deps(real)
	if err != nil {
		return err
	}
	for _, dep := range deps {
		if err := p.addChain(dep); err != nil {
			return fmt.Errorf("%s: %w", dep, err)
		}
	}
	base := filepath.Base(real)
	if cur, ok := p.files["/bin/"+base]; ok && cur != real {
		base = name // a different file already has that name
	}
	p.addFile("/bin/"+base, real)
	if base != name {
		p.links["/bin/"+name] = base
	}
	p.binaries = append(p.binaries, name)
	return nil
}

func planHost() (*plan, error) {
	p := newPlan(KindHost)
	d := newELFDeps()
	shell := ""
	for _, sh := range []string{"bash", "dash"} {
		if hp, ok := lookPath(sh); ok {
			if err := p.addBinary(d, sh, hp); err != nil {
				p.skipped = append(p.skipped, sh+": "+err.Error())
				continue
			}
			if shell == "" {
				shell = sh
			}
		}
	}
	if shell == "" {
		return nil, fmt.Errorf("rootfs: no usable bash or dash on the host (PATH %s)", strings.Join(hostPath, ":"))
	}
	p.links["/bin/sh"] = shell
	p.binaries = append(p.binaries, "sh")
	for _, name := range HostBinaries {
		hp, ok := lookPath(name)
		if !ok {
			p.skipped = append(p.skipped, name+": not installed")
			continue
		}
		if err := p.addBinary(d, name, hp); err != nil {
			p.skipped = append(p.skipped, name+": "+err.Error())
		}
	}
	sort.Strings(p.binaries)
	return p, nil
}

func planBusybox() (*plan, error) {
	fi, err := os.Stat(BusyboxPath)
	if err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("rootfs: %s not found; install it with `apt-get install busybox-static` (or use the host kind)", BusyboxPath)
	}
	p := newPlan(KindBusybox)
	if err := p.addBinary(newELFDeps(), "busybox", BusyboxPath); err != nil {
		return nil, fmt.Errorf("rootfs: busybox: %w", err)
	}
	return p, nil
}
