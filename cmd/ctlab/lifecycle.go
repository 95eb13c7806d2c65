package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/build"
	"github.com/ctlab/ctlab/sandbox/cgroups"
	"github.com/ctlab/ctlab/sandbox/image"
)

// imageRecord remembers which image a container runs (for stop's
// STOPSIGNAL); written beside ctlab's container state.
type imageRecord struct {
	Image      string `json:"image"`
	Digest     string `json:"digest"`
	StopSignal string `json:"stop_signal,omitempty"`
	Cwd        string `json:"cwd,omitempty"`
}

func imageRecordPath(name string) string {
	return filepath.Join(sandbox.RunDir, "images", name+".json")
}

// addLifecycleCommands adds docker's lifecycle commands and the image
// support of run (`ctlab run IMAGE [CMD...]`, -e) to root.
func addLifecycleCommands(root *cobra.Command) {
	for _, c := range root.Commands() {
		switch c.Name() {
		case "run":
			// docker: flags end at the image name; what follows is its command.
			c.Flags().SetInterspersed(false)
			c.Flags().StringArrayP("env", "e", nil, "with an IMAGE: set K=V in its environment (K alone: from this environment)")
			c.Use = "run [flags] IMAGE [CMD...] | run [flags] -- CMD [ARG...]"
			c.Long += `

With an IMAGE from ctlab's store (ctlab images), its layers (unpacked once in
/var/lib/ctlab/layers) are the overlay's lowerdirs, and the image's
ENTRYPOINT + CMD (or the CMD you give), ENV (plus -e) and WORKDIR are used.
With --net, ctlab ps and ctlab inspect show its address: curl http://ADDR/.`
			c.Example = "  sudo ctlab run -d --net --name web nginx:latest\n" + c.Example
			if f := c.Flags().Lookup("name"); f != nil {
				f.Usage += "; docker's grammar [a-zA-Z0-9][a-zA-Z0-9_.-]*: a name the kernel objects cannot carry (capitals) becomes lower case plus a hash suffix (see ctlab ps)"
			}
		case "ps":
			c.Flags().BoolP("all", "a", false, "accepted for docker compatibility: exited containers are always listed")
		}
	}
	root.AddCommand(&cobra.Command{
		Use: build.AsUserArg + " USER[:GROUP] -- CMD [ARG...]", Hidden: true, DisableFlagParsing: true,
		Short: "inside a container: switch to USER (the container's passwd/group), then exec CMD",
		RunE:  func(cmd *cobra.Command, args []string) error { return build.AsUser(args) },
	})
	root.AddCommand(newCreateCmd(), newStartCmd(), newRestartCmd(), newStopCmd(), newLogsCmd(), newTopCmd(), newCpCmd(), newInfoCmd())
}

// dockerName is docker's container-name grammar.
var dockerName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// kernelName maps a docker-style container name to the form ctlab's
// kernel objects can carry (cgroup and veth names, file names): lower case,
// at most 63 characters. A name that had to change gets a hash suffix, so
// "barsA" and "barsa" stay two containers: barsA is barsa-<8 hex>.
func kernelName(n string) string {
	if sandbox.ValidName(n) == nil || !dockerName.MatchString(n) {
		return n // already kernel-safe, or invalid (sandbox says why)
	}
	sum := sha256.Sum256([]byte(n))
	low := strings.ToLower(n)
	if len(low) > 54 {
		low = low[:54]
	}
	return low + "-" + hex.EncodeToString(sum[:4])
}

// applyImage turns `run IMAGE [CMD...]` into a container config. Without
// an image in the store (or with `-- CMD`), run keeps its rootfs behaviour.
func applyImage(cmd *cobra.Command, cfg *sandbox.Config, args []string) error {
	if cmd.Flags().Changed("name") {
		cfg.Name = kernelName(cfg.Name)
	}
	os.Remove(imageRecordPath(cfg.Name))
	if len(args) == 0 || cmd.ArgsLenAtDash() == 0 || cmd.Flags().Changed("rootfs") {
		return nil
	}
	if _, err := os.Stat(filepath.Join(image.StoreRoot, "index.json")); err != nil {
		return nil
	}
	s, err := openStore()
	if err != nil {
		return err
	}
	im, err := s.Open(args[0])
	if errors.Is(err, image.ErrNotInStore) {
		return nil
	} else if err != nil {
		return err
	}
	if cfg.Layers, err = s.Unpack(cmd.Context(), im); err != nil {
		return err
	}
	if !cmd.Flags().Changed("ns") {
		// Image layers are owned by the ids in their tars (root is 0): like
		// docker without userns-remap, no user namespace unless --ns asks.
		var nss []sandbox.Namespace
		for _, n := range cfg.Namespaces {
			if n != sandbox.NSUser {
				nss = append(nss, n)
			}
		}
		cfg.Namespaces = nss
	}
	c := im.Config.Config
	argv := append([]string(nil), c.Entrypoint...)
	if len(args) > 1 {
		argv = append(argv, args[1:]...)
	} else {
		argv = append(argv, c.Cmd...)
	}
	if len(argv) == 0 {
		return &sandbox.InputError{Problem: fmt.Sprintf("image %s has no ENTRYPOINT or CMD", args[0]), Fix: "give a command: ctlab run " + args[0] + " /bin/sh"}
	}
	cfg.Args, cfg.Cwd = argv, c.WorkingDir
	cfg.Env = append([]string(nil), c.Env...)
	extra, _ := cmd.Flags().GetStringArray("env")
	for _, kv := range extra {
		if !strings.Contains(kv, "=") {
			kv += "=" + os.Getenv(kv)
		}
		cfg.Env = append(cfg.Env, kv)
	}
	if wrapped := build.WrapUser(c.User, argv); len(wrapped) != len(argv) {
		if self, _ := cmd.Flags().GetBool("mount-ctlab"); !self {
			return &sandbox.InputError{Problem: fmt.Sprintf("image %s runs as USER %s, which needs /.ctlab/ctlab", args[0], c.User), Fix: "drop --mount-ctlab=false"}
		}
		cfg.MountSelf, cfg.Args = true, wrapped
	}
	rec, _ := json.Marshal(imageRecord{Image: args[0], Digest: im.Digest.String(), StopSignal: c.StopSignal, Cwd: c.WorkingDir})
	if err := os.MkdirAll(filepath.Dir(imageRecordPath(cfg.Name)), 0o700); err != nil {
		return err
	}
	return os.WriteFile(imageRecordPath(cfg.Name), rec, 0o600)
}

func loadContainer(name string) (*sandbox.Container, error) {
	c, err := sandbox.Load(kernelName(name))
	if err != nil {
		return nil, &sandbox.InputError{Problem: err.Error(), Fix: "see ctlab ps"}
	}
	return c, nil
}

func stopSignal(name string) (syscall.Signal, string) {
	var r imageRecord
	if b, err := os.ReadFile(imageRecordPath(name)); err == nil && json.Unmarshal(b, &r) == nil && r.StopSignal != "" {
		s := strings.TrimPrefix(strings.ToUpper(r.StopSignal), "SIG")
		if n, err := strconv.Atoi(s); err == nil {
			return syscall.Signal(n), r.StopSignal
		}
		if sig := unix.SignalNum("SIG" + s); sig != 0 {
			return sig, "SIG" + s
		}
	}
	return syscall.SIGTERM, "SIGTERM"
}

func newStopCmd() *cobra.Command {
	var secs int
	cmd := &cobra.Command{
		Use:   "stop [-t SECONDS] NAME...",
		Short: "Stop containers: the image's STOPSIGNAL (or SIGTERM), then SIGKILL",
		Long: `stop sends the container's init (pid 1 of its pid namespace) the image's
STOPSIGNAL, or SIGTERM, and waits up to -t seconds for it to exit; then it
sends SIGKILL, which pid 1 of a namespace cannot ignore (other signals only
arrive when pid 1 has a handler for them). The container stays listed as
exited until ctlab rm.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, n := range args {
				c, err := loadContainer(n)
				if err != nil {
					return err
				}
				if how := stopContainer(c, secs); how != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "%s (%s)\n", n, how)
				}
			}
			return nil
		},
	}
	cmd.Flags().IntVarP(&secs, "time", "t", 10, "seconds to wait before SIGKILL")
	return cmd
}

// stopContainer sends the stop signal, waits up to secs, then SIGKILL; it
// says what it sent ("" when the container was not running).
func stopContainer(c *sandbox.Container, secs int) string {
	if !c.Running() {
		return ""
	}
	sig, how := stopSignal(c.Name)
	_ = c.Kill(sig)
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	for c.Running() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if c.Running() {
		_ = c.Kill(syscall.SIGKILL)
		how += ", then SIGKILL after " + strconv.Itoa(secs) + "s"
		for i := 0; i < 100 && c.Running(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return how
}

func newLogsCmd() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs [-f] NAME",
		Short: "Print a detached container's output",
		Long: `logs prints the file a detached container's stdout and stderr go to
(/var/lib/ctlab/containers/NAME/log: the init's fds 1 and 2 are that file).
With -f it keeps printing until the container exits.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadContainer(args[0])
			if err != nil {
				return err
			}
			f, err := os.Open(filepath.Join(c.Dir, "log"))
			if err != nil {
				return &sandbox.InputError{Problem: fmt.Sprintf("%s has no log: only detached containers (run -d) write one", args[0])}
			}
			defer f.Close()
			for {
				if _, err := io.Copy(cmd.OutOrStdout(), f); err != nil {
					return err
				}
				if !follow || !c.Running() {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(100 * time.Millisecond):
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the container exits")
	return cmd
}

func newTopCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "top NAME",
		Short: "List a container's processes (from its cgroup)",
		Long: `top reads the container's cgroup (cgroup.procs) and shows each process as
the host sees it: host pid, its pid inside the container's pid namespace
(NSpid in /proc/PID/status), user and command line.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadContainer(args[0])
			if err != nil {
				return err
			}
			cg, err := cgroups.Open(c.Name)
			if err != nil {
				return err
			}
			pids, err := cg.Procs()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PID\tPID INSIDE\tUID\tCMD")
			for _, p := range pids {
				st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
				inner, uid := "?", "?"
				for _, l := range strings.Split(string(st), "\n") {
					if f := strings.Fields(l); len(f) > 1 && f[0] == "NSpid:" {
						inner = f[len(f)-1]
					} else if len(f) > 1 && f[0] == "Uid:" {
						uid = f[1]
					}
				}
				cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", p, inner, uid, strings.TrimSpace(strings.ReplaceAll(string(cl), "\x00", " ")))
			}
			return tw.Flush()
		},
	}
}

func newInfoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Show containers, images, cgroup version and storage paths",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, _ := sandbox.List()
			running := 0
			for _, c := range cs {
				if c.Running() {
					running++
				}
			}
			nimg := 0
			if _, err := os.Stat(filepath.Join(image.StoreRoot, "index.json")); err == nil {
				if s, err := openStore(); err == nil {
					all, _ := s.List()
					nimg = len(all)
				}
			}
			var u unix.Utsname
			_ = unix.Uname(&u)
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			for _, kv := range [][2]string{
				{"Containers", fmt.Sprintf("%d (running %d)", len(cs), running)},
				{"Images", strconv.Itoa(nimg)},
				{"Cgroup version", fmt.Sprint(cgroups.Effective())},
				{"Kernel", unix.ByteSliceToString(u.Release[:])},
				{"Image store", image.StoreRoot},
				{"Layer cache", image.DefaultCacheRoot},
				{"Container dirs", filepath.Join(sandbox.DataDir, "containers")},
				{"State", sandbox.RunDir},
			} {
				fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
			}
			return tw.Flush()
		},
	}
}

// inRoot resolves p inside the container's merged root (symlinks and ".."
// cannot leave it: openat2 RESOLVE_IN_ROOT) and returns the host path.
func inRoot(root, p string) (string, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(rfd)
	fd, err := unix.Openat2(rfd, strings.TrimPrefix(filepath.Clean("/"+p), "/"), &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	return os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
}

// copyTree copies src (file, symlink or directory tree, never following
// symlinks below src) to dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			return os.MkdirAll(target, fi.Mode().Perm())
		case fi.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		case fi.Mode().IsRegular():
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, fi.Mode().Perm())
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, in); err != nil {
				out.Close()
				return err
			}
			return out.Close()
		}
		return nil
	})
}

func newCpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cp NAME:PATH DEST | cp SRC NAME:PATH",
		Short: "Copy files out of or into a container",
		Long: `cp copies through the container's overlay mount on the host
(/var/lib/ctlab/containers/NAME/merged): paths inside the container are
resolved with openat2(RESOLVE_IN_ROOT), so a symlink in the container cannot
lead to a host file. Copied-in files land in the container's upperdir. Works
for running and exited containers (until ctlab rm).`,
		Example: `  sudo ctlab create --name art builder:latest && sudo ctlab cp art:/out/app ./app`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, dst := args[0], args[1]
			out := strings.Contains(src, ":") && !strings.HasPrefix(src, "/") && !strings.HasPrefix(src, ".")
			spec := dst
			if out {
				spec = src
			}
			name, p, ok := strings.Cut(spec, ":")
			if !ok {
				return usageError{errors.New("one of the two arguments must be NAME:PATH")}
			}
			c, err := loadContainer(name)
			if err != nil {
				s, serr := loadSaved(kernelName(name))
				if serr != nil {
					return err
				}
				if out {
					return cpCreated(s, p, dst, true)
				}
				return cpCreated(s, p, src, false)
			}
			if out {
				hp, err := inRoot(c.Layout.Merged, p)
				if err != nil {
					return &sandbox.InputError{Problem: fmt.Sprintf("%s:%s: %v", name, p, err)}
				}
				if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
					dst = filepath.Join(dst, filepath.Base(p))
				}
				return copyTree(hp, dst)
			}
			dir, err := inRoot(c.Layout.Merged, filepath.Dir(filepath.Clean("/"+p)))
			if err != nil {
				return &sandbox.InputError{Problem: fmt.Sprintf("%s:%s: %v", name, filepath.Dir(p), err)}
			}
			target := filepath.Join(dir, filepath.Base(p))
			if fi, err := os.Lstat(target); err == nil && fi.IsDir() {
				target = filepath.Join(target, filepath.Base(src))
			}
			return copyTree(src, target)
		},
	}
}
