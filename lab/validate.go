package lab

import (
	"fmt"
	"io/fs"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"
)

var (
	idRE        = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)
	nameRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,19}$`)
	kernelRE    = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)
	hostnameRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$`)
	nsKinds     = []string{"mnt", "uts", "ipc", "pid", "net", "user", "cgroup", "time"}
	nsCompare   = append(slices.Clone(nsKinds), "pid_for_children", "time_for_children")
	controllers = []string{"cpu", "cpuacct", "cpuset", "memory", "pids", "freezer", "io", "blkio", "devices", "hugetlb"}
	ops         = []string{"==", "!=", "<=", ">=", "<", ">", "contains"}
	loadKinds   = []string{"cpu", "mem", "fork", "io", "count", "shm"}
	rootfsKinds = []string{"", "default", "busybox", "host"}
	signals     = []string{"", "KILL", "TERM", "INT", "HUP", "STOP", "CONT", "USR1", "USR2"}
)

// validator checks everything the type system cannot: one kind per
// action/check, names resolved in order, content pages present.
type validator struct {
	s        *Scenario
	root     *yaml.Node
	content  fs.FS
	file     string
	problems []Problem

	targets map[string]string // name -> "container" | "process" | "overlay" | "layer"
	step    string            // id of the step being validated
}

// needsTrust records that the current step touches the host directly.
func (v *validator) needsTrust() {
	if !slices.Contains(v.s.NeedsTrust, v.step) {
		v.s.NeedsTrust = append(v.s.NeedsTrust, v.step)
	}
}

func (v *validator) addf(path []any, format string, a ...any) {
	line := 0
	if n := nodeAt(v.root, path...); n != nil {
		line = n.Line
	}
	v.problems = append(v.problems, Problem{Line: line, Msg: fmt.Sprintf(format, a...)})
}

func (v *validator) validate() {
	s := v.s
	if !idRE.MatchString(s.ID) {
		v.addf([]any{"id"}, "id %q: want lower-case letters, digits and '-', at most 40 characters", s.ID)
	}
	if base := strings.TrimSuffix(path.Base(v.file), ".yaml"); strings.HasSuffix(v.file, ".yaml") && s.ID != "" && base != s.ID && !strings.HasPrefix(base, "fuzz") {
		v.addf([]any{"id"}, "id %q does not match the file name %q: name the file %s.yaml", s.ID, path.Base(v.file), s.ID)
	}
	v.text([]any{"title"}, "title", s.Title)
	v.text([]any{"summary"}, "summary", s.Summary)
	if !slices.Contains(Chapters, s.Chapter) {
		v.addf([]any{"chapter"}, "chapter %q: want one of %s", s.Chapter, strings.Join(Chapters, ", "))
	}
	if s.Minutes < 1 || s.Minutes > 240 {
		v.addf([]any{"minutes"}, "minutes %d: want 1..240", s.Minutes)
	}
	v.requires()

	v.targets = map[string]string{"host": "host"}
	names := make([]string, 0, len(s.Containers))
	for n := range s.Containers {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		v.container(n, s.Containers[n])
	}
	if len(s.Steps) == 0 {
		v.addf(nil, "no steps: a scenario needs at least one step")
	}
	started := map[string]bool{}
	ids := map[string]bool{}
	for i, st := range s.Steps {
		p := []any{"steps", i}
		if st == nil {
			v.addf(p, "step %d is empty", i+1)
			continue
		}
		v.step = st.ID
		if !idRE.MatchString(st.ID) {
			v.addf(append(p, "id"), "step id %q: want lower-case letters, digits and '-'", st.ID)
		} else if ids[st.ID] {
			v.addf(append(p, "id"), "step id %q is used twice", st.ID)
		}
		ids[st.ID] = true
		switch st.Kind {
		case KindDemo:
			if len(st.Solve) > 0 {
				v.addf(append(p, "solve"), "step %s: a demo step has no solve (its do is the solution)", st.ID)
			}
		case KindTask:
			if len(st.Expect) == 0 {
				v.addf(p, "task step %s needs expect: checks that tell when the learner is done", st.ID)
			}
			if len(st.Solve) == 0 {
				v.addf(p, "task step %s needs solve: actions that fast-forward it (used by --solve and scenario test)", st.ID)
			}
			if len(st.Hints) == 0 {
				v.addf(p, "task step %s needs at least one hint", st.ID)
			}
		default:
			v.addf(append(p, "kind"), "step %s: kind %q: want demo or task", st.ID, st.Kind)
		}
		v.stepText(append(p, "text"), st)
		for j, h := range st.Hints {
			v.text(append(p, "hints", j), "hint", h)
		}
		for j, pane := range st.Show {
			if !slices.Contains(Panes, pane) {
				v.addf(append(p, "show", j), "show %q: want one of %s", pane, strings.Join(Panes, ", "))
			}
		}
		if st.Timeout < 0 || st.Timeout > 2*time.Hour {
			v.addf(append(p, "timeout"), "timeout %s: want 0..2h", st.Timeout)
		}
		for j, a := range st.Do {
			v.action(append(p, "do", j), st, a, started)
		}
		afterDo := clone(started)
		for j, a := range st.Solve {
			v.action(append(p, "solve", j), st, a, started)
		}
		if st.Shell != "" {
			if v.targets[st.Shell] != "container" {
				v.addf(append(p, "shell"), "shell %q: not a container of this scenario", st.Shell)
			}
		} else if st.Kind == KindTask {
			// default: the first running container, in name order
			for _, n := range names {
				if afterDo[n] {
					st.Shell = n
					break
				}
			}
			if st.Shell == "" {
				v.addf(p, "task step %s: no container is running for the learner's shell (start one in an earlier step)", st.ID)
			}
		}
		for j, c := range st.Expect {
			v.check(append(p, "expect", j), c)
		}
	}
	for i, a := range s.Cleanup {
		p := []any{"cleanup", i}
		if a == nil || a.Host == nil {
			v.addf(p, "cleanup may only hold host actions (ctlab removes its own containers itself)")
			continue
		}
		v.step = "cleanup"
		v.action(p, &Step{ID: "cleanup"}, a, map[string]bool{})
	}
	v.impliedRequirements()
}

// impliedRequirements adds to requires what the containers and actions
// need anyway (their namespace kinds, the controllers their limits use,
// root), so preflight can say why a scenario cannot run even when its
// author forgot to list something.
func (v *validator) impliedRequirements() {
	r := &v.s.Requires
	addNS := func(k string) {
		if slices.Contains(nsKinds, k) && !slices.Contains(r.Namespaces, k) {
			r.Namespaces = append(r.Namespaces, k)
		}
	}
	addCtrl := func(c string) {
		if !slices.Contains(r.Controllers, c) && !(c == "io" && slices.Contains(r.Controllers, "blkio")) {
			r.Controllers = append(r.Controllers, c)
		}
	}
	limits := func(l Limits) {
		if l.Memory != "" {
			addCtrl("memory")
		}
		if l.CPU != 0 || l.CPUWeight != 0 {
			addCtrl("cpu")
		}
		if l.Pids != 0 {
			addCtrl("pids")
		}
		if l.ReadBPS != "" || l.WriteBPS != "" {
			addCtrl("io")
		}
		if l.Devices != "" || len(l.DenyDev) > 0 {
			addCtrl("devices")
		}
	}
	for _, c := range v.s.Containers {
		if c == nil {
			continue
		}
		r.Root = true
		r.Overlay = true
		for _, ns := range c.Namespaces {
			if ns == "all" {
				for _, k := range nsKinds {
					addNS(k)
				}
			}
			addNS(ns)
		}
		limits(c.Limits)
	}
	for _, st := range v.s.Steps {
		if st == nil {
			continue
		}
		for _, a := range append(append([]*Action{}, st.Do...), st.Solve...) {
			switch {
			case a == nil:
			case a.SetLimit != nil:
				limits(a.SetLimit.Limits)
			case a.Freeze != nil, a.Thaw != nil:
				addCtrl("freezer")
			case a.MountOverlay != nil:
				r.Root, r.Overlay = true, true
			}
		}
	}
	if slices.Contains(r.Namespaces, "user") {
		r.Userns = true
	}
	if slices.Contains(r.Namespaces, "time") && r.Kernel == "" {
		r.Kernel = "5.6"
	}
}

func clone(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (v *validator) text(p []any, what string, t Text) {
	if strings.TrimSpace(t.EN) == "" || strings.TrimSpace(t.ZH) == "" {
		v.addf(p, "%s needs both en and zh", what)
	}
}

func (v *validator) requires() {
	r := v.s.Requires
	p := []any{"requires"}
	if r.Kernel != "" && !kernelRE.MatchString(r.Kernel) {
		v.addf(append(p, "kernel"), "kernel %q: want a minimum version like \"5.6\"", r.Kernel)
	}
	for i, ns := range r.Namespaces {
		if !slices.Contains(nsKinds, ns) {
			v.addf(append(p, "namespaces", i), "namespace %q: want one of %s", ns, strings.Join(nsKinds, ", "))
		}
	}
	for i, c := range r.Controllers {
		if !slices.Contains(controllers, c) {
			v.addf(append(p, "controllers", i), "controller %q: want one of %s", c, strings.Join(controllers, ", "))
		}
	}
	if !slices.Contains([]string{"", "any", "v1", "v2"}, r.Cgroup) {
		v.addf(append(p, "cgroup"), "cgroup %q: want v1, v2 or any", r.Cgroup)
	}
	for i, b := range r.Binaries {
		if b == "" || strings.ContainsAny(b, "/ \t") {
			v.addf(append(p, "binaries", i), "binary %q: a command name looked up in PATH, not a path", b)
		}
	}
}

func (v *validator) container(n string, c *ContainerSpec) {
	p := []any{"containers", n}
	if c == nil {
		v.addf(p, "container %q is empty", n)
		return
	}
	c.name = n
	if !nameRE.MatchString(n) || n == "host" {
		v.addf(p, "container name %q: want lower-case letters, digits and '-' (at most 20), not \"host\"", n)
	}
	v.targets[n] = "container"
	has := map[string]bool{}
	for i, ns := range c.Namespaces {
		if ns == "all" {
			for _, k := range nsKinds {
				has[k] = true
			}
			continue
		}
		if !slices.Contains(nsKinds, ns) {
			v.addf(append(p, "namespaces", i), "namespace %q: want one of %s or all", ns, strings.Join(nsKinds, ", "))
		}
		has[ns] = true
	}
	if !has["mnt"] {
		v.addf(append(p, "namespaces"), "container %q needs the mnt namespace: its root filesystem is mounted in it", n)
	}
	if c.Hostname != "" {
		if !hostnameRE.MatchString(c.Hostname) {
			v.addf(append(p, "hostname"), "hostname %q: letters, digits, '.', '-', at most 64", c.Hostname)
		}
		if !has["uts"] {
			v.addf(append(p, "hostname"), "hostname needs the uts namespace (else it would rename the host)")
		}
	}
	if !slices.Contains(rootfsKinds, c.Rootfs) {
		v.addf(append(p, "rootfs"), "rootfs %q: want default, busybox or host (host directories are not allowed in scenario files)", c.Rootfs)
	}
	if len(c.Command) > 0 && c.Command[0] == "" {
		v.addf(append(p, "command"), "command: the first word is empty")
	}
	v.limits(append(p, "limits"), c.Limits)
	if (c.Time.Monotonic != 0 || c.Time.Boottime != 0) && !has["time"] {
		v.addf(append(p, "time"), "clock offsets need the time namespace")
	}
	if c.Net && !has["net"] {
		v.addf(append(p, "net"), "net: true needs the net namespace")
	}
}

func (v *validator) limits(p []any, l Limits) {
	for _, f := range []struct{ key, val string }{{"memory", l.Memory}, {"read_bps", l.ReadBPS}, {"write_bps", l.WriteBPS}} {
		if f.val == "" {
			continue
		}
		if _, err := ParseBytes(f.val); err != nil {
			v.addf(append(p, f.key), "%s: %v", f.key, err)
		}
	}
	if l.CPU < 0 || l.CPU > 1024 {
		v.addf(append(p, "cpu"), "cpu %g: want CPUs, e.g. 0.5", l.CPU)
	}
	if l.CPUWeight != 0 && (l.CPUWeight < 1 || l.CPUWeight > 10000) {
		v.addf(append(p, "cpu_weight"), "cpu_weight %d: want 1..10000", l.CPUWeight)
	}
	if l.Pids < 0 {
		v.addf(append(p, "pids"), "pids %d: want > 0", l.Pids)
	}
	if !slices.Contains([]string{"", "default", "deny-all", "allow-all"}, l.Devices) {
		v.addf(append(p, "devices"), "devices %q: want default, deny-all or allow-all", l.Devices)
	}
	for i, d := range l.DenyDev {
		if _, _, _, err := ParseDevice(d); err != nil {
			v.addf(append(p, "deny_devices", i), "%v", err)
		}
	}
}

func (v *validator) stepText(p []any, st *Step) {
	t := st.Text
	if t.Content == "" && (strings.TrimSpace(t.EN) == "" || strings.TrimSpace(t.ZH) == "") {
		v.addf(p, "step %s: text needs content: PAGE or inline en and zh", st.ID)
	}
	if (t.EN == "") != (t.ZH == "") {
		v.addf(p, "step %s: inline text needs both en and zh", st.ID)
	}
	if t.Content == "" {
		return
	}
	if v.content == nil {
		v.addf(append(p, "content"), "content %q: no lesson pages to resolve it against", t.Content)
		return
	}
	page, anchor := contentRef(t.Content)
	if strings.HasPrefix(page, "..") || strings.HasPrefix(page, "en/") || strings.HasPrefix(page, "zh/") {
		v.addf(append(p, "content"), "content %q: a page path under content/<lang>/, without the language", t.Content)
		return
	}
	for _, lang := range []string{"en", "zh"} {
		b, err := fs.ReadFile(v.content, lang+"/"+page)
		if err != nil {
			v.addf(append(p, "content"), "content %q: no page %s/%s", t.Content, lang, page)
			continue
		}
		// Anchors are checked in English: zh headings slug differently, so
		// the zh page is shown from its heading at the same position.
		if anchor != "" && lang == "en" && HeadingIndex(string(b), anchor) < 0 {
			v.addf(append(p, "content"), "content %q: page en/%s has no heading with anchor #%s (have: %s)", t.Content, page, anchor, strings.Join(headingSlugs(string(b)), ", "))
		}
	}
}

// action validates one action, resolving its target names in order.
func (v *validator) action(p []any, st *Step, a *Action, started map[string]bool) {
	if a == nil {
		v.addf(p, "empty action")
		return
	}
	kind, _, n := oneOf(a)
	if n != 1 {
		v.addf(p, "an action is a mapping with exactly one of: %s (found %d)", strings.Join(kindKeys(a), ", "), n)
		return
	}
	p = append(p, kind)
	running := func(name string) {
		if v.targets[name] == "" {
			v.addf(p, "%s: %q is not a container of this scenario", kind, name)
		} else if v.targets[name] == "container" && !started[name] {
			v.addf(p, "%s: container %q is not started by an earlier action", kind, name)
		} else if v.targets[name] == "host" {
			v.addf(p, "%s: needs a container, not the host (host commands are the `host` action)", kind)
		}
	}
	newName := func(as string) {
		if as == "" {
			return
		}
		if !nameRE.MatchString(as) || v.targets[as] != "" && v.targets[as] != "process" {
			v.addf(p, "%s: as %q: want a new lower-case name", kind, as)
			return
		}
		v.targets[as] = "process"
	}
	argv := func(args []string) {
		if len(args) == 0 || args[0] == "" {
			v.addf(p, "%s: argv must name a command", kind)
		}
	}
	switch {
	case a.Start != nil:
		if v.targets[a.Start.Container] != "container" {
			v.addf(p, "start: %q is not declared under containers", a.Start.Container)
		} else if started[a.Start.Container] {
			v.addf(p, "start: container %q is already started", a.Start.Container)
		}
		started[a.Start.Container] = true
	case a.Exec != nil:
		running(a.Exec.In)
		argv(a.Exec.Argv)
		if a.Exec.As != "" && !a.Exec.Background {
			v.addf(p, "exec: as names a background process: set background: true")
		}
		if a.Exec.HelperAs != "" && !a.Exec.Background {
			v.addf(p, "exec: helper_as names the helper of a background process: set background: true")
		}
		if a.Exec.HelperAs != "" && a.Exec.HelperAs == a.Exec.As {
			v.addf(p, "exec: helper_as and as must differ")
		}
		newName(a.Exec.As)
		newName(a.Exec.HelperAs)
	case a.WriteFile != nil:
		running(a.WriteFile.In)
		if !path.IsAbs(a.WriteFile.Path) {
			v.addf(p, "write_file: path %q must be absolute (inside the container)", a.WriteFile.Path)
		}
	case a.SetLimit != nil:
		running(a.SetLimit.In)
		v.limits(p, a.SetLimit.Limits)
		if a.SetLimit.Limits.IsZero() {
			v.addf(p, "set_limit: no limit given")
		}
	case a.Freeze != nil:
		running(a.Freeze.In)
	case a.Thaw != nil:
		running(a.Thaw.In)
	case a.Kill != nil:
		if v.targets[a.Kill.In] == "process" {
			break
		}
		running(a.Kill.In)
		if !slices.Contains(signals, a.Kill.Signal) {
			v.addf(p, "kill: signal %q: want one of %s", a.Kill.Signal, strings.Join(signals[1:], ", "))
		}
	case a.Load != nil:
		running(a.Load.In)
		if !slices.Contains(loadKinds, a.Load.Kind) {
			v.addf(p, "load: kind %q: want cpu, mem, fork, io, count or shm", a.Load.Kind)
		}
		switch a.Load.Kind {
		case "mem", "io":
			if a.Load.Size == "" {
				v.addf(p, "load: kind %s needs size", a.Load.Kind)
			}
		case "fork":
			if a.Load.Count < 1 {
				v.addf(p, "load: kind fork needs count >= 1")
			}
		case "count":
			if a.Load.File == "" {
				v.addf(p, "load: kind count needs file")
			}
		case "shm":
			if k, err := strconv.ParseInt(a.Load.Key, 0, 32); err != nil || k == 0 {
				v.addf(p, "load: kind shm needs key: a non-zero 32-bit number (0x1234; 0 is IPC_PRIVATE, which has no key)")
			}
		}
		if a.Load.Key != "" && a.Load.Kind != "shm" {
			v.addf(p, "load: key is for kind shm")
		}
		if a.Load.ExpectRate != "" {
			if a.Load.Kind != "io" {
				v.addf(p, "load: expect_rate is for kind io (it reads the rate load io prints)")
			}
			if a.Load.Background {
				v.addf(p, "load: expect_rate needs the load in the foreground (background: false)")
			}
			if _, _, err := parseRate(a.Load.ExpectRate); err != nil {
				v.addf(p, "load: expect_rate: %v", err)
			}
		}
		if a.Load.File != "" && !path.IsAbs(a.Load.File) {
			v.addf(p, "load: file %q must be an absolute path inside the container", a.Load.File)
		}
		if c := v.s.Containers[a.Load.In]; c != nil && !c.MountSelf {
			v.addf(p, "load: container %q needs mount_self: true (the generator is /.ctlab/ctlab)", a.Load.In)
		}
		if a.Load.Size != "" {
			if _, err := ParseBytes(a.Load.Size); err != nil {
				v.addf(p, "load: size: %v", err)
			}
		}
		if a.Load.As != "" && !a.Load.Background {
			v.addf(p, "load: as names a background process: set background: true")
		}
		newName(a.Load.As)
	case a.MountOverlay != nil:
		if !nameRE.MatchString(a.MountOverlay.As) || a.MountOverlay.As == "layers" || v.targets[a.MountOverlay.As] != "" {
			v.addf(p, "mount_overlay: as %q: want a new lower-case name", a.MountOverlay.As)
		}
		if len(a.MountOverlay.Lower) == 0 {
			v.addf(p, "mount_overlay: lower needs at least one layer")
		}
		for _, layer := range a.MountOverlay.Lower {
			for f := range layer {
				if !fs.ValidPath(strings.TrimPrefix(f, "/")) || strings.HasSuffix(f, "/") && len(f) == 1 {
					v.addf(p, "mount_overlay: file %q: want a relative path inside the layer", f)
				}
			}
		}
		v.targets[a.MountOverlay.As] = "overlay"
		started[a.MountOverlay.As] = true
	case a.CommitLayer != nil:
		if t := v.targets[a.CommitLayer.In]; t != "container" && t != "overlay" {
			v.addf(p, "commit_layer: %q is not a container or overlay of this scenario", a.CommitLayer.In)
		}
		if !nameRE.MatchString(a.CommitLayer.As) || v.targets[a.CommitLayer.As] != "" {
			v.addf(p, "commit_layer: as %q: want a new lower-case name", a.CommitLayer.As)
		}
		v.targets[a.CommitLayer.As] = "layer"
	case a.Link != nil:
		running(a.Link.In)
	case a.Remove != nil:
		running(a.Remove.In)
		delete(started, a.Remove.In)
	case a.Host != nil:
		argv(a.Host.Argv)
		v.needsTrust()
	case a.HostProcess != nil:
		v.needsTrust()
		if !path.IsAbs(a.HostProcess.Pidfile) {
			v.addf(p, "host_process: pidfile %q must be an absolute host path", a.HostProcess.Pidfile)
		}
		if a.HostProcess.Timeout < 0 || a.HostProcess.Timeout > 5*time.Minute {
			v.addf(p, "host_process: timeout %s: want 0..5m", a.HostProcess.Timeout)
		}
		if a.HostProcess.As == "" {
			v.addf(p, "host_process: needs as (the name checks use)")
		}
		newName(a.HostProcess.As)
	case a.WriteBundle != nil:
		if v.targets[a.WriteBundle.In] != "container" {
			v.addf(p, "write_bundle: %q is not a container of this scenario", a.WriteBundle.In)
		} else {
			running(a.WriteBundle.In)
		}
		// "layers" is the lab directory's folder of committed layers
		if !nameRE.MatchString(a.WriteBundle.As) || a.WriteBundle.As == "layers" || v.targets[a.WriteBundle.As] != "" && v.targets[a.WriteBundle.As] != "bundle" {
			v.addf(p, "write_bundle: as %q: want a new lower-case name", a.WriteBundle.As)
		} else {
			v.targets[a.WriteBundle.As] = "bundle"
		}
	case a.Sleep != nil:
		if a.Sleep.For <= 0 || a.Sleep.For > 5*time.Minute {
			v.addf(p, "sleep: for %s: want 0..5m", a.Sleep.For)
		}
	case a.WaitFor != nil:
		if a.WaitFor.Check == nil {
			v.addf(p, "wait: needs check")
		} else {
			v.check(append(p, "check"), a.WaitFor.Check)
		}
	}
}

// check validates one check and resolves the targets it names.
func (v *validator) check(p []any, c *Check) {
	if c == nil {
		v.addf(p, "empty check")
		return
	}
	kind, _, n := oneOf(c)
	if n != 1 {
		v.addf(p, "a check is a mapping with exactly one of: %s (found %d)", strings.Join(kindKeys(c), ", "), n)
		return
	}
	p = append(p, kind)
	target := func(name string, want ...string) {
		t := v.targets[name]
		if t == "" {
			v.addf(p, "%s: %q is not host or a container, process, overlay, layer or bundle of this scenario", kind, name)
			return
		}
		if len(want) > 0 && !slices.Contains(want, t) {
			v.addf(p, "%s: %q is a %s; want a %s", kind, name, t, strings.Join(want, " or "))
		}
	}
	op := func(o string) {
		if !slices.Contains(ops, o) {
			v.addf(p, "%s: op %q: want one of %s", kind, o, strings.Join(ops, " "))
		}
	}
	switch {
	case c.NamespaceDiffers != nil || c.NamespaceSame != nil:
		ns := c.NamespaceDiffers
		if ns == nil {
			ns = c.NamespaceSame
		}
		if !slices.Contains(nsCompare, ns.Kind) {
			v.addf(p, "%s: kind %q: want one of %s", kind, ns.Kind, strings.Join(nsCompare, ", "))
		}
		target(ns.A, "host", "container", "process")
		if ns.B == "" {
			ns.B = "host"
		}
		target(ns.B, "host", "container", "process")
	case c.HostnameEquals != nil:
		target(c.HostnameEquals.In, "host", "container", "process")
	case c.DomainnameEquals != nil:
		target(c.DomainnameEquals.In, "host", "container", "process")
	case c.HostnameUnchanged != nil:
		target(c.HostnameUnchanged.In, "host", "container", "process")
		c.Guard = true // it holds before the step by definition
	case c.PidInNSEquals != nil:
		target(c.PidInNSEquals.In, "container", "process")
		if _, err := strconv.Atoi(c.PidInNSEquals.Value); err != nil {
			v.addf(p, "pid_in_ns_equals: value %q: want a number", c.PidInNSEquals.Value)
		}
	case c.MountVisible != nil || c.MountAbsent != nil:
		m := c.MountVisible
		if m == nil {
			m = c.MountAbsent
		}
		target(m.In, "host", "container", "process")
		if !path.IsAbs(m.Path) {
			v.addf(p, "%s: path %q must be absolute", kind, m.Path)
		}
	case c.CgroupValue != nil:
		target(c.CgroupValue.In, "container")
		op(c.CgroupValue.Op)
		if c.CgroupValue.File == "" || strings.ContainsAny(c.CgroupValue.File, "/\x00") || strings.HasPrefix(c.CgroupValue.File, ".") {
			v.addf(p, "cgroup_value: file %q: want a cgroup file name such as memory.max", c.CgroupValue.File)
		}
	case c.OOMKillHappened != nil:
		target(c.OOMKillHappened.In, "container")
	case c.ForkRefused != nil:
		target(c.ForkRefused.In, "container")
	case c.Frozen != nil:
		target(c.Frozen.In, "container")
	case c.ProcessRunning != nil:
		target(c.ProcessRunning.In, "container", "process")
	case c.FileInUpper != nil || c.WhiteoutExists != nil || c.OpaqueDir != nil:
		pc := c.FileInUpper
		if pc == nil {
			pc = c.WhiteoutExists
		}
		if pc == nil {
			pc = c.OpaqueDir
		}
		target(pc.In, "container", "overlay", "layer")
		if !path.IsAbs(pc.Path) {
			v.addf(p, "%s: path %q must be absolute", kind, pc.Path)
		}
	case c.LinkHasAddress != nil:
		target(c.LinkHasAddress.In, "host", "container")
		if a := c.LinkHasAddress.Address; a != "any" {
			if _, err := netip.ParsePrefix(a); err != nil {
				if _, err := netip.ParseAddr(a); err != nil {
					v.addf(p, "link_has_address: address %q: want an IP, a CIDR or any", a)
				}
			}
		}
	case c.LinkCount != nil:
		target(c.LinkCount.In, "host", "container")
		op(c.LinkCount.Op)
	case c.UIDMapEquals != nil:
		target(c.UIDMapEquals.In, "host", "container", "process")
	case c.TimeOffset != nil:
		target(c.TimeOffset.In, "host", "container", "process")
		if c.TimeOffset.Clock != "monotonic" && c.TimeOffset.Clock != "boottime" {
			v.addf(p, "time_offset: clock %q: want monotonic or boottime", c.TimeOffset.Clock)
		}
		if c.TimeOffset.Op == "" {
			c.TimeOffset.Op = "=="
		}
		op(c.TimeOffset.Op)
	case c.IPCObjectVisible != nil:
		target(c.IPCObjectVisible.In, "host", "container", "process")
		if !slices.Contains([]string{"shm", "msg", "sem"}, c.IPCObjectVisible.Kind) {
			v.addf(p, "ipc_object_visible: kind %q: want shm, msg or sem", c.IPCObjectVisible.Kind)
		}
		if k := c.IPCObjectVisible.Key; k != "" {
			if _, err := strconv.ParseInt(k, 0, 64); err != nil {
				v.addf(p, "ipc_object_visible: key %q: want a number (0x.. for hex)", k)
			}
		}
	case c.ProcessParent != nil:
		target(c.ProcessParent.Of, "container", "process")
		if (c.ProcessParent.Parent == "") == (c.ProcessParent.Comm == "") {
			v.addf(p, "process_parent: give exactly one of parent (a target) or comm")
		}
		if c.ProcessParent.Parent != "" {
			target(c.ProcessParent.Parent, "host", "container", "process")
		}
	case c.HTTPBodyContains != nil:
		target(c.HTTPBodyContains.In, "container")
		if c.HTTPBodyContains.Port < 1 || c.HTTPBodyContains.Port > 65535 {
			v.addf(p, "http_body_contains: port %d: want 1..65535", c.HTTPBodyContains.Port)
		}
		if c.HTTPBodyContains.Path == "" {
			c.HTTPBodyContains.Path = "/"
		}
		if !strings.HasPrefix(c.HTTPBodyContains.Path, "/") {
			v.addf(p, "http_body_contains: path %q must start with /", c.HTTPBodyContains.Path)
		}
	case c.ExecOutputContains != nil:
		target(c.ExecOutputContains.In, "container")
		if len(c.ExecOutputContains.Argv) == 0 || c.ExecOutputContains.Argv[0] == "" {
			v.addf(p, "exec_output_contains: argv must name a command")
		}
	case c.CPUUsage != nil:
		target(c.CPUUsage.In, "container")
		op(c.CPUUsage.Op)
		if c.CPUUsage.Op == "contains" || c.CPUUsage.Value < 0 || c.CPUUsage.Value > 1024 {
			v.addf(p, "cpu_usage: want a numeric op and value in CPUs (0.25)")
		}
		if w := c.CPUUsage.Window; w != 0 && (w < 200*time.Millisecond || w > 30*time.Second) {
			v.addf(p, "cpu_usage: window %s: want 200ms..30s", w)
		}
	case c.IOBytes != nil:
		target(c.IOBytes.In, "container")
		op(c.IOBytes.Op)
		if c.IOBytes.Dir != "read" && c.IOBytes.Dir != "write" {
			v.addf(p, "io_bytes: dir %q: want read or write", c.IOBytes.Dir)
		}
		if n, err := ParseBytes(c.IOBytes.Value); err != nil || n < 0 {
			v.addf(p, "io_bytes: value %q: want a size like 8M", c.IOBytes.Value)
		}
		if c.IOBytes.Op == "contains" {
			v.addf(p, "io_bytes: op contains: want a numeric op")
		}
	case c.FileUnchanged != nil:
		target(c.FileUnchanged.In, "container", "process")
		if !path.IsAbs(c.FileUnchanged.Path) {
			v.addf(p, "file_unchanged: path %q must be absolute", c.FileUnchanged.Path)
		}
		if f := c.FileUnchanged.For; f != 0 && (f < 100*time.Millisecond || f > 30*time.Second) {
			v.addf(p, "file_unchanged: for %s: want 100ms..30s", f)
		}
	case c.InitSystem != nil:
		if !slices.Contains([]string{"systemd", "other", "any"}, c.InitSystem.Value) {
			v.addf(p, "init_system: value %q: want systemd, other or any", c.InitSystem.Value)
		}
		c.Guard = true // a fact of the host: no step changes it
	case c.KernelReleaseSame != nil:
		target(c.KernelReleaseSame.In, "container", "process")
	case c.ProcessUIDEquals != nil:
		target(c.ProcessUIDEquals.In, "container", "process")
		if r := c.ProcessUIDEquals.Reader; r != "" && r != "host" && r != "inside" {
			v.addf(p, "process_uid_equals: reader %q: want host or inside", r)
		}
		if c.ProcessUIDEquals.Value < 0 {
			v.addf(p, "process_uid_equals: value %d: want a uid >= 0", c.ProcessUIDEquals.Value)
		}
	case c.FileOwnerEquals != nil:
		target(c.FileOwnerEquals.In, "container", "process")
		if !path.IsAbs(c.FileOwnerEquals.Path) {
			v.addf(p, "file_owner_equals: path %q must be absolute", c.FileOwnerEquals.Path)
		}
		if c.FileOwnerEquals.UID < 0 || c.FileOwnerEquals.GID != nil && *c.FileOwnerEquals.GID < 0 {
			v.addf(p, "file_owner_equals: uid and gid are numbers >= 0")
		}
	case c.CgroupPathEquals != nil:
		target(c.CgroupPathEquals.In, "container", "process")
		if !path.IsAbs(c.CgroupPathEquals.Value) {
			v.addf(p, "cgroup_path_equals: value %q: want an absolute cgroup path such as /ctlab/NAME", c.CgroupPathEquals.Value)
		}
		if ctl := c.CgroupPathEquals.Controller; ctl != "" && !slices.Contains(controllers, ctl) && ctl != "name=systemd" {
			v.addf(p, "cgroup_path_equals: controller %q: want one of %s", ctl, strings.Join(controllers, ", "))
		}
	case c.UptimeOffset != nil:
		target(c.UptimeOffset.In, "container", "process")
		if c.UptimeOffset.Op == "" {
			c.UptimeOffset.Op = "=="
		}
		op(c.UptimeOffset.Op)
		if c.UptimeOffset.Op == "contains" {
			v.addf(p, "uptime_offset: op contains: want a numeric op")
		}
		if c.UptimeOffset.Tolerance < 0 || c.UptimeOffset.Tolerance > time.Hour {
			v.addf(p, "uptime_offset: tolerance %s: want 0..1h", c.UptimeOffset.Tolerance)
		}
	case c.FileContains != nil:
		target(c.FileContains.In, "host", "container", "process", "overlay", "layer", "bundle")
		if c.FileContains.In == "host" && !slices.Contains(v.s.ReadsHost, v.step) {
			// reading (and showing) a host file is host access too
			v.s.ReadsHost = append(v.s.ReadsHost, v.step)
		}
		if !path.IsAbs(c.FileContains.Path) {
			v.addf(p, "file_contains: path %q must be absolute", c.FileContains.Path)
		}
	}
}

// HeadingIndex returns the position (0-based, among all # headings) of the
// heading whose slug is anchor, or -1.
func HeadingIndex(md, anchor string) int {
	for i, s := range headingSlugs(md) {
		if s == anchor {
			return i
		}
	}
	return -1
}

// headingSlugs lists the GitHub-style slugs of a page's headings, skipping
// fenced code blocks (a "# comment" in a shell block is not a heading).
func headingSlugs(md string) []string {
	var out []string
	fence := false
	for _, line := range strings.Split(md, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~") {
			fence = !fence
			continue
		}
		if fence || !strings.HasPrefix(t, "#") {
			continue
		}
		h := strings.TrimLeft(t, "#")
		if h == "" || h[0] != ' ' {
			continue
		}
		out = append(out, Slug(h))
	}
	return out
}

// Slug makes a GitHub-style anchor: lower case, spaces to '-', punctuation dropped.
func Slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ' || r == '-':
			b.WriteByte('-')
		case r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// ParseBytes reads "64M", "1Gi", "512k", "1048576" or "max" (-1).
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "max" {
		return -1, nil
	}
	mult := int64(1)
	u := strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(t, "B"), "b"))
	u = strings.TrimSuffix(u, "i")
	switch {
	case strings.HasSuffix(u, "k"):
		mult, u = 1<<10, strings.TrimSuffix(u, "k")
	case strings.HasSuffix(u, "m"):
		mult, u = 1<<20, strings.TrimSuffix(u, "m")
	case strings.HasSuffix(u, "g"):
		mult, u = 1<<30, strings.TrimSuffix(u, "g")
	}
	n, err := strconv.ParseInt(u, 10, 64)
	if err != nil || n < 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("size %q: want bytes like 64M, 1G, 4096 or max", s)
	}
	return n * mult, nil
}

// ParseDevice reads a device rule "c 1:5" (type, major, minor).
func ParseDevice(s string) (typ string, major, minor int64, err error) {
	f := strings.Fields(s)
	if len(f) == 2 && (f[0] == "c" || f[0] == "b") {
		ma, mi, ok := strings.Cut(f[1], ":")
		if ok {
			a, e1 := strconv.ParseInt(ma, 10, 64)
			b, e2 := strconv.ParseInt(mi, 10, 64)
			if e1 == nil && e2 == nil && a >= 0 && b >= 0 {
				return f[0], a, b, nil
			}
		}
	}
	return "", 0, 0, fmt.Errorf("device %q: want \"c MAJOR:MINOR\" or \"b MAJOR:MINOR\"", s)
}
