//go:build gendocs

package main

// `ctlab __gendocs DIR`, compiled in only with -tags gendocs (make dist
// does), writes the man pages and shell completions from the real command
// tree, so they cannot drift from the flags. The shipped binary does not
// link the man-page renderer.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/ctlab/ctlab/cmd/internal/ocicli"
)

func init() { buildHooks = append(buildHooks, addGenDocs) }

func addGenDocs(root *cobra.Command) {
	root.AddCommand(&cobra.Command{
		Use:    "__gendocs DIR",
		Short:  "Write man pages (DIR/man) and shell completions (DIR/completions)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return genDocs(root, args[0])
		},
	})
}

func genDocs(root *cobra.Command, dir string) error {
	man, comp := filepath.Join(dir, "man"), filepath.Join(dir, "completions")
	for _, d := range []string{man, comp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// The date in the pages is the commit's (SOURCE_DATE_EPOCH), so that
	// two builds of one commit are byte-identical.
	date := time.Now()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
		}
		date = time.Unix(sec, 0).UTC()
	}
	hdr := &doc.GenManHeader{Section: "1", Source: "ctlab " + version, Manual: "ctlab manual", Date: &date}
	for _, c := range append([]*cobra.Command{root}, companions()...) {
		c.DisableAutoGenTag = true
		if err := doc.GenManTree(c, hdr, man); err != nil {
			return fmt.Errorf("man pages of %s: %w", c.Name(), err)
		}
	}
	gens := map[string]func(f *os.File) error{
		"ctlab.bash": func(f *os.File) error { return root.GenBashCompletionV2(f, true) },
		"_ctlab":     func(f *os.File) error { return root.GenZshCompletion(f) },
		"ctlab.fish": func(f *os.File) error { return root.GenFishCompletion(f, true) },
	}
	for name, gen := range gens {
		if err := writeWith(filepath.Join(comp, name), gen); err != nil {
			return err
		}
	}
	return nil
}

func writeWith(path string, gen func(f *os.File) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := gen(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// companions describe the programs installed beside ctlab, for their man
// pages: ctlab-tui and ctlab-init have a one-screen command line of their
// own; ctlab-oci's pages come from its real command tree (the one
// `ctlab oci` also uses), so its flags cannot drift either.
func companions() []*cobra.Command {
	tui := &cobra.Command{
		Use:   "ctlab-tui",
		Short: "ctlab's lessons in the terminal (started by ctlab)",
		Long: `ctlab-tui is ctlab's terminal UI. "sudo ctlab" and "ctlab learn ID" hand
over to it; it is a separate program so that every "ctlab run" and every
container init does not pay for the UI's start-up. It must be installed in
the same directory as ctlab and ctlab-init.`,
		Run: func(*cobra.Command, []string) {},
	}
	var f tuiFlags
	addTUIFlags(tui, &f)
	tui.AddCommand(&cobra.Command{Use: "learn ID", Short: "Open one lesson", Run: func(*cobra.Command, []string) {}})
	initCmd := &cobra.Command{
		Use:   "ctlab-init",
		Short: "the first process of every ctlab container (not run by hand)",
		Long: `ctlab-init is the small program every ctlab container starts as, like runc's
"runc init": it finishes setting up the container from inside (mounts,
pivot_root, capabilities) and then executes the container's command. ctlab
finds it in its own directory; without it ctlab re-executes itself.`,
		Run: func(*cobra.Command, []string) {},
	}
	runtime, _ := ocicli.Command("ctlab-oci")
	return []*cobra.Command{tui, initCmd, runtime}
}
