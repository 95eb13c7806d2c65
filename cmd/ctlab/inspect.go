package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/kstate"
)

// inspection is the live kernel state of one container: the kstate
// snapshot (every value read from procfs, cgroupfs or netlink at the time
// of the call; ctlab's records say only where to look: the pid, the
// cgroup name, the overlay directories) and the container's status.
type inspection struct {
	*kstate.Snapshot
	Status string `json:"status"`
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
	sub := kstate.Subject{Name: c.Name, Cgroup: c.Name, Layout: c.Layout}
	if c.Running() {
		sub.Pid = c.Pid
	}
	return inspection{Snapshot: kstate.ReadSnapshot(sub, kstate.PartsAll, nil), Status: c.Status()}
}

func printInspection(cmd *cobra.Command, in inspection) {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "%s  pid %d on the host  %s\n\n", in.Name, in.Pid, in.Status)
	if in.Pid != 0 {
		fmt.Fprintf(w, "%-8s %-12s %-12s\n", "NS", "CONTAINER", "HOST")
		for _, ns := range kstate.NSKinds {
			v, ok := in.Namespaces[ns]
			if !ok {
				continue // a "for children" link, or a kind this kernel lacks
			}
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
	if len(in.CgroupFiles) > 0 {
		fmt.Fprintf(w, "\ncgroup files of %s (v1 name / v2 name)\n", in.Cgroup)
		for _, f := range in.CgroupFiles {
			fmt.Fprintf(w, "  %-44s %s\n", f.Path, strings.TrimSpace(f.Value))
		}
	}
	for _, l := range in.Links {
		fmt.Fprintf(w, "link     %-6s %-8s %-6s %v\n", l.Name, l.Type, l.State, l.Addrs)
	}
	if len(in.Upper) > 0 && in.Layout != nil {
		fmt.Fprintf(w, "\nupper layer %s\n", in.Layout.Upper)
		for _, ch := range in.Upper {
			fmt.Fprintf(w, "  %s %s\n", ch.Kind.Symbol(), ch.Path)
		}
	}
	for _, part := range slices.Sorted(maps.Keys(in.Errors)) {
		fmt.Fprintf(w, "could not read %s: %s\n", part, in.Errors[part])
	}
}
