package lab

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ctlab/ctlab/sandbox/kstate"
)

// Checks of processes: whether a target runs, who its parent is, which
// uid it has as one user namespace or another sees it, what a command
// prints inside, and what runs the machine as pid 1.

// ProcessRunning: the target's process exists.
type ProcessRunning Target

func (t *ProcessRunning) validate(v *validator) { v.target(t.In, "container", "process") }

func (t *ProcessRunning) eval(_ context.Context, e *Engine) Evidence {
	pid, err := e.pidOf(t.In)
	if err != nil {
		return Evidence{Target: t.In, Source: "/proc/<pid>", Expected: "running", Actual: err.Error()}
	}
	st, err := kstate.ReadStatus(pid)
	src := fmt.Sprintf("/proc/%d/status", pid)
	if err != nil {
		return Evidence{Target: t.In, Source: src, Expected: "running", Actual: err.Error()}
	}
	return Evidence{Target: t.In, Source: src, Expected: "running", Actual: fmt.Sprintf("pid %d (%s)", pid, st.Name), Pass: true}
}

// ProcessParent: the parent of target's process is another target or has a
// given command name. With Ancestor, any process up the PPid chain counts
// (e.g. when a runtime's helper process sits between CLI and container).
type ProcessParent struct {
	Of       string `yaml:"of" json:"of"`
	Parent   string `yaml:"parent,omitempty" json:"parent,omitempty"` // target name
	Comm     string `yaml:"comm,omitempty" json:"comm,omitempty"`
	Ancestor bool   `yaml:"ancestor,omitempty" json:"ancestor,omitempty"`
}

func (t *ProcessParent) validate(v *validator) {
	v.target(t.Of, "container", "process")
	if (t.Parent == "") == (t.Comm == "") {
		v.errf("give exactly one of parent (a target) or comm")
	}
	if t.Parent != "" {
		v.target(t.Parent, "host", "container", "process")
	}
}

func (t *ProcessParent) eval(_ context.Context, e *Engine) Evidence {
	pid, err := e.pidOf(t.Of)
	if err != nil {
		return failed(t.Of, "/proc/<pid>/status PPid", err)
	}
	src := fmt.Sprintf("/proc/%d/status PPid", pid)
	chain, err := parents(pid)
	if err != nil {
		return failed(t.Of, src, err)
	}
	var desc []string
	for _, p := range chain {
		desc = append(desc, fmt.Sprintf("%d (%s)", p.Pid, p.Comm))
	}
	actual := "parent " + strings.Join(desc, " <- ")
	rel := "parent"
	if t.Ancestor {
		rel = "ancestor"
	} else if len(chain) > 0 {
		chain = chain[:1]
	}
	if t.Comm != "" {
		return Evidence{Target: t.Of, Source: src, Expected: rel + " named " + t.Comm, Actual: actual,
			Pass: slices.ContainsFunc(chain, func(p kstate.Proc) bool { return p.Comm == t.Comm })}
	}
	ppid, err := e.pidOf(t.Parent)
	if err != nil {
		return failed(t.Parent, src, err)
	}
	return Evidence{Target: t.Of, Source: src, Expected: fmt.Sprintf("%s %s (pid %d)", rel, t.Parent, ppid), Actual: actual,
		Pass: slices.ContainsFunc(chain, func(p kstate.Proc) bool { return p.Pid == ppid })}
}

// parents is the chain of pid's parents, nearest first (up to 8 levels,
// for evidence).
func parents(pid int) ([]kstate.Proc, error) {
	var chain []kstate.Proc
	for cur := pid; len(chain) < 8 && cur > 1; {
		par, err := kstate.Parent(cur)
		if err != nil {
			if len(chain) == 0 {
				return nil, err
			}
			break
		}
		chain = append(chain, par)
		cur = par.Pid
	}
	return chain, nil
}

// ProcessUIDEquals compares the real uid of a target's process, as
// Reader's user namespace sees it (host: ctlab reads /proc/<pid>/status;
// inside: a process in the container reads it).
type ProcessUIDEquals struct {
	In     string `yaml:"in" json:"in"`
	Value  int    `yaml:"value" json:"value"`
	Reader string `yaml:"reader,omitempty" json:"reader,omitempty" vocab:"host|inside"`
}

func (t *ProcessUIDEquals) validate(v *validator) {
	v.target(t.In, "container", "process")
	if r := t.Reader; r != "" && r != "host" && r != "inside" {
		v.errf("reader %q: want host or inside", r)
	}
	if t.Value < 0 {
		v.errf("value %d: want a uid >= 0", t.Value)
	}
}

// eval reads the real uid on the Uid: line of the target's
// /proc/<pid>/status, as the reader's user namespace sees it: the kernel
// translates ids for whoever opened the file (fs/proc/array.c,
// task_state: from_kuid_munged(seq_user_ns(m), ...)).
func (t *ProcessUIDEquals) eval(ctx context.Context, e *Engine) Evidence {
	want := fmt.Sprintf("uid %d", t.Value)
	fail := func(src string, err error) Evidence {
		return Evidence{Target: t.In, Source: src, Expected: want, Actual: "(unreadable)", Err: err.Error()}
	}
	pid, err := e.pidOf(t.In)
	if err != nil {
		return fail("/proc/<pid>/status Uid", err)
	}
	st, err := kstate.ReadStatus(pid)
	src := fmt.Sprintf("/proc/%d/status Uid (read by ctlab on the host)", pid)
	if err != nil {
		return fail(src, err)
	}
	uid := st.UID[0]
	if t.Reader == "inside" {
		name, err := e.containerOf(t.In)
		if err != nil {
			return fail(src, err)
		}
		inner := st.InnerPid()
		src = fmt.Sprintf("cat /proc/%d/status Uid (run inside %s)", inner, name)
		zero := 0
		out, _, err := e.execIn(ctx, name, []string{"cat", fmt.Sprintf("/proc/%d/status", inner)}, "", 10*time.Second, &zero)
		if err != nil {
			return fail(src, err)
		}
		ins, err := kstate.ParseStatus(out)
		if err != nil {
			return fail(src, err)
		}
		uid = ins.UID[0]
	}
	return Evidence{Target: t.In, Source: src, Expected: want, Actual: fmt.Sprintf("uid %d", uid), Pass: uid == t.Value}
}

// ExecOutputContains runs argv in a container and looks for Value in its output.
type ExecOutputContains struct {
	In      string        `yaml:"in" json:"in"`
	Argv    []string      `yaml:"argv" json:"argv"`
	Value   string        `yaml:"value" json:"value"`
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty" vocab:"30s"`
}

func (t *ExecOutputContains) validate(v *validator) {
	v.target(t.In, "container")
	v.argv(t.Argv)
}

func (t *ExecOutputContains) eval(ctx context.Context, e *Engine) Evidence {
	src := "exec " + strings.Join(t.Argv, " ") + " in " + t.In
	out, code, err := e.execIn(ctx, t.In, t.Argv, "", t.Timeout, nil)
	if err != nil {
		return failed(t.In, src, err)
	}
	actual := strings.TrimSpace(truncate(out, 400))
	if code != nil && *code != 0 {
		actual += fmt.Sprintf(" (exit %d)", *code)
	}
	return Evidence{Target: t.In, Source: src, Expected: "output containing " + strconv.Quote(t.Value), Actual: actual, Pass: strings.Contains(out, t.Value)}
}

// InitSystem says what runs this machine as pid 1, from fixed sources only.
type InitSystem struct {
	Value string `yaml:"value" json:"value" vocab:"systemd|other|any"`
}

func (t *InitSystem) validate(v *validator) {
	if !slices.Contains([]string{"systemd", "other", "any"}, t.Value) {
		v.errf("value %q: want systemd, other or any", t.Value)
	}
}

// alwaysGuard: a fact of the host, no step changes it.
func (*InitSystem) alwaysGuard() {}

// eval reads who is pid 1, from fixed files only (no trust needed).
func (t *InitSystem) eval(context.Context, *Engine) Evidence {
	want := map[string]string{"systemd": "systemd manages this machine", "other": "pid 1 is not systemd", "any": "any init (shown for the lesson)"}[t.Value]
	i, err := kstate.ReadInit()
	if err != nil {
		return Evidence{Target: "host", Source: kstate.InitSourceFiles, Expected: want, Actual: "(unreadable)", Err: err.Error()}
	}
	ok := t.Value == "any" || (t.Value == "systemd") == i.Systemd()
	return Evidence{Target: "host", Source: kstate.InitSourceFiles + " (what sd_booted() tests)", Expected: want, Actual: i.String(), Pass: ok}
}
