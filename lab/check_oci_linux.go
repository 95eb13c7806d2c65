package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/ctlab/ctlab/sandbox/kstate"
	"github.com/ctlab/ctlab/sandbox/oci"
)

// Checks of the OCI-runtime lesson: who the container's ancestors are (read
// from /proc), and which calls ctlab's runtime received (read from the
// call log the runtime itself appends to).

// ProcessAncestry: the target's ancestors, nearest first, have the comm
// names of Chain (a prefix of the whole chain). With Daemon (a containerd
// action's name), one ancestor's command line must also name that
// daemon's socket: a shim re-parents itself to PID 1, and `-address` is
// what ties it to the containerd that started it.
type ProcessAncestry struct {
	Of     string   `yaml:"of" json:"of"`
	Chain  []string `yaml:"chain" json:"chain"`
	Daemon string   `yaml:"daemon,omitempty" json:"daemon,omitempty"`
}

func (c *ProcessAncestry) validate(v *validator) {
	v.target(c.Of, "container", "process")
	if len(c.Chain) == 0 || slices.Contains(c.Chain, "") {
		v.errf("chain: want the comm names of the parent, grandparent, ... (at least one)")
	}
	if c.Daemon != "" {
		v.target(c.Daemon, "process")
	}
}

func (c *ProcessAncestry) eval(_ context.Context, e *Engine) Evidence {
	pid, err := e.pidOf(c.Of)
	if err != nil {
		return failed(c.Of, "/proc/<pid>/status PPid", err)
	}
	src := fmt.Sprintf("/proc/%d/status PPid, up to PID 1; /proc/<ancestor>/cmdline", pid)
	chain, err := parents(pid)
	if err != nil {
		return failed(c.Of, src, err)
	}
	self, err := kstate.ReadStat(pid)
	if err != nil {
		return failed(c.Of, src, err)
	}
	desc := []string{fmt.Sprintf("%s (%d)", self.Comm, pid)}
	pass := len(chain) >= len(c.Chain)
	for i, p := range chain {
		desc = append(desc, fmt.Sprintf("%s (%d)", p.Comm, p.Pid))
		if i < len(c.Chain) && p.Comm != c.Chain[i] {
			pass = false
		}
	}
	expected := "ancestors " + strings.Join(c.Chain, " <- ")
	actual := strings.Join(desc, " <- ")
	if c.Daemon != "" {
		d, err := e.ociDaemon(c.Daemon)
		if err != nil {
			return failed(c.Of, src, err)
		}
		expected += ", one started with -address " + d.sock
		named := false
		for _, p := range chain {
			if args := cmdline(p.Pid); slices.Contains(args, d.sock) {
				named = true
				actual += fmt.Sprintf("; %d: %s", p.Pid, strings.Join(args, " "))
			}
		}
		pass = pass && named
	}
	return Evidence{Target: c.Of, Source: src, Expected: expected, Actual: actual, Pass: pass}
}

// mentions reports whether an argument names dir or a path in it.
func mentions(args []string, dir string) bool {
	return slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, dir+"/") })
}

// cmdline is a process's argv (nil when it is gone).
func cmdline(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
}

// OCICallLogged: ctlab's OCI runtime logged a call with subcommand Call
// for the container a client started (ctr_run, ctr_exec, podman_run: its
// OCI id, and a --root in the lab directory), made since the lab started
// it, from Caller (the parent's comm: containerd-shim, conmon, podman)
// when given.
type OCICallLogged struct {
	Of     string `yaml:"of" json:"of"`
	Call   string `yaml:"call" json:"call"`
	Caller string `yaml:"caller,omitempty" json:"caller,omitempty"`
}

func (c *OCICallLogged) validate(v *validator) {
	v.target(c.Of, "process")
	if !slices.Contains([]string{"create", "start", "exec", "kill", "delete", "state", "ps", "pause", "resume", "update"}, c.Call) {
		v.errf("call %q: want a runtime subcommand (create, start, exec, kill, delete, state, ...)", c.Call)
	}
	if !slices.Contains(v.s.ReadsHost, v.step) { // ctlab's log of every caller's calls
		v.s.ReadsHost = append(v.s.ReadsHost, v.step)
	}
}

func (c *OCICallLogged) eval(_ context.Context, e *Engine) Evidence {
	t, err := e.ociTask(c.Of)
	if err != nil {
		return failed(c.Of, oci.CallLog, err)
	}
	f, err := os.Open(oci.CallLog)
	if err != nil {
		return failed(c.Of, oci.CallLog, err)
	}
	defer f.Close()
	ev := Evidence{Target: c.Of, Source: oci.CallLog, Expected: fmt.Sprintf("a %q call for %s", c.Call, t.id), Actual: "no such call"}
	if c.Caller != "" {
		ev.Expected += " from " + c.Caller
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var call oci.Call
		if json.Unmarshal(sc.Bytes(), &call) != nil || call.Time.Before(t.since) {
			continue
		}
		if !slices.Contains(call.Args, c.Call) || !slices.Contains(call.Args, t.id) || !mentions(call.Args, e.labDir()) {
			continue // another client's container of the same name: its --root is elsewhere
		}
		ok := c.Caller == "" || call.Caller == c.Caller
		if ok || !ev.Pass { // show a matching call, the first from the right caller
			ev.Actual = fmt.Sprintf("%s (pid %d) ran ctlab-oci %s", call.Caller, call.Pid, strings.Join(call.Args, " "))
			if call.Error != "" {
				ev.Actual += " -> error: " + call.Error
			}
		}
		if ok && !ev.Pass {
			ev.Pass = true
			break
		}
	}
	if err := sc.Err(); err != nil {
		return failed(c.Of, oci.CallLog, err)
	}
	return ev
}
