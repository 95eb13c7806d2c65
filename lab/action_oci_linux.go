package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/image"
	"github.com/ctlab/ctlab/sandbox/kstate"
	"github.com/ctlab/ctlab/sandbox/oci"
)

// Real clients on ctlab's OCI runtime (bin/ctlab-oci): a private containerd
// whose runc v2 shim runs ctlab-oci instead of runc, and podman with
// --runtime. Everything they write lives under the scenario's lab
// directory (root, state, socket, podman's storage), journalled before it
// exists: the daemons and the processes they leave behind on purpose
// (shims and conmon re-parent themselves to PID 1) are killed by what
// they name (sandbox.IntendLabProcesses), the containers ctlab-oci makes
// are removed by name (sandbox.IntendLabContainer), at a reset and by
// `ctlab cleanup` after a killed run.

// ociLabs is each scenario's state of these actions, by scenario id.
var ociLabs = struct {
	sync.Mutex
	m map[string]*ociLab
}{m: map[string]*ociLab{}}

type ociLab struct {
	daemons map[string]*ctrDaemon // containerd actions by `as`
	tasks   map[string]*ociTask   // ctr_run, ctr_exec, podman_run by `as`
	podman  string                // podman's directory once made
	loaded  map[string]string     // "<client>/<image>" -> the name the client knows it by
}

type ctrDaemon struct {
	dir, sock, runcRoot string
}

// ociTask is a container (or exec) a client made: the OCI id the runtime
// was called with, and when, so a call log line older than it is not it.
type ociTask struct {
	id, daemon string
	since      time.Time
}

func (e *Engine) ociLab() *ociLab {
	ociLabs.Lock()
	defer ociLabs.Unlock()
	l := ociLabs.m[e.s.ID]
	if l == nil {
		l = &ociLab{daemons: map[string]*ctrDaemon{}, tasks: map[string]*ociTask{}, loaded: map[string]string{}}
		ociLabs.m[e.s.ID] = l
	}
	return l
}

func (e *Engine) ociDaemon(name string) (*ctrDaemon, error) {
	ociLabs.Lock()
	defer ociLabs.Unlock()
	if d := ociLabs.m[e.s.ID].daemonOrNil(name); d != nil {
		return d, nil
	}
	return nil, fmt.Errorf("containerd %s is not running (not started yet?)", name)
}

func (l *ociLab) daemonOrNil(name string) *ctrDaemon {
	if l == nil {
		return nil
	}
	return l.daemons[name]
}

func (e *Engine) ociTask(name string) (*ociTask, error) {
	ociLabs.Lock()
	defer ociLabs.Unlock()
	if l := ociLabs.m[e.s.ID]; l != nil && l.tasks[name] != nil {
		return l.tasks[name], nil
	}
	return nil, fmt.Errorf("%s was not started by ctr_run, ctr_exec or podman_run", name)
}

// stopOCI kills the scenario's daemons and the containers they made, and
// detaches their mounts, before a reset removes the lab directory.
func (e *Engine) stopOCI(ctx context.Context) error {
	ociLabs.Lock()
	delete(ociLabs.m, e.s.ID)
	ociLabs.Unlock()
	return sandbox.StopLabDaemons(ctx, e.s.ID)
}

// ociRuntime is the path of ctlab-oci: beside the running ctlab (a build
// tree's bin/, the package's /usr/bin), else on PATH.
func ociRuntime() (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "ctlab-oci")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	p, err := exec.LookPath("ctlab-oci")
	if err != nil {
		return "", fmt.Errorf("ctlab's OCI runtime: %w (make build puts it beside bin/ctlab)", err)
	}
	return filepath.Abs(p)
}

// runTool runs a client command and returns its output; a failure carries it.
func runTool(ctx context.Context, timeout time.Duration, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := &limitedBuffer{max: maxOutput}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// nameHostProc makes pid a check target (a process the lab did not fork).
func (e *Engine) nameHostProc(as string, pid int) error {
	st, err := kstate.ReadStat(pid)
	if err != nil {
		return fmt.Errorf("pid %d: %w", pid, err)
	}
	e.mu.Lock()
	e.hostProcs[as] = &hostProc{pid: pid, start: st.Start}
	e.mu.Unlock()
	return nil
}

// ContainerdStart starts a private containerd: root, state, socket and
// config under /var/lib/ctlab/lab/<scenario>/<as>/.
type ContainerdStart struct {
	As string `yaml:"as" json:"as"`
}

func (a *ContainerdStart) validate(v *validator) {
	if a.As == "" {
		v.errf("needs as (its directory's name and the name checks use)")
	}
	v.newName(a.As)
}

func (a *ContainerdStart) do(ctx context.Context, e *Engine) (string, *int, error) {
	d := &ctrDaemon{dir: filepath.Join(e.labDir(), a.As)}
	d.sock, d.runcRoot = filepath.Join(d.dir, "containerd.sock"), filepath.Join(d.dir, "runc")
	if err := sandbox.MakeLabDir(e.s.ID, d.dir); err != nil {
		return "", nil, err
	}
	if err := sandbox.IntendLabProcesses(e.s.ID, d.dir); err != nil {
		return "", nil, err
	}
	config := fmt.Sprintf(`# ctlab: a private containerd for the lesson %s
version = 2
root = %q
state = %q
# no Kubernetes here: ctr talks to containerd's own API
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %q
`, e.s.ID, filepath.Join(d.dir, "root"), filepath.Join(d.dir, "state"), d.sock)
	cfg := filepath.Join(d.dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		return "", nil, fmt.Errorf("containerd: %w", err)
	}
	logf, err := os.Create(filepath.Join(d.dir, "containerd.log"))
	if err != nil {
		return "", nil, fmt.Errorf("containerd: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command("containerd", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // a daemon: not in the lesson's terminal
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("containerd: %w", err)
	}
	go cmd.Wait() // reap it when the reset kills it
	if err := e.nameHostProc(a.As, cmd.Process.Pid); err != nil {
		return "", nil, err
	}
	var out string
	for try := 0; ; try++ {
		if out, err = runTool(ctx, 5*time.Second, "ctr", "-a", d.sock, "version"); err == nil {
			break
		}
		if try == 100 {
			return "", nil, fmt.Errorf("containerd did not answer on %s: %w", d.sock, err)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return "", nil, err
		}
	}
	l := e.ociLab()
	ociLabs.Lock()
	l.daemons[a.As] = d
	ociLabs.Unlock()
	return fmt.Sprintf("containerd --config %s (pid %d)\n%s\n$ ctr -a %s version\n%s", cfg, cmd.Process.Pid, config, d.sock, out), nil, nil
}

// loadImage saves a store image as a docker archive in dir (once) and has
// the client import it: ctr images import / podman load. It returns the
// name the client knows the image by.
func (e *Engine) loadImage(ctx context.Context, dir, client string, argv []string, img string) (string, error) {
	key, l := client+"/"+img, e.ociLab()
	ociLabs.Lock()
	name := l.loaded[key]
	ociLabs.Unlock()
	if name != "" {
		return name, nil
	}
	s, err := image.OpenStore("", nil)
	if err != nil {
		return "", err
	}
	tar := filepath.Join(dir, img+".tar")
	if _, err := os.Stat(tar); err != nil {
		if err := s.Save(ctx, []string{e.imageName(img)}, image.SaveDockerArchive, tar); err != nil {
			return "", err
		}
	}
	out, err := runTool(ctx, 2*time.Minute, append(argv, tar)...)
	if err != nil {
		return "", err
	}
	// ctr: "unpacking docker.io/library/NAME:latest (sha256:...)...done";
	// podman: "Loaded image: localhost/NAME:latest".
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, "unpacking "); ok {
			name, _, _ = strings.Cut(rest, " ")
		} else if rest, ok := strings.CutPrefix(l, "Loaded image: "); ok {
			name = strings.TrimSpace(rest)
		}
	}
	if name == "" {
		return "", fmt.Errorf("%s: no image name in: %s", strings.Join(argv, " "), out)
	}
	ociLabs.Lock()
	l.loaded[key] = name
	ociLabs.Unlock()
	return name, nil
}

// CtrRun is `ctr run -d --runc-binary ctlab-oci`: the image (a scenario
// image) imported into the private containerd, a container started by its
// runc v2 shim. As names the container's init, ShimAs its shim.
type CtrRun struct {
	Containerd string   `yaml:"containerd" json:"containerd"`
	Image      string   `yaml:"image" json:"image"`
	As         string   `yaml:"as" json:"as"`
	Argv       []string `yaml:"argv" json:"argv"`
	ShimAs     string   `yaml:"shim_as,omitempty" json:"shim_as,omitempty"`
}

func (a *CtrRun) validate(v *validator) {
	validateRun(v, a.Argv, a.As, "the container's id")
	v.target(a.Containerd, "process")
	v.target(a.Image, "image")
	v.newName(a.ShimAs)
}

// validateRun checks what every client action has: a command and as, the
// name it defines (what, and the name checks use).
func validateRun(v *validator, argv []string, as, what string) {
	v.argv(argv)
	if as == "" {
		v.errf("needs as (%s and the name checks use)", what)
	}
	v.newName(as)
}

func (a *CtrRun) do(ctx context.Context, e *Engine) (string, *int, error) {
	d, err := e.ociDaemon(a.Containerd)
	if err != nil {
		return "", nil, err
	}
	rt, err := ociRuntime()
	if err != nil {
		return "", nil, err
	}
	ctr := []string{"ctr", "-a", d.sock}
	img, err := e.loadImage(ctx, d.dir, "ctr:"+a.Containerd, append(slices.Clone(ctr), "images", "import"), a.Image)
	if err != nil {
		return "", nil, err
	}
	// The shim calls the runtime with --root <runc-root>/<namespace>.
	name := (&oci.Runtime{Root: filepath.Join(d.runcRoot, "default")}).SandboxName(a.As)
	if err := sandbox.IntendLabContainer(e.s.ID, name); err != nil {
		return "", nil, err
	}
	pidfile := filepath.Join(d.dir, a.As+".pid")
	// ctr's stdio fifos go under the lab dir too (default: /run/containerd/fifo).
	argv := append(slices.Clone(ctr), "run", "-d", "--fifo-dir", filepath.Join(d.dir, "fifo"), "--runc-binary", rt,
		"--runc-root", d.runcRoot, "--pid-file", pidfile, img, a.As)
	since := time.Now()
	out, err := runTool(ctx, time.Minute, append(argv, a.Argv...)...)
	if err != nil {
		return out, nil, err
	}
	e.ociLab().setTask(a.As, &ociTask{id: a.As, daemon: a.Containerd, since: since})
	msg, err := e.namePidfile(a.As, a.ShimAs, pidfile)
	return "$ " + strings.Join(append(argv, a.Argv...), " ") + "\n" + out + msg, nil, err
}

func (l *ociLab) setTask(as string, t *ociTask) {
	ociLabs.Lock()
	l.tasks[as] = t
	ociLabs.Unlock()
}

// namePidfile names the pid a client wrote, and its parent (parentAs).
func (e *Engine) namePidfile(as, parentAs, pidfile string) (string, error) {
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return "", err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return "", fmt.Errorf("%s: %q is not a pid", pidfile, b)
	}
	return e.nameWithParent(as, parentAs, pid)
}

// nameWithParent names pid as, and its parent parentAs (when given).
func (e *Engine) nameWithParent(as, parentAs string, pid int) (string, error) {
	if err := e.nameHostProc(as, pid); err != nil {
		return "", err
	}
	msg := fmt.Sprintf("%s = pid %d", as, pid)
	if parentAs != "" {
		par, err := kstate.Parent(pid)
		if err != nil {
			return msg, fmt.Errorf("parent of %d: %w", pid, err)
		}
		if err := e.nameHostProc(parentAs, par.Pid); err != nil {
			return msg, err
		}
		msg += fmt.Sprintf(", %s = its parent, pid %d (%s)", parentAs, par.Pid, par.Comm)
	}
	return msg + "\n", nil
}

// CtrExec is `ctr task exec -d`: a process started in a running task by the
// same shim (which calls the runtime's exec). As names the new process.
type CtrExec struct {
	Containerd string   `yaml:"containerd" json:"containerd"`
	In         string   `yaml:"in" json:"in"`
	As         string   `yaml:"as" json:"as"`
	Argv       []string `yaml:"argv" json:"argv"`
}

func (a *CtrExec) validate(v *validator) {
	validateRun(v, a.Argv, a.As, "the exec id")
	v.target(a.Containerd, "process")
	v.target(a.In, "process")
}

func (a *CtrExec) do(ctx context.Context, e *Engine) (string, *int, error) {
	d, err := e.ociDaemon(a.Containerd)
	if err != nil {
		return "", nil, err
	}
	t, err := e.ociTask(a.In)
	if err != nil {
		return "", nil, err
	}
	ctr := []string{"ctr", "-a", d.sock}
	before, err := taskPids(ctx, ctr, t.id)
	if err != nil {
		return "", nil, err
	}
	argv := append(append(slices.Clone(ctr), "task", "exec", "-d", "--fifo-dir", filepath.Join(d.dir, "fifo"), "--exec-id", a.As, t.id), a.Argv...)
	since := time.Now()
	out, err := runTool(ctx, time.Minute, argv...)
	if err != nil {
		return out, nil, err
	}
	e.ociLab().setTask(a.As, &ociTask{id: t.id, daemon: a.Containerd, since: since})
	pid, err := execedPid(ctx, ctr, t.id, before, a.Argv)
	if err != nil {
		return out, nil, err
	}
	msg, err := e.nameWithParent(a.As, "", pid)
	return "$ " + strings.Join(argv, " ") + "\n" + out + msg, nil, err
}

// execedPid finds the exec'd process: the task's new pid (`ctr task ps`)
// running argv. A runtime may keep a helper of its own beside it, and the
// process may not have called execve yet when ctr returns: ask again for
// a few seconds.
func execedPid(ctx context.Context, ctr []string, id string, before []int, argv []string) (int, error) {
	for try := 0; ; try++ {
		after, err := taskPids(ctx, ctr, id)
		if err != nil {
			return 0, err
		}
		var fresh []int
		for _, p := range after {
			if !slices.Contains(before, p) && slices.Equal(cmdline(p), argv) {
				fresh = append(fresh, p)
			}
		}
		if len(fresh) == 1 {
			return fresh[0], nil
		}
		if try == 50 {
			return 0, fmt.Errorf("ctr task ps %s: %d new processes running %q after the exec, want 1", id, len(fresh), argv)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// taskPids lists the pids `ctr task ps ID` shows (PID column).
func taskPids(ctx context.Context, ctr []string, id string) ([]int, error) {
	out, err := runTool(ctx, 30*time.Second, append(slices.Clone(ctr), "task", "ps", id)...)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) > 0 {
			if p, err := strconv.Atoi(f[0]); err == nil {
				pids = append(pids, p)
			}
		}
	}
	return pids, nil
}

// PodmanRun is `podman run -d --runtime RUNTIME`: podman's storage under
// /var/lib/ctlab/lab/<scenario>/podman/, the container's cgroups under
// /ctlab-podman-<scenario>. Runtime is ctlab (ctlab-oci) or runc. As
// names the container's init (podman's State.Pid), ConmonAs its conmon.
type PodmanRun struct {
	Image    string   `yaml:"image" json:"image"`
	As       string   `yaml:"as" json:"as"`
	Argv     []string `yaml:"argv" json:"argv"`
	Runtime  string   `yaml:"runtime,omitempty" json:"runtime,omitempty" vocab:"ctlab"`
	ConmonAs string   `yaml:"conmon_as,omitempty" json:"conmon_as,omitempty"`
}

func (a *PodmanRun) validate(v *validator) {
	validateRun(v, a.Argv, a.As, "the container's name")
	v.target(a.Image, "image")
	switch a.Runtime {
	case "":
		a.Runtime = "ctlab"
	case "ctlab", "runc":
	default:
		v.errf("runtime %q: want ctlab or runc", a.Runtime)
	}
	v.newName(a.ConmonAs)
}

// podman is podman's command line with the lesson's storage, made (and
// journalled) the first time. Each runtime keeps its containers' records
// under the lab directory too (--runtime-flag root=...), so a reset
// removes them with it.
func (e *Engine) podman(runtime string) ([]string, error) {
	l := e.ociLab()
	dir := filepath.Join(e.labDir(), "podman")
	ociLabs.Lock()
	made := l.podman != ""
	ociLabs.Unlock()
	if !made {
		if err := sandbox.MakeLabDir(e.s.ID, dir); err != nil {
			return nil, err
		}
		if err := sandbox.IntendLabProcesses(e.s.ID, dir); err != nil {
			return nil, err
		}
		if err := sandbox.IntendCgroupPath(e.s.ID, "/ctlab-podman-"+e.s.ID); err != nil {
			return nil, err
		}
		ociLabs.Lock()
		l.podman = dir
		ociLabs.Unlock()
	}
	return []string{"podman", "--root", filepath.Join(dir, "storage"), "--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp"), "--cgroup-manager", "cgroupfs", "--events-backend", "file",
		"--runtime-flag", "root=" + podmanRuntimeRoot(dir, runtime)}, nil
}

func podmanRuntimeRoot(dir, runtime string) string { return filepath.Join(dir, runtime+"-root") }

func (a *PodmanRun) do(ctx context.Context, e *Engine) (string, *int, error) {
	p, err := e.podman(a.Runtime)
	if err != nil {
		return "", nil, err
	}
	rt := "runc"
	if a.Runtime == "ctlab" {
		if rt, err = ociRuntime(); err != nil {
			return "", nil, err
		}
	}
	img, err := e.loadImage(ctx, filepath.Join(e.labDir(), "podman"), "podman", append(slices.Clone(p), "load", "-i"), a.Image)
	if err != nil {
		return "", nil, err
	}
	// create, then start: the OCI id is known (and journalled) before the
	// runtime is first called. This host's hard limits are below podman's
	// default ulimits (library-notes), hence --ulimit.
	create := append(slices.Clone(p), "create", "--runtime", rt, "--name", a.As, "--network", "none",
		"--cgroup-parent", "/ctlab-podman-"+e.s.ID, "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", img)
	create = append(create, a.Argv...)
	out, err := runTool(ctx, time.Minute, create...)
	if err != nil {
		return out, nil, err
	}
	id := strings.TrimSpace(out)
	if a.Runtime == "ctlab" {
		rt := &oci.Runtime{Root: podmanRuntimeRoot(filepath.Join(e.labDir(), "podman"), a.Runtime)}
		if err := sandbox.IntendLabContainer(e.s.ID, rt.SandboxName(id)); err != nil {
			return out, nil, err
		}
	}
	since := time.Now()
	if o, err := runTool(ctx, time.Minute, append(slices.Clone(p), "start", a.As)...); err != nil {
		return out + o, nil, err
	}
	e.ociLab().setTask(a.As, &ociTask{id: id, since: since})
	pids, err := runTool(ctx, 30*time.Second, append(slices.Clone(p), "inspect", "--format", "{{.State.Pid}}", a.As)...)
	if err != nil {
		return out, nil, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(pids))
	if err != nil {
		return out, nil, fmt.Errorf("podman inspect: pid %q", pids)
	}
	msg, err := e.nameWithParent(a.As, a.ConmonAs, pid)
	return "$ " + strings.Join(create, " ") + "\n" + out + "$ podman start " + a.As + "\n" + msg, nil, err
}
