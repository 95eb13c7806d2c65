package lab

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/cgroups"
)

var (
	idRE        = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)
	nameRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,19}$`)
	kernelRE    = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)
	hostnameRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$`)
	nsKinds     = namespaceKinds()
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

	// The action or check being validated: the path of its mapping, its
	// kind, and (for actions) the containers started so far.
	at      []any
	kind    string
	started map[string]bool
}

// namespaceKinds is the sandbox's list of namespace kinds, as strings.
func namespaceKinds() []string {
	out := make([]string, len(sandbox.AllNamespaces))
	for i, ns := range sandbox.AllNamespaces {
		out[i] = string(ns)
	}
	return out
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
		if ids[st.ID] && idRE.MatchString(st.ID) {
			v.addf(append(p, "id"), "step id %q is used twice", st.ID)
		}
		ids[st.ID] = true
		v.stepDef(p, st, names, started)
	}
	for i, a := range s.Cleanup {
		p := []any{"cleanup", i}
		if a == nil || !isHost(a) {
			v.addf(p, "cleanup may only hold host actions (ctlab removes its own containers itself)")
			continue
		}
		v.step = "cleanup"
		v.action(p, a, map[string]bool{})
	}
	v.impliedRequirements()
}

// stepDef validates step st at path p; started holds the containers
// running so far (in name order: names), updated by its actions.
func (v *validator) stepDef(p []any, st *Step, names []string, started map[string]bool) {
	v.step = st.ID
	if !idRE.MatchString(st.ID) {
		v.addf(append(p, "id"), "step id %q: want lower-case letters, digits and '-'", st.ID)
	}
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
		v.action(append(p, "do", j), a, started)
	}
	afterDo := clone(started)
	for j, a := range st.Solve {
		v.action(append(p, "solve", j), a, started)
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
	v.question(append(p, "question"), st.Question)
}

// impliedRequirements adds to requires what the containers and actions
// need anyway (their namespace kinds, the controllers their limits use,
// root), so preflight can say why a scenario cannot run even when its
// author forgot to list something.
func (v *validator) impliedRequirements() {
	r := &implied{&v.s.Requires}
	for _, c := range v.s.Containers {
		if c == nil {
			continue
		}
		r.Root, r.Overlay = true, true
		for _, ns := range c.Namespaces {
			if ns == "all" {
				for _, k := range nsKinds {
					r.namespace(k)
				}
			}
			r.namespace(ns)
		}
		r.limits(c.Limits)
	}
	for _, st := range v.s.Steps {
		if st == nil {
			continue
		}
		for _, a := range slices.Concat(st.Do, st.Solve) {
			if a == nil {
				continue
			}
			if im, ok := a.body.(implier); ok {
				im.imply(r)
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

// implied collects requirements a scenario has without listing them.
type implied struct{ *Requires }

func (r *implied) namespace(k string) {
	if slices.Contains(nsKinds, k) && !slices.Contains(r.Namespaces, k) {
		r.Namespaces = append(r.Namespaces, k)
	}
}

func (r *implied) controller(c string) {
	if !slices.Contains(r.Controllers, c) && !(c == "io" && slices.Contains(r.Controllers, "blkio")) {
		r.Controllers = append(r.Controllers, c)
	}
}

// limits adds the controllers that limits l are written to.
func (r *implied) limits(l Limits) {
	for _, c := range []struct {
		name string
		set  bool
	}{
		{"memory", l.Memory != ""},
		{"cpu", l.CPU != 0 || l.CPUWeight != 0},
		{"pids", l.Pids != 0},
		{"io", l.ReadBPS != "" || l.WriteBPS != ""},
		{"devices", l.Devices != "" || len(l.DenyDev) > 0},
	} {
		if c.set {
			r.controller(c.name)
		}
	}
}

// isHost reports whether a is a host action (the one kind cleanup allows).
func isHost(a *Action) bool {
	_, ok := a.body.(*HostAction)
	return ok
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
	switch c.CgroupDriver {
	case "", cgroups.DriverCgroupfs, cgroups.DriverSystemd, cgroups.DriverAuto:
	default:
		v.addf(append(p, "cgroup_driver"), "cgroup_driver %q: want %s, %s or %s", c.CgroupDriver, cgroups.DriverCgroupfs, cgroups.DriverSystemd, cgroups.DriverAuto)
	}
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
	for _, r := range containerTrust {
		if r.needs(c, has) {
			v.hostAccess("container "+n, r.why)
		}
	}
}

func (v *validator) limits(p []any, l Limits) {
	for _, f := range []struct{ key, val string }{{"memory", l.Memory}, {"read_bps", l.ReadBPS}, {"write_bps", l.WriteBPS}} {
		if f.val == "" {
			continue
		}
		if _, err := cgroups.ParseSize(f.val); err != nil {
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
		if _, err := denyRule(d); err != nil {
			v.addf(append(p, "deny_devices", i), "%v", err)
		}
	}
}

// denyRule reads one deny_devices entry with the CLI's device-rule grammar
// ("c 1:5", "c 1:5 rw", "b 8:* r"); "a" is devices: deny-all.
func denyRule(s string) (cgroups.DeviceRule, error) {
	r, err := cgroups.ParseDeviceRule(s)
	if err != nil {
		return r, err
	}
	if r.Type == 'a' {
		return r, fmt.Errorf("device rule %q: deny one device type (c or b) here; every device is devices: deny-all", s)
	}
	r.Allow = false
	return r, nil
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

// action validates one action, resolving its target names in order:
// the kind's own validate does the work, through the helpers below.
func (v *validator) action(p []any, a *Action, started map[string]bool) {
	if a == nil || a.body == nil {
		v.addf(p, "empty action")
		return
	}
	defer v.enter(append(p, a.kind), a.kind)()
	v.started = started
	a.body.validate(v)
	if why, ok := actionTrust[a.kind]; ok {
		v.hostAccess("step "+v.step, why)
	}
}

// Scenario trust (issue 12). A scenario file run without --trust must not
// reach the host by any route; the embedded ones are trusted. Every rule
// here makes a file need --trust, and says why (`ctlab scenario validate`
// prints the reasons). Host commands and host file reads are recorded per
// step by their actions and checks (needsTrust, ReadsHost).

// containerTrust: what about a declared container gives it host access.
// A container from an untrusted file must have its own user, mount and
// pid namespaces, be hardened, and have no device or network path to the
// host.
var containerTrust = []struct {
	why   string
	needs func(c *ContainerSpec, has map[string]bool) bool
}{
	{"shares the host's user namespace: its root is host root", func(_ *ContainerSpec, has map[string]bool) bool { return !has["user"] }},
	{"shares the host's mount namespace", func(_ *ContainerSpec, has map[string]bool) bool { return !has["mnt"] }},
	{"shares the host's pid namespace: it sees host processes and their /proc/<pid>/root", func(_ *ContainerSpec, has map[string]bool) bool { return !has["pid"] }},
	{"is not hardened (harden: true): all capabilities and no seccomp filter", func(c *ContainerSpec, _ map[string]bool) bool { return !c.Harden }},
	{"devices: allow-all opens every host device", func(c *ContainerSpec, _ map[string]bool) bool { return c.Limits.Devices == "allow-all" }},
	{"net: true puts the veth's other end in the host's network namespace: host listeners are reachable", func(c *ContainerSpec, _ map[string]bool) bool { return c.Net }},
	{"rootfs: host is made from the host's own files", func(c *ContainerSpec, _ map[string]bool) bool { return c.Rootfs == "host" }},
}

// actionTrust: actions that reach the host.
var actionTrust = map[string]string{
	"host":         "runs a command on the host as root",
	"host_process": "names a host process as a target",
	"link":         "connects a container to the host's network namespace: host listeners are reachable",
	"containerd":   "starts a containerd daemon on the host as root",
	"ctr_run":      "runs host containerd's ctr as root",
	"ctr_exec":     "runs host containerd's ctr as root",
	"podman_run":   "runs host podman as root",
}

// hostAccess records that subject (a container or step) reaches the host.
func (v *validator) hostAccess(subject, why string) {
	r := subject + ": " + why
	if !slices.Contains(v.s.TrustReasons, r) {
		v.s.TrustReasons = append(v.s.TrustReasons, r)
	}
}

// check validates one check and resolves the targets it names.
func (v *validator) check(p []any, c *Check) {
	if c == nil || c.body == nil {
		v.addf(p, "empty check")
		return
	}
	defer v.enter(append(p, c.kind), c.kind)()
	c.body.validate(v)
	if _, ok := c.body.(alwaysGuard); ok {
		c.Guard = true
	}
}

// enter makes path p and kind the subject of the helpers below until the
// returned func restores the outer ones (a wait action holds a check).
func (v *validator) enter(p []any, kind string) func() {
	op, ok := v.at, v.kind
	v.at, v.kind = slices.Clone(p), kind
	return func() { v.at, v.kind = op, ok }
}

// errf reports a problem with the current action or check, prefixed by its kind.
func (v *validator) errf(format string, a ...any) {
	v.addf(v.at, v.kind+": "+format, a...)
}

// target resolves a name a check reads; want limits what it may be
// (host, container, process, overlay, layer, bundle).
func (v *validator) target(name string, want ...string) {
	t := v.targets[name]
	if t == "" {
		v.errf("%q is not host or a container, process, overlay, layer or bundle of this scenario", name)
		return
	}
	if len(want) > 0 && !slices.Contains(want, t) {
		v.errf("%q is a %s; want a %s", name, t, strings.Join(want, " or "))
	}
}

// op checks a comparison operator.
func (v *validator) op(o string) {
	if !slices.Contains(ops, o) {
		v.errf("op %q: want one of %s", o, strings.Join(ops, " "))
	}
}

// numericOp checks an operator that compares numbers (not contains).
func (v *validator) numericOp(o string) {
	v.op(o)
	if o == "contains" {
		v.errf("op contains: want a numeric op")
	}
}

// absPath checks that a path inside a target is absolute.
func (v *validator) absPath(what, p string) {
	if !path.IsAbs(p) {
		v.errf("%s %q must be absolute", what, p)
	}
}

// running resolves a container an action needs started by an earlier action.
func (v *validator) running(name string) {
	switch {
	case v.targets[name] == "":
		v.errf("%q is not a container of this scenario", name)
	case v.targets[name] == "container" && !v.started[name]:
		v.errf("container %q is not started by an earlier action", name)
	case v.targets[name] == "host":
		v.errf("needs a container, not the host (host commands are the `host` action)")
	}
}

// newName defines a process name (exec/load as:, host_process).
func (v *validator) newName(as string) {
	if as == "" {
		return
	}
	if !nameRE.MatchString(as) || v.targets[as] != "" && v.targets[as] != "process" {
		v.errf("as %q: want a new lower-case name", as)
		return
	}
	v.targets[as] = "process"
}

// argv checks that a command line names a command.
func (v *validator) argv(args []string) {
	if len(args) == 0 || args[0] == "" {
		v.errf("argv must name a command")
	}
}

// size checks a byte size (64M, 1.5G, max).
func (v *validator) size(what, s string) {
	if _, err := cgroups.ParseSize(s); err != nil {
		v.errf("%s: %v", what, err)
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
