package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ctlab/ctlab/sandbox/host"
)

func newDoctorCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check what this host supports: root, kernel, namespaces, cgroups, overlay",
		Long: `doctor reads the kernel and says, for every feature ctlab's lessons use,
whether this host has it and how to fix it if not: root, kernel version,
each of the eight namespace kinds, the cgroup mode (v1, v2, or hybrid —
treated as v1) and its controllers, the cgroup driver, overlayfs and user
namespaces. Exit status 1 when something required is missing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDoctor(cmd.OutOrStdout(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func runDoctor(w io.Writer, asJSON bool) error {
	f := host.Gather()
	checks := host.Doctor(f)
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"facts": f, "checks": checks})
	}
	bad := 0
	for _, c := range checks {
		mark := "ok  "
		if !c.OK {
			mark = "MISS"
			if c.Name != "busybox" && c.Name != "runc" {
				bad++
			}
		}
		fmt.Fprintf(w, "[%s] %-20s %s\n", mark, c.Name, c.Detail)
		if !c.OK {
			fmt.Fprintf(w, "       fix: %s\n", c.Fix)
		}
	}
	if bad > 0 {
		return exitError{1}
	}
	return nil
}
