package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ctlab/ctlab/sandbox"
	"github.com/ctlab/ctlab/sandbox/network"
)

// inspection is the live kernel state of one container, every value read
// from procfs, cgroupfs or netlink at the time of the call.
type inspection struct {
	Name       string                   `json:"name"`
	Pid        int                      `json:"pid"` // the init's pid on the host
	Status     string                   `json:"status"`
	Namespaces map[string]nsView        `json:"namespaces"`
	UIDMap     string                   `json:"uid_map,omitempty"`
	GIDMap     string                   `json:"gid_map,omitempty"`
	TimeOffs   string                   `json:"timens_offsets,omitempty"`
	Cgroup     string                   `json:"cgroup,omitempty"` // /proc/<pid>/cgroup
	Limits     []map[string]string      `json:"cgroup_files,omitempty"`
	Links      []network.Link           `json:"links,omitempty"`
	Upper      []map[string]interface{} `json:"upper,omitempty"`
	Dir        string                   `json:"dir"`
}

type nsView struct {
	Container uint64 `json:"container"`
	Host      uint64 `json:"host"`
	Shared    bool   `json:"shared"`
}

func newInspectCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect NAME",
		Short: "Show a container's live kernel state: namespaces, ids, cgroup, links",
		Long: `inspect reads the kernel now — /proc/<pid>/ns/*, uid_map, timens_offsets,
/proc/<pid>/cgroup, the cgroup's files, and the links of its network
namespace over netlink — and prints it. With --json the top-level "pid" is
the container init's pid on the host.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sandbox.Load(args[0])
			if err != nil {
				return &sandbox.InputError{Problem: err.Error(), Fix: "see ctlab ps"}
			}
			in := inspect(c)
			if asJSON {
				return writeJSON(cmd, in)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "name %s  pid %d (host)  status %s\n", in.Name, in.Pid, in.Status)
			fmt.Fprintf(w, "%-8s %-12s %-12s\n", "NS", "CONTAINER", "HOST")
			for _, ns := range sandbox.AllNamespaces {
				v := in.Namespaces[string(ns)]
				mark := "new"
				if v.Shared {
					mark = "shared with host"
				}
				fmt.Fprintf(w, "%-8s %-12d %-12d %s\n", ns, v.Container, v.Host, mark)
			}
			if in.UIDMap != "" {
				fmt.Fprintf(w, "uid_map  %s\n", in.UIDMap)
			}
			if in.TimeOffs != "" {
				fmt.Fprintf(w, "timens_offsets %s\n", strings.ReplaceAll(in.TimeOffs, "\n", "; "))
			}
			fmt.Fprintf(w, "cgroup:\n%s", indent(in.Cgroup))
			for _, f := range in.Limits {
				fmt.Fprintf(w, "  %-30s %-28s = %s\n", f["path"], "("+f["v1"]+" / "+f["v2"]+")", f["value"])
			}
			for _, l := range in.Links {
				fmt.Fprintf(w, "link %-6s %-5s %s %v\n", l.Name, l.State, l.Type, l.Addrs)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func inspect(c *sandbox.Container) inspection {
	in := inspection{Name: c.Name, Status: c.Status(), Namespaces: map[string]nsView{}, Dir: c.Dir}
	if c.Running() {
		in.Pid = c.Pid
	}
	read := func(p string) string {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/%s", c.Pid, p))
		return strings.TrimSpace(string(b))
	}
	if in.Pid != 0 {
		for _, ns := range sandbox.AllNamespaces {
			a, _ := sandbox.NSInode(c.Pid, ns)
			h, _ := sandbox.NSInode(0, ns)
			in.Namespaces[string(ns)] = nsView{Container: a, Host: h, Shared: a == h}
		}
		in.UIDMap = strings.Join(strings.Fields(read("uid_map")), " ")
		in.GIDMap = strings.Join(strings.Fields(read("gid_map")), " ")
		in.TimeOffs = read("timens_offsets")
		in.Cgroup = read("cgroup")
		if links, err := network.ReadLinks(c.NSPath(sandbox.NSNet)); err == nil {
			in.Links = links
		}
	}
	if cg, err := c.Cgroup(); err == nil {
		for _, f := range cg.Files() {
			in.Limits = append(in.Limits, map[string]string{"controller": f.Controller, "v1": f.V1Name, "v2": f.V2Name, "path": f.Path, "value": f.Value})
		}
	}
	return in
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			b.WriteString("  " + l + "\n")
		}
	}
	return b.String()
}
