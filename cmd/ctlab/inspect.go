package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/kstate"
	"github.com/ctlab/ctlab/sandbox/network"
	"github.com/ctlab/ctlab/sandbox/overlay"
)

// inspection is the live kernel state of one container. Every value comes
// from package kstate, read from procfs, cgroupfs or netlink at the time of
// the call; nothing comes from ctlab's own records except where to look
// (the pid, the cgroup name, the overlay directories).
type inspection struct {
	Name       string            `json:"name"`
	Pid        int               `json:"pid"` // the init's pid on the host (0 when not running)
	Status     string            `json:"status"`
	Namespaces map[string]nsView `json:"namespaces"`
	Process    *kstate.Process   `json:"process,omitempty"`
	Cgroup     []cgFile          `json:"cgroup_files,omitempty"`
	Links      []network.Link    `json:"links,omitempty"`
	Upper      []overlay.Change  `json:"upper_changes,omitempty"`
	Layout     overlay.Layout    `json:"layout"`
}

type nsView struct {
	Container uint64 `json:"container"`
	Host      uint64 `json:"host"`
	Shared    bool   `json:"shared"`
}

type cgFile struct {
	Controller string `json:"controller"`
	V1         string `json:"v1,omitempty"`
	V2         string `json:"v2,omitempty"`
	Path       string `json:"path"`
	Value      string `json:"value"`
}

func newInspectCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect NAME",
		Short: "Show a container's live kernel state: namespaces, ids, cgroup, links, upper layer",
		Long: `inspect reads the kernel now — /proc/<pid>/ns/*, status, uid_map,
timens_offsets, /proc/<pid>/cgroup and the cgroup's files, the links of its
network namespace over netlink, and what its upper layer holds — and prints
it beside the host's values. With --json the top-level "pid" is the
container init's pid on the host.`,
		Example: `  sudo ctlab inspect web
  sudo ctlab inspect web --json | jq .namespaces`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sandbox.Load(kernelName(args[0]))
			if err != nil {
				return &sandbox.InputError{Problem: err.Error(), Fix: "see ctlab ps"}
			}
			in := inspect(c)
			if asJSON {
				return writeJSON(cmd, in)
			}
			printInspection(cmd, in)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func inspect(c *sandbox.Container) inspection {
	in := inspection{Name: c.Name, Status: c.Status(), Namespaces: map[string]nsView{}, Layout: c.Layout}
	if c.Running() {
		in.Pid = c.Pid
		if p, err := kstate.Of(c.Pid); err == nil {
			in.Process = p
		}
		for _, ns := range sandbox.AllNamespaces {
			a, _ := kstate.NSInode(c.Pid, string(ns))
			h, _ := kstate.NSInode(os.Getpid(), string(ns))
			in.Namespaces[string(ns)] = nsView{Container: a, Host: h, Shared: a == h}
		}
		if links, _, err := kstate.Links(c.NSPath(sandbox.NSNet)); err == nil {
			in.Links = links
		}
	}
	if _, files, err := kstate.Cgroup(c.Name); err == nil {
		for _, f := range files {
			in.Cgroup = append(in.Cgroup, cgFile{f.Controller, f.V1Name, f.V2Name, f.Path, f.Value})
		}
	}
	if ch, _, err := kstate.Upper(c.Layout); err == nil {
		in.Upper = ch
	}
	return in
}

func printInspection(cmd *cobra.Command, in inspection) {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "%s  pid %d on the host  %s\n\n", in.Name, in.Pid, in.Status)
	if in.Pid != 0 {
		fmt.Fprintf(w, "%-8s %-12s %-12s\n", "NS", "CONTAINER", "HOST")
		for _, ns := range sandbox.AllNamespaces {
			v := in.Namespaces[string(ns)]
			mark := "new"
			if v.Shared {
				mark = "shared with the host"
			}
			fmt.Fprintf(w, "%-8s %-12d %-12d %s\n", ns, v.Container, v.Host, mark)
		}
	}
	if p := in.Process; p != nil {
		fmt.Fprintln(w)
		if st := p.Status; st.OK() {
			fmt.Fprintf(w, "NSpid    %v (host first, then inside)\n", st.Value.NSpid)
		}
		if h := p.Hostname; h.OK() {
			fmt.Fprintf(w, "hostname %s   domainname %s\n", h.Value, p.Domainname.Value)
		}
		if m := p.UIDMap; m.OK() && len(m.Value) > 0 {
			var s []string
			for _, e := range m.Value {
				s = append(s, e.String())
			}
			fmt.Fprintf(w, "uid_map  %s (inside outside count)\n", strings.Join(s, "; "))
		}
		if t := p.TimeOffsets; t.OK() && (t.Value.Monotonic != 0 || t.Value.Boottime != 0) {
			fmt.Fprintf(w, "time     monotonic %+v  boottime %+v\n", t.Value.Monotonic, t.Value.Boottime)
		}
		if cg := p.Cgroups; cg.OK() {
			for _, m := range cg.Value {
				fmt.Fprintf(w, "cgroup   %d:%s:%s\n", m.Hierarchy, strings.Join(m.Controllers, ","), m.Path)
			}
		}
	}
	if len(in.Cgroup) > 0 {
		fmt.Fprintln(w, "\ncgroup files (v1 name / v2 name)")
		for _, f := range in.Cgroup {
			fmt.Fprintf(w, "  %-44s %s\n", f.Path, strings.TrimSpace(f.Value))
		}
	}
	for _, l := range in.Links {
		fmt.Fprintf(w, "link     %-6s %-8s %-6s %v\n", l.Name, l.Type, l.State, l.Addrs)
	}
	if len(in.Upper) > 0 {
		fmt.Fprintf(w, "\nupper layer %s\n", in.Layout.Upper)
		for _, ch := range in.Upper {
			fmt.Fprintf(w, "  %s %s\n", ch.Kind.Symbol(), ch.Path)
		}
	}
}
