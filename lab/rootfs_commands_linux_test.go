package lab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ctlab/ctlab/sandbox/rootfs"
)

// Many learners' VMs have no /bin/busybox: the default rootfs is then built
// from the host's own binaries (rootfs.HostBinaries). The build host and the
// busybox VM both have busybox, so without these tests a lesson that needs a
// command the host list lacks (mknod in cg-devices did) passes every suite
// and fails for the learner.

// hideBusybox makes the default rootfs kind resolve to "host" for the rest
// of the test, as on a VM without busybox.
func hideBusybox(t *testing.T) {
	t.Helper()
	old := rootfs.BusyboxPath
	rootfs.BusyboxPath = filepath.Join(t.TempDir(), "no-busybox")
	t.Cleanup(func() { rootfs.BusyboxPath = old })
	t.Setenv(rootfs.NoBusyboxEnv, "1")
	if k, err := rootfs.ResolveKind(rootfs.KindDefault); err != nil || k != rootfs.KindHost {
		t.Fatalf("with busybox hidden the default rootfs is %q (%v), want host", k, err)
	}
}

// TestShippedScenariosWithoutBusybox runs every shipped scenario's self-test
// (checks fail before, pass after each step's do/solve) on the rootfs a
// learner's VM without busybox gets.
func TestShippedScenariosWithoutBusybox(t *testing.T) {
	needRoot(t)
	if testing.Short() {
		t.Skip("-short: runs every shipped scenario (tens of seconds)")
	}
	hideBusybox(t)
	selfTestShipped(t, func(s *Scenario) string {
		// Preflight looks busybox up on the real host's PATH; on a VM
		// without it the lesson says "needs busybox" instead.
		for _, b := range s.Requires.Binaries {
			alts := strings.Split(b, "|")
			if !slices.Contains(alts, "busybox") {
				continue
			}
			other := false
			for _, a := range alts {
				if _, err := exec.LookPath(a); a != "busybox" && err == nil {
					other = true
				}
			}
			if !other {
				return s.ID + " requires " + b + " (requires.binaries): a host without busybox or its alternative cannot run it"
			}
		}
		return ""
	})
}

// hostSideCommands are commands lessons name that the learner runs on the
// host (or that only describe the host side), never in a container's shell:
// the container rootfs need not have them. Everything else a lesson tells the
// learner to type must exist in the rootfs.
var hostSideCommands = map[string]string{
	"ctlab": "the lab itself", "docker": "a host runtime", "podman": "a host runtime",
	"runc": "a host runtime", "crun": "a host runtime", "ctr": "containerd's client",
	"crictl": "CRI client", "nerdctl": "containerd's client", "containerd": "a daemon",
	"ctlab-oci": "ctlab's OCI runtime, called by containerd's shim and podman on the host",
	"kubectl":   "Kubernetes client", "kubelet": "a daemon", "buildah": "image builder",
	"skopeo": "image tool", "umoci": "image tool", "systemctl": "systemd on the host",
	"systemd-run": "systemd on the host", "systemd-cgls": "systemd on the host",
	"systemd-cgtop": "systemd on the host", "journalctl": "systemd on the host",
	"machinectl": "systemd on the host", "busctl": "systemd on the host",
	"bpftool": "host debugging tool", "apt-get": "host package manager", "apt": "host package manager",
	"sudo": "host privilege", "lsmod": "host kernel modules", "modprobe": "host kernel modules",
	"tmux": "the learner's terminal", "go": "toolchain", "make": "toolchain", "git": "toolchain",
	"strace": "host debugging tool", "cgcreate": "libcgroup on the host", "cgexec": "libcgroup on the host",
	"iptables": "host firewall", "nft": "host firewall", "tar": "image layers on the host",
	"jq": "host JSON tool", "curl": "host HTTP client", "dockerd": "a daemon", "conmon": "podman's monitor",
	"ls-remote": "", "newuidmap": "host setuid helper", "newgidmap": "host setuid helper",
	"brctl": "host bridge tool", "ethtool": "host NIC tool", "tc": "host traffic control",
	"dmesg": "the host's kernel log", "perf": "host profiler", "vmstat": "host statistics",
	"lscgroup": "libcgroup on the host", "cgget": "libcgroup on the host", "gcc": "toolchain",
	"systemd": "the host's PID 1",
}

// shellWords are builtins and keywords: sh has them whatever /bin holds.
var shellWords = map[string]bool{
	"cd": true, "echo": true, "export": true, "set": true, "exit": true, "for": true, "while": true,
	"if": true, "read": true, "exec": true, "trap": true, "wait": true, "jobs": true, "fg": true,
	"bg": true, "unset": true, "type": true, "ulimit": true, "umask": true, "source": true, ".": true,
	"alias": true, "do": true, "done": true, "then": true, "fi": true, "case": true, "esac": true,
	"until": true, "printf": true, "test": true, "[": true, "kill": true, "true": true, "false": true,
	"pwd": true, "command": true, "eval": true, "shift": true, "return": true, "local": true,
	// a keyword of bash, which is /bin/sh in the host rootfs whenever the host has bash
	"time": true,
}

var (
	codeSpanRe = regexp.MustCompile("`([^`\n]+)`")
	promptRe   = regexp.MustCompile(`^\s*(?:[\w@.:~/-]*[#$]\s+|/ #\s+)`)
	commandRe  = regexp.MustCompile(`^[a-z][a-z0-9_.+-]*$`)
)

// typedCommands returns the command lines of a lesson text: code spans, and
// the lines of fenced and indented code blocks, with any prompt stripped.
func typedCommands(md string) []string {
	var out []string
	inFence := false
	for _, line := range strings.Split(md, "\n") {
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "```") {
			inFence = !inFence
			continue
		}
		if inFence || (strings.HasPrefix(line, "    ") && trim != "" && !strings.HasPrefix(trim, "-") && !strings.HasPrefix(trim, "|")) {
			out = append(out, trim)
			continue
		}
		for _, m := range codeSpanRe.FindAllStringSubmatch(line, -1) {
			// A lone word in prose (`init`, `top`, `w`) names a thing;
			// a command to type comes with its arguments.
			if len(strings.Fields(m[1])) > 1 {
				out = append(out, m[1])
			}
		}
	}
	for i, c := range out {
		out[i] = promptRe.ReplaceAllString(c, "")
	}
	return out
}

// commandName returns the first word of a command line when it names a
// command somewhere (the host PATH, busybox, or the host-side list), so
// that code spans such as `c 1:3 rwm` or `EPERM` are not taken for one.
// Only the first command of a pipeline or list is returned: the rest are
// checked when a lesson spells them out on their own.
func commandName(line string, known func(string) bool) (string, bool) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return "", false // diagrams (| +--) and prose start with something else
	}
	name := f[0]
	if !commandRe.MatchString(name) {
		return "", false
	}
	if shellWords[name] || hostSideCommands[name] != "" || known(name) {
		return name, true
	}
	return "", false
}

// TestLessonCommandsInHostRootfs extracts the commands that the step texts
// (with the content sections they show) and hints tell the learner to type,
// and asserts each exists in the rootfs built without busybox, or is a
// command the learner runs on the host (hostSideCommands).
func TestLessonCommandsInHostRootfs(t *testing.T) {
	hideBusybox(t)
	dir, err := rootfs.Ensure(context.Background(), rootfs.KindDefault, t.TempDir(), rootfs.Owner{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := rootfs.Describe(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != rootfs.KindHost {
		t.Fatalf("default rootfs with busybox hidden is %s, want host", info.Kind)
	}
	inRootfs := map[string]bool{}
	for _, b := range info.Binaries {
		inRootfs[b] = true
	}
	onHost := func(name string) bool {
		_, err := exec.LookPath(name)
		return err == nil || inRootfs[name]
	}
	list, err := Shipped()
	if err != nil {
		t.Fatal(err)
	}
	l := NewLoader()
	missing := map[string][]string{} // command -> where
	seen := 0
	for _, s := range list {
		for _, st := range s.Steps {
			for _, lang := range []string{"en", "zh"} {
				texts := []string{l.StepText(st, lang)}
				for _, h := range st.Hints {
					texts = append(texts, h.In(lang))
				}
				for _, text := range texts {
					for _, line := range typedCommands(text) {
						name, ok := commandName(line, onHost)
						if !ok {
							continue
						}
						seen++
						if inRootfs[name] || shellWords[name] || hostSideCommands[name] != "" {
							continue
						}
						where := s.ID + "/" + st.ID + ": " + line
						missing[name] = append(missing[name], where)
					}
				}
			}
		}
	}
	if seen < 50 {
		t.Fatalf("only %d command lines found in the lessons: the extraction is broken", seen)
	}
	names := make([]string, 0, len(missing))
	for n := range missing {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Errorf("%q is not in the rootfs a VM without busybox gets (add it to rootfs.HostBinaries, or to hostSideCommands if the learner types it on the host); first use: %s", n, missing[n][0])
	}
	t.Logf("%d command lines checked against %d binaries in %s (%s)", seen, len(info.Binaries), dir, os.Getenv(rootfs.NoBusyboxEnv))
}
