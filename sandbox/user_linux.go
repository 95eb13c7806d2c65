package sandbox

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// IDs are the credentials a container's command runs with: the image's
// USER, resolved against the image's own /etc/passwd and /etc/group.
type IDs struct {
	UID    int   `json:"uid"`
	GID    int   `json:"gid"`
	Groups []int `json:"groups,omitempty"`
}

// maxIDFile bounds what is read of the image's /etc/passwd and /etc/group.
const maxIDFile = 1 << 20

// resolveUser turns an image's USER ("name", "uid", "name:group",
// "uid:gid") into ids, reading /etc/passwd and /etc/group of the rootfs at
// root itself: never os/user (which would read the host's files, or call
// NSS), resolved inside the root (RESOLVE_IN_ROOT, so a symlinked
// /etc/passwd stays in the image), regular files only, bounded. An empty
// spec is root. In a user namespace the ids must be mapped.
func resolveUser(root, spec string, userns bool) (*IDs, error) {
	if spec == "" {
		return nil, nil
	}
	user, group, hasGroup := strings.Cut(spec, ":")
	passwd, err := readInRoot(root, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	groupFile, err := readInRoot(root, "/etc/group")
	if err != nil {
		return nil, err
	}
	ids := &IDs{UID: -1}
	name := ""
	for _, f := range idLines(passwd, 7) {
		if f[0] == user || f[2] == user {
			uid, err1 := strconv.Atoi(f[2])
			gid, err2 := strconv.Atoi(f[3])
			if err1 == nil && err2 == nil {
				ids.UID, ids.GID, name = uid, gid, f[0]
				break
			}
		}
	}
	if ids.UID < 0 {
		uid, err := strconv.Atoi(user)
		if err != nil || uid < 0 {
			return nil, &InputError{Problem: fmt.Sprintf("USER %q: no such user in the image's /etc/passwd", user), Fix: "use a user the image defines, or a numeric uid"}
		}
		ids.UID, ids.GID = uid, 0
	}
	if hasGroup {
		ids.GID = -1
		for _, f := range idLines(groupFile, 4) {
			if f[0] == group || f[2] == group {
				if gid, err := strconv.Atoi(f[2]); err == nil {
					ids.GID = gid
					break
				}
			}
		}
		if ids.GID < 0 {
			gid, err := strconv.Atoi(group)
			if err != nil || gid < 0 {
				return nil, &InputError{Problem: fmt.Sprintf("USER %q: no such group in the image's /etc/group", spec), Fix: "use a group the image defines, or a numeric gid"}
			}
			ids.GID = gid
		}
	}
	ids.Groups = []int{ids.GID}
	if name != "" {
		for _, f := range idLines(groupFile, 4) {
			gid, err := strconv.Atoi(f[2])
			if err == nil && gid != ids.GID && memberOf(f[3], name) {
				ids.Groups = append(ids.Groups, gid)
			}
		}
	}
	for _, id := range append([]int{ids.UID}, ids.Groups...) {
		if id > 1<<31-2 || userns && id >= IDRange {
			return nil, &InputError{Problem: fmt.Sprintf("USER %q: id %d is outside the container's id range", spec, id), Fix: fmt.Sprintf("use ids below %d", IDRange)}
		}
	}
	return ids, nil
}

func memberOf(list, name string) bool {
	for _, m := range strings.Split(list, ",") {
		if m == name {
			return true
		}
	}
	return false
}

// idLines splits a passwd/group file into lines of at least n fields;
// comments and short lines are skipped.
func idLines(b []byte, n int) [][]string {
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), maxIDFile)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Split(line, ":"); len(f) >= n {
			out = append(out, f)
		}
	}
	return out
}

// readInRoot reads name resolved inside root: a regular file of at most
// maxIDFile bytes, opened without blocking (a FIFO or device is refused
// before any read). A missing file reads empty.
func readInRoot(root, name string) ([]byte, error) {
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs: %w", err)
	}
	defer unix.Close(dir)
	fd, err := unix.Openat2(dir, name, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if err == unix.ENOENT {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open the image's %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxIDFile {
		return nil, &InputError{Problem: fmt.Sprintf("the image's %s is not a regular file of at most %d bytes", name, maxIDFile)}
	}
	return io.ReadAll(io.LimitReader(f, maxIDFile))
}
