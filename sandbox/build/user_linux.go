package build

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// AsUserArg is the ctlab subcommand that switches to an image's USER
// inside the container and execs the command: RUN after USER, and
// `ctlab run` of an image with a USER. The container's init execs
// /.ctlab/ctlab (the ctlab binary, bind-mounted read-only):
//
//	/.ctlab/ctlab as-user USER[:GROUP] -- CMD [ARG...]
const AsUserArg = "as-user"

// SelfPath is where the sandbox bind-mounts the ctlab binary.
const SelfPath = "/.ctlab/ctlab"

// WrapUser returns argv run as user (unchanged for root or "").
func WrapUser(user string, argv []string) []string {
	if user == "" || user == "root" || user == "0" || user == "0:0" {
		return argv
	}
	return append([]string{SelfPath, AsUserArg, user, "--"}, argv...)
}

// AsUser is the as-user subcommand: it resolves USER[:GROUP] with the
// container's own /etc/passwd and /etc/group (numbers as they are), sets
// the supplementary groups, gid and uid (in that order: after setuid the
// others are no longer allowed), and execs argv with PATH lookup.
func AsUser(args []string) error {
	if len(args) < 3 || args[1] != "--" {
		return fmt.Errorf("usage: %s USER[:GROUP] -- CMD [ARG...]", AsUserArg)
	}
	uid, gid, groups, home, err := resolveUser(args[0])
	if err != nil {
		return err
	}
	argv := args[2:]
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("setgid %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid %d: %w", uid, err)
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return fmt.Errorf("%s: %w", argv[0], err)
	}
	env := os.Environ()
	if h := os.Getenv("HOME"); home != "" && (h == "" || h == "/root") {
		env = setEnv(env, "HOME", home)
	}
	return syscall.Exec(path, argv, env)
}

func resolveUser(spec string) (uid, gid int, groups []int, home string, err error) {
	u, g, hasG := strings.Cut(spec, ":")
	passwd, _ := os.ReadFile("/etc/passwd")
	uid, gid = -1, -1
	for _, l := range strings.Split(string(passwd), "\n") {
		f := strings.Split(l, ":")
		if len(f) < 6 || (f[0] != u && f[2] != u) {
			continue
		}
		uid, _ = strconv.Atoi(f[2])
		gid, _ = strconv.Atoi(f[3])
		home = f[5]
		break
	}
	if uid < 0 {
		if uid, err = strconv.Atoi(u); err != nil || uid < 0 {
			return 0, 0, nil, "", fmt.Errorf("unable to find user %s: no matching entries in passwd file", u)
		}
		gid = uid
	}
	group, _ := os.ReadFile("/etc/group")
	if hasG {
		if gid, err = strconv.Atoi(g); err != nil {
			gid = -1
			for _, l := range strings.Split(string(group), "\n") {
				if f := strings.Split(l, ":"); len(f) >= 3 && f[0] == g {
					gid, _ = strconv.Atoi(f[2])
				}
			}
			if gid < 0 {
				return 0, 0, nil, "", fmt.Errorf("unable to find group %s", g)
			}
		}
	}
	groups = []int{gid}
	for _, l := range strings.Split(string(group), "\n") {
		f := strings.Split(l, ":")
		if len(f) < 4 {
			continue
		}
		for _, m := range strings.Split(f[3], ",") {
			if m != "" && m == u {
				if n, err := strconv.Atoi(f[2]); err == nil && n != gid {
					groups = append(groups, n)
				}
			}
		}
	}
	return uid, gid, groups, home, nil
}
