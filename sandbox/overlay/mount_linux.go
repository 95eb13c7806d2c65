package overlay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox/mountinfo"
)

// Layout names the four directories of an overlay mount.
//
// Lower is ordered top-most first, exactly like the kernel's lowerdir=a:b:c
// option: a file in Lower[0] hides the same path in Lower[1]. Upper receives
// every change made through Merged (copy-ups, new files, whiteouts); Work is
// the kernel's scratch directory and must be on the same filesystem as Upper.
// An empty Upper (and Work) gives a read-only overlay of the lowers.
type Layout struct {
	Lower  []string /* top-most first */
	Upper  string
	Work   string
	Merged string
	// Volatile skips every sync of the upper layer (overlay "volatile",
	// Linux 5.10+). A container's upper layer is thrown away with it, and
	// without this each unmount waits for a journal commit of the disk
	// below (~15 ms here). After a host crash such an upperdir must be
	// discarded, which is what ctlab does anyway.
	Volatile bool `json:",omitempty"`
}

// maxOptions is the size of the page the kernel copies mount(2) data into
// (PAGE_SIZE, including the terminating NUL). Longer option strings are
// silently truncated by older kernels or rejected by newer ones.
var maxOptions = os.Getpagesize() - 1

// Options returns the mount(2) data string Mount would use, with absolute
// paths. Shown by the lab so learners can type the same `mount -t overlay`.
func (l Layout) Options() (string, error) {
	return l.options(func(p string) string { return p })
}

func (l Layout) options(rel func(string) string) (string, error) {
	if len(l.Lower) == 0 {
		return "", errors.New("overlay: at least one lowerdir is required")
	}
	if (l.Upper == "") != (l.Work == "") {
		return "", errors.New("overlay: upperdir and workdir must be given together")
	}
	all := append(append([]string{}, l.Lower...), l.Upper, l.Work)
	for _, p := range all {
		// ':' separates lowerdirs and ',' separates options; the kernel's
		// escaping rules for them changed between versions, so refuse them.
		if strings.ContainsAny(p, ":,\\") {
			return "", fmt.Errorf("overlay: path %q contains ':', ',' or '\\', which overlay options cannot carry", p)
		}
	}
	lowers := make([]string, len(l.Lower))
	for i, p := range l.Lower {
		lowers[i] = rel(p)
	}
	o := "lowerdir=" + strings.Join(lowers, ":")
	if l.Upper != "" {
		o += ",upperdir=" + rel(l.Upper) + ",workdir=" + rel(l.Work)
		if l.Volatile {
			o += ",volatile"
		}
		// Commit needs every changed file's data and every renamed directory's
		// content in upperdir. redirect_dir and metacopy would leave them in
		// the lowers, so switch them off when the module enables them.
		for _, feat := range []string{"redirect_dir", "metacopy"} {
			if moduleParamOn(feat) {
				o += "," + feat + "=off"
			}
		}
	}
	return o, nil
}

func moduleParamOn(name string) bool {
	b, err := os.ReadFile("/sys/module/overlay/parameters/" + name)
	if err != nil {
		return false
	}
	v := strings.TrimSpace(string(b))
	return v == "Y" || v == "on" || v == "1"
}

// Mount creates Upper, Work and Merged if missing and mounts the overlay on
// Merged. The caller journals the mount before calling (see DESIGN "state &
// cleanup").
//
// mount(2) copies at most one page of option data. When the absolute option
// string is longer, Mount retries from a thread with its own working
// directory (unshare(CLONE_FS)) chdir'ed to the lowest common parent of all
// layer directories, with relative paths — the trick containerd uses.
func Mount(l Layout) error {
	if l.Merged == "" {
		return errors.New("overlay: merged directory not set")
	}
	for _, d := range []string{l.Upper, l.Work, l.Merged} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("overlay: create %s: %w", d, err)
		}
	}
	if l.Upper == "" && len(l.Lower) < 2 {
		return errors.New("overlay: a read-only overlay (no upperdir) needs at least two lowerdirs")
	}
	abs, err := absLayout(l)
	if err != nil {
		return err
	}
	// Mounting again would stack a second overlay and hide the first one's
	// view from everyone who looks at merged by path.
	if m, err := IsMounted(abs.Merged); err != nil {
		return err
	} else if m {
		return fmt.Errorf("overlay: %s is already a mount point", abs.Merged)
	}
	opts, err := abs.Options()
	if err != nil {
		return err
	}
	if len(opts) <= maxOptions {
		if err := unix.Mount("overlay", abs.Merged, "overlay", 0, opts); err != nil {
			return fmt.Errorf("overlay: mount -t overlay overlay -o %s %s: %w", opts, abs.Merged, err)
		}
		return nil
	}
	return mountRelative(abs)
}

func absLayout(l Layout) (Layout, error) {
	var err error
	abs := func(p string) string {
		if p == "" || err != nil {
			return p
		}
		var a string
		a, err = filepath.Abs(p)
		return a
	}
	out := Layout{Upper: abs(l.Upper), Work: abs(l.Work), Merged: abs(l.Merged)}
	for _, p := range l.Lower {
		out.Lower = append(out.Lower, abs(p))
	}
	if err != nil {
		return Layout{}, fmt.Errorf("overlay: absolute path: %w", err)
	}
	return out, nil
}

func mountRelative(l Layout) error {
	dirs := append(append([]string{}, l.Lower...), l.Upper, l.Work)
	base := commonDir(dirs)
	opts, err := l.options(func(p string) string {
		r, err := filepath.Rel(base, p)
		if err != nil {
			return p
		}
		return r
	})
	if err != nil {
		return err
	}
	if len(opts) > maxOptions {
		return fmt.Errorf("overlay: options are %d bytes even relative to %s, mount(2) accepts %d: use fewer or shorter lowerdirs (%d lowers)",
			len(opts), base, maxOptions, len(l.Lower))
	}
	errc := make(chan error, 1)
	go func() {
		// This thread gets a private cwd and is never unlocked: when the
		// goroutine returns the runtime kills the thread, so no other
		// goroutine ever runs with the changed directory.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("overlay: unshare(CLONE_FS): %w", err)
			return
		}
		if err := unix.Chdir(base); err != nil {
			errc <- fmt.Errorf("overlay: chdir %s: %w", base, err)
			return
		}
		if err := unix.Mount("overlay", l.Merged, "overlay", 0, opts); err != nil {
			errc <- fmt.Errorf("overlay: mount (cwd %s) -o %s %s: %w", base, opts, l.Merged, err)
			return
		}
		errc <- nil
	}()
	return <-errc
}

// commonDir returns the deepest directory containing every path in ps.
func commonDir(ps []string) string {
	if len(ps) == 0 {
		return "/"
	}
	parts := strings.Split(filepath.Clean(ps[0]), "/")
	for _, p := range ps[1:] {
		q := strings.Split(filepath.Clean(p), "/")
		n := 0
		for n < len(parts) && n < len(q) && parts[n] == q[n] {
			n++
		}
		parts = parts[:n]
	}
	d := strings.Join(parts, "/")
	if d == "" {
		return "/"
	}
	return d
}

// Unmount unmounts merged. A busy mount is detached lazily (MNT_DETACH): it
// disappears from the namespace now and is freed when the last user goes.
// It is not an error if merged is not mounted (or does not exist).
func Unmount(merged string) error {
	return unmount(merged, 0)
}

// UnmountLazy detaches the mount at once (MNT_DETACH) and leaves the rest
// of the teardown to the kernel: a plain unmount of a container's overlay
// waited 5-50 ms here (RCU grace periods), a lazy one ~2.7 ms.
func UnmountLazy(merged string) error {
	return unmount(merged, unix.MNT_DETACH)
}

func unmount(merged string, flags int) error {
	err := unix.Unmount(merged, flags)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
		if m, merr := IsMounted(merged); merr == nil && !m {
			return nil
		}
		return fmt.Errorf("overlay: umount %s: %w", merged, err)
	case errors.Is(err, unix.EBUSY):
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("overlay: umount -l %s: %w", merged, err)
		}
		return nil
	default:
		return fmt.Errorf("overlay: umount %s: %w", merged, err)
	}
}

// IsMounted reports whether something is mounted on dir, according to
// /proc/self/mountinfo of the calling process's mount namespace.
func IsMounted(dir string) (bool, error) {
	p, err := filepath.Abs(dir)
	if err != nil {
		return false, fmt.Errorf("overlay: %w", err)
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	if m, ok := isMountRoot(p); ok {
		return m, nil
	}
	mps, err := mountPoints()
	if err != nil {
		return false, err
	}
	for _, mp := range mps {
		if mp == p {
			return true, nil
		}
	}
	return false, nil
}

// isMountRoot asks statx whether p is the root of a mount (Linux 5.8+):
// one syscall instead of reading every mount of the namespace, which costs
// a container's removal a few tenths of a millisecond on a busy host. ok is
// false when the kernel cannot tell.
func isMountRoot(p string) (mounted, ok bool) {
	var stx unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, p, unix.AT_STATX_DONT_SYNC, 0, &stx)
	switch {
	case errors.Is(err, unix.ENOENT):
		return false, true // nothing can be mounted on a path that is not there
	case err != nil || stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT == 0:
		return false, false
	}
	return stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0, true
}

// MountsUnder lists the mount points at or below dir in the calling
// process's mount namespace, deepest first (the order to unmount them in).
func MountsUnder(dir string) ([]string, error) {
	mps, err := mountPoints()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, mp := range mps {
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// mountPoints lists the mount points of the calling process's mount
// namespace (unescaped by package mountinfo).
func mountPoints() ([]string, error) {
	ms, err := mountinfo.Read(0)
	if err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.MountPoint
	}
	return out, nil
}
