package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one extra mount inside the container (an OCI config's mounts
// entry, already parsed): Source is a host path for a bind mount, else the
// filesystem's source name.
type Mount struct {
	Source string  `json:"source"`
	Target string  `json:"target"` // absolute, inside the container
	Type   string  `json:"type"`   // "bind" or a filesystem type
	Flags  uintptr `json:"flags"`  // MS_* flags; MS_BIND for a bind mount
	// Propagation is applied after the mount (MS_PRIVATE, MS_SLAVE, ... with
	// or without MS_REC); 0 leaves the default.
	Propagation uintptr `json:"propagation,omitempty"`
	Data        string  `json:"data,omitempty"`
}

// LastCap is the highest capability number this kernel knows
// (/proc/sys/kernel/cap_last_cap).
func LastCap() int { return lastCap() }

// extraMounts makes ms inside root, in order, while the host's tree is still
// visible (bind sources are host paths). A target's path may not pass
// through a symlink in the rootfs: an untrusted image could point it at the
// host.
func extraMounts(root string, ms []Mount) error {
	for _, m := range ms {
		target, err := mountTarget(root, m)
		if err != nil {
			return err
		}
		src := m.Source
		if m.Type == "bind" || m.Flags&unix.MS_BIND != 0 {
			if err := unix.Mount(src, target, "", m.Flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
				return fmt.Errorf("bind %s at %s: %w", src, m.Target, err)
			}
			// A bind mount ignores every other flag until it is remounted.
			if rest := m.Flags &^ (unix.MS_BIND | unix.MS_REC); rest != 0 {
				if err := unix.Mount("", target, "", rest|unix.MS_BIND|unix.MS_REMOUNT, ""); err != nil {
					return fmt.Errorf("remount %s: %w", m.Target, err)
				}
			}
		} else if err := unix.Mount(src, target, m.Type, m.Flags, m.Data); err != nil {
			return fmt.Errorf("mount %s (%s) at %s: %w", src, m.Type, m.Target, err)
		}
		if m.Propagation != 0 {
			if err := unix.Mount("", target, "", m.Propagation, ""); err != nil {
				return fmt.Errorf("propagation of %s: %w", m.Target, err)
			}
		}
	}
	return nil
}

// mountTarget makes the mount point of m under root (a file when a bind
// source is a file) and returns its host path.
func mountTarget(root string, m Mount) (string, error) {
	rel := strings.TrimPrefix(filepath.Clean("/"+m.Target), "/")
	if rel == "" {
		return "", fmt.Errorf("mount target %q: not a path below /", m.Target)
	}
	parts := strings.Split(rel, "/")
	p := root
	for i, part := range parts {
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		switch {
		case err == nil && fi.Mode()&os.ModeSymlink != 0:
			return "", fmt.Errorf("mount target %s passes through a symlink in the rootfs", m.Target)
		case err == nil:
			continue
		case !os.IsNotExist(err):
			return "", err
		}
		last := i == len(parts)-1
		if last && isFileBind(m) {
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil {
				return "", err
			}
			f.Close()
		} else if err := os.Mkdir(p, 0o755); err != nil {
			return "", err
		}
	}
	return p, nil
}

func isFileBind(m Mount) bool {
	if m.Type != "bind" && m.Flags&unix.MS_BIND == 0 {
		return false
	}
	fi, err := os.Stat(m.Source)
	return err == nil && !fi.IsDir()
}
