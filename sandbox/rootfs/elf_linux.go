package rootfs

import (
	"bufio"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// hostPath is where binaries are looked up: a fixed, standard PATH rather
// than the caller's, so the same host always gives the same rootfs.
var hostPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// libDirs lists the directories the dynamic loader searches by default on
// Debian-style systems (multiarch first), plus /etc/ld.so.conf.d entries.
func libDirs() []string {
	triplet := map[string]string{
		"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu", "386": "i386-linux-gnu",
		"riscv64": "riscv64-linux-gnu", "ppc64le": "powerpc64le-linux-gnu", "s390x": "s390x-linux-gnu",
	}[runtime.GOARCH]
	var dirs []string
	if triplet != "" {
		dirs = append(dirs, "/lib/"+triplet, "/usr/lib/"+triplet)
	}
	dirs = append(dirs, "/lib64", "/usr/lib64", "/lib", "/usr/lib")
	confs, _ := filepath.Glob("/etc/ld.so.conf.d/*.conf")
	for _, c := range confs {
		f, err := os.Open(c)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			if strings.HasPrefix(l, "/") {
				dirs = append(dirs, l)
			}
		}
		f.Close()
	}
	seen := map[string]bool{}
	out := dirs[:0]
	for _, d := range dirs {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// lookPath finds an executable regular file named name in hostPath.
func lookPath(name string) (string, bool) {
	for _, d := range hostPath {
		p := filepath.Join(d, name)
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// elfDeps is the dependency resolver for one build: it remembers what it
// has parsed so shared libraries are visited once.
type elfDeps struct {
	dirs    []string
	visited map[string]bool
}

func newELFDeps() *elfDeps { return &elfDeps{dirs: libDirs(), visited: map[string]bool{}} }

// deps returns every file the binary at path needs to start: its program
// interpreter (PT_INTERP) and, recursively, its DT_NEEDED libraries as
// found in the loader's search path. Paths are as the loader would open
// them (e.g. /lib64/ld-linux-x86-64.so.2), not symlink-resolved. A non-ELF
// file (a script) has no dependencies.
func (d *elfDeps) deps(path string) ([]string, error) {
	var out []string
	var walk func(p string) error
	walk = func(p string) error {
		f, err := elf.Open(p)
		if err != nil {
			if p == path {
				return nil // not ELF: copied as is
			}
			return fmt.Errorf("%s: %w", p, err)
		}
		defer f.Close()
		for _, prog := range f.Progs {
			if prog.Type != elf.PT_INTERP {
				continue
			}
			b := make([]byte, prog.Filesz)
			if _, err := prog.ReadAt(b, 0); err != nil {
				return fmt.Errorf("%s: read PT_INTERP: %w", p, err)
			}
			interp := strings.TrimRight(string(b), "\x00")
			if !d.visited[interp] {
				d.visited[interp] = true
				out = append(out, interp)
			}
		}
		needed, err := f.ImportedLibraries()
		if err != nil {
			return fmt.Errorf("%s: DT_NEEDED: %w", p, err)
		}
		var search []string
		for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
			vals, _ := f.DynString(tag)
			for _, v := range vals {
				for _, dir := range strings.Split(v, ":") {
					// $ORIGIN-relative paths do not occur in distro binaries; skip them.
					if strings.HasPrefix(dir, "/") {
						search = append(search, dir)
					}
				}
			}
		}
		search = append(search, d.dirs...)
		for _, lib := range needed {
			lp, err := d.find(lib, search, f.Class, f.Machine)
			if err != nil {
				return fmt.Errorf("%s needs %s: %w", p, lib, err)
			}
			if d.visited[lp] {
				continue
			}
			d.visited[lp] = true
			out = append(out, lp)
			if err := walk(lp); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(path); err != nil {
		return nil, err
	}
	return out, nil
}

// find resolves a DT_NEEDED name like the loader: the first file of that
// name in the search dirs whose ELF class and machine match the binary
// (so a 32-bit library in /lib is not picked for a 64-bit program).
func (d *elfDeps) find(lib string, search []string, class elf.Class, mach elf.Machine) (string, error) {
	if strings.Contains(lib, "/") {
		return lib, nil
	}
	for _, dir := range search {
		p := filepath.Join(dir, lib)
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		ok := f.Class == class && f.Machine == mach
		f.Close()
		if ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("not found in %v", search)
}
