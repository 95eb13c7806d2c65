package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ctlab/ctlab/lab"
)

func checkLang(lang string) error {
	if lang != "en" && lang != "zh" {
		return usageError{fmt.Errorf("--lang %q: want en or zh", lang)}
	}
	return nil
}

// shippedScenarios loads the embedded scenarios; a broken one is reported
// on stderr and the others stay usable.
func shippedScenarios(stderr io.Writer) []*lab.Scenario {
	list, err := lab.Shipped()
	if err != nil {
		fmt.Fprintln(stderr, "ctlab: some built-in scenarios do not load:\n"+err.Error())
	}
	return list
}

// findScenario resolves a built-in scenario id, or a scenario file when
// the argument is a path (ends in .yaml or contains a slash): a file from
// elsewhere is third-party content, held to the same strict loader and
// refused host commands unless --trust.
func findScenario(cmd *cobra.Command, id string) (*lab.Scenario, error) {
	if strings.HasSuffix(id, ".yaml") || strings.Contains(id, "/") {
		s, err := lab.NewLoader().LoadFile(id)
		if err != nil {
			return nil, usageError{err}
		}
		return s, nil
	}
	s, err := lab.Find(shippedScenarios(cmd.ErrOrStderr()), id)
	if err != nil {
		return nil, usageError{err}
	}
	return s, nil
}

func newScenarioCmd() *cobra.Command {
	root := &cobra.Command{
		Use:     "scenario",
		Aliases: []string{"scenarios", "sc"},
		Short:   "List, run, validate and test lesson scenarios (headless)",
		Long: `A scenario is one lesson: YAML in scenarios/ (embedded in the binary), whose
steps really create namespaces, cgroups, overlay mounts and links, and whose
checks read the result back from the kernel. The format is documented in
docs/scenario-format.md.

Headless runs print the same event stream the terminal UI shows: as text
(--plain, the default) or as JSON lines (--json).`,
		Example: `  ctlab scenario list
  sudo ctlab scenario run ns-uts --solve            # rehearse unattended
  sudo ctlab scenario run ns-uts --lang zh          # do the tasks yourself
  ctlab scenario validate my-lesson.yaml            # author: check the file
  sudo ctlab scenario test ns-uts                   # author: checks fail before, pass after
  ctlab scenario vocab                              # author: every check and action`,
	}
	root.AddCommand(newScenarioListCmd(), newScenarioShowCmd(), newScenarioRunCmd(),
		newScenarioValidateCmd(), newScenarioTestCmd(), newScenarioResetCmd(), newScenarioVocabCmd())
	return root
}

func newScenarioListCmd() *cobra.Command {
	var asJSON bool
	var lang string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the built-in scenarios, whether this host can run them, and your progress",
		Example: `  ctlab scenario list
  ctlab scenario list --json | jq -r '.[] | select(.runnable) | .id'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkLang(lang); err != nil {
				return err
			}
			list := shippedScenarios(cmd.ErrOrStderr())
			prog, _ := lab.OpenProgress()
			type row struct {
				ID         string                `json:"id"`
				Chapter    string                `json:"chapter"`
				Title      lab.Text              `json:"title"`
				Summary    lab.Text              `json:"summary"`
				Minutes    int                   `json:"minutes"`
				Tags       []string              `json:"tags,omitempty"`
				Steps      int                   `json:"steps"`
				Runnable   bool                  `json:"runnable"`
				Reasons    []string              `json:"reasons,omitempty"`
				NeedsTrust []string              `json:"needs_trust,omitempty"`
				Progress   *lab.ScenarioProgress `json:"progress,omitempty"`
			}
			var rows []row
			for _, s := range list {
				why := lab.PreflightIn(s, lang)
				r := row{ID: s.ID, Chapter: s.Chapter, Title: s.Title, Summary: s.Summary, Minutes: s.Minutes, Tags: s.Tags,
					Steps: len(s.Steps), Runnable: len(why) == 0, Reasons: why, NeedsTrust: s.TrustSteps()}
				if prog != nil {
					r.Progress = prog.Scenarios[s.ID]
				}
				rows = append(rows, r)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if rows == nil {
					rows = []row{}
				}
				return enc.Encode(rows)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCHAPTER\tMIN\tDONE\tTITLE\tHOST")
			for _, r := range rows {
				done := "-"
				if r.Progress != nil {
					done = fmt.Sprintf("%d/%d", len(r.Progress.Passed), r.Steps)
				}
				host := "ok"
				if !r.Runnable {
					host = "cannot run: " + r.Reasons[0]
					if len(r.Reasons) > 1 {
						host += fmt.Sprintf(" (+%d more, see show)", len(r.Reasons)-1)
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", r.ID, r.Chapter, r.Minutes, done, lab.Text(r.Title).In(lang), host)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (id, titles, steps, runnable + reasons, progress)")
	cmd.Flags().StringVar(&lang, "lang", lab.LangFromEnv(), "language of titles: en or zh")
	return cmd
}

func newScenarioShowCmd() *cobra.Command {
	var lang string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID|FILE",
		Short: "Show a scenario: requirements, containers, steps, and what it would run",
		Example: `  ctlab scenario show ns-uts
  ctlab scenario show ns-uts --lang zh
  ctlab scenario show ns-uts --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkLang(lang); err != nil {
				return err
			}
			s, err := findScenario(cmd, args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			}
			showScenario(out, s, lang)
			return nil
		},
	}
	cmd.Flags().StringVar(&lang, "lang", lab.LangFromEnv(), "language: en or zh")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the decoded scenario as JSON")
	return cmd
}

func showScenario(w io.Writer, s *lab.Scenario, lang string) {
	fmt.Fprintf(w, "%s — %s\n%s\n\n", s.ID, s.Title.In(lang), s.Summary.In(lang))
	fmt.Fprintf(w, "chapter %s, about %d minutes, tags %s\n", s.Chapter, s.Minutes, strings.Join(s.Tags, " "))
	r := s.Requires
	fmt.Fprintf(w, "requires: root=%v kernel>=%s namespaces=%v controllers=%v cgroup=%s overlay=%v userns=%v binaries=%v\n",
		r.Root, r.Kernel, r.Namespaces, r.Controllers, r.Cgroup, r.Overlay, r.Userns, r.Binaries)
	if why := lab.PreflightIn(s, lang); len(why) > 0 {
		fmt.Fprintln(w, "this host cannot run it:")
		for _, x := range why {
			fmt.Fprintln(w, "  -", x)
		}
	} else {
		fmt.Fprintln(w, "this host can run it")
	}
	steps, reasons := s.NeedsTrustWhy()
	if len(steps) > 0 {
		fmt.Fprintf(w, "TOUCHES THE HOST (commands or file reads) in steps %s: needs --trust\n", strings.Join(steps, ", "))
	}
	for _, r := range reasons {
		fmt.Fprintf(w, "NEEDS --trust: %s\n", r)
	}
	fmt.Fprintln(w, "\ncontainers:")
	names := make([]string, 0, len(s.Containers))
	for name := range s.Containers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c := s.Containers[name]
		fmt.Fprintf(w, "  %s-%s: namespaces %v rootfs %q hostname %q net %v limits %+v\n", s.ID, name, c.Namespaces, c.Rootfs, c.Hostname, c.Net, c.Limits)
	}
	fmt.Fprintln(w, "\nsteps:")
	for i, st := range s.Steps {
		fmt.Fprintf(w, "  %d. %s (%s) %s\n", i+1, st.ID, st.Kind, st.Title.In(lang))
		for _, a := range st.Do {
			fmt.Fprintf(w, "       do:     %s\n", a)
		}
		for _, c := range st.Expect {
			fmt.Fprintf(w, "       expect: %s\n", c)
		}
		if len(st.Hints) > 0 {
			fmt.Fprintf(w, "       hints:  %d\n", len(st.Hints))
		}
		for _, a := range st.Solve {
			fmt.Fprintf(w, "       solve:  %s\n", a)
		}
	}
}

// interruptible returns a context cancelled by Ctrl-C or SIGTERM, so a run
// still removes what it made.
func interruptible(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

func newScenarioRunCmd() *cobra.Command {
	var plain, asJSON, solve, trust, noProgress bool
	var lang, resultFile string
	cmd := &cobra.Command{
		Use:   "run ID|FILE",
		Short: "Run a scenario headless: demos run, tasks wait for you (or --solve)",
		Long: `run plays a scenario without the terminal UI. Demo steps run their actions and
checks; task steps print what to do and wait until the checks pass: open a
shell in the container from another terminal with the command shown
(sudo ctlab exec NAME -- /bin/sh). --solve performs each task's solution
instead, so the whole scenario runs unattended (instructor rehearsal, CI).

Everything the scenario created is removed at the end, also on Ctrl-C.
Progress is saved to ~/.config/ctlab/progress.json (under sudo: the invoking
user's). Exit status: 0 all steps passed, 1 a step failed, 2 usage,
3 this host cannot run the scenario.`,
		Example: `  sudo ctlab scenario run ns-uts
  sudo ctlab scenario run ns-uts --solve --plain
  sudo ctlab scenario run ns-uts --solve --json > run.jsonl
  sudo ctlab scenario run ns-uts --solve --result result.json
  sudo ctlab scenario run ns-uts --lang zh
  sudo ctlab scenario run ./my-lesson.yaml          # a file: host commands need --trust`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkLang(lang); err != nil {
				return err
			}
			if plain && asJSON {
				return usageError{errors.New("--plain and --json exclude each other")}
			}
			s, err := findScenario(cmd, args[0])
			if err != nil {
				return err
			}
			if why := lab.PreflightIn(s, lang); len(why) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "ctlab: scenario %s cannot run on this host:\n  - %s\n", s.ID, strings.Join(why, "\n  - "))
				return exitError{3}
			}
			emit := lab.PlainPrinter(cmd.OutOrStdout(), lang)
			if asJSON {
				emit = lab.JSONPrinter(cmd.OutOrStdout())
			}
			e, err := lab.New(s, lab.Options{Lang: lang, Trust: trust, Emit: emit})
			if err != nil {
				var te *lab.TrustError
				if errors.As(err, &te) {
					return usageError{err}
				}
				return err
			}
			if !asJSON && !solve {
				fmt.Fprintln(cmd.ErrOrStderr(), "tip: tasks wait for you; --solve performs them")
			}
			ctx, cancel := interruptible(cmd.Context())
			defer cancel()
			r, err := e.Run(ctx, lab.RunOptions{Solve: solve})
			if err != nil {
				return err
			}
			if resultFile != "" {
				b, err := json.MarshalIndent(r, "", "  ")
				if err == nil {
					err = os.WriteFile(resultFile, append(b, '\n'), 0o644)
				}
				if err != nil {
					return fmt.Errorf("write result: %w", err)
				}
			}
			if !noProgress {
				if p, err := lab.OpenProgress(); err == nil {
					p.Record(s, r)
					if err := p.Save(); err != nil {
						fmt.Fprintln(cmd.ErrOrStderr(), "ctlab: progress not saved:", err)
					}
				} else {
					fmt.Fprintln(cmd.ErrOrStderr(), "ctlab: progress not saved:", err)
				}
			}
			if !r.Passed() {
				return exitError{1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&plain, "plain", false, "readable text output (the default)")
	f.BoolVar(&asJSON, "json", false, "one JSON event per line; the last (scenario_done) carries the result")
	f.BoolVar(&solve, "solve", false, "perform each task's solution instead of waiting")
	f.BoolVar(&trust, "trust", false, "allow the scenario's host commands (only for scenarios you have read)")
	f.BoolVar(&noProgress, "no-progress", false, "do not record progress")
	f.StringVar(&resultFile, "result", "", "also write the result (status, steps, every check's evidence) as JSON to this file")
	f.StringVar(&lang, "lang", lab.LangFromEnv(), "language of the lesson text: en or zh")
	return cmd
}

func newScenarioValidateCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check scenario files: strict keys, bounds, every reference resolved",
		Long: `validate loads each file as ctlab would, without running anything: unknown
keys and wrong types are reported with file:line, content pages, container
names and step ids are resolved, and host commands (which need --trust) are
listed. Exit status 2 when a file is invalid.`,
		Example: `  ctlab scenario validate scenarios/*.yaml
  ctlab scenario validate --json my-lesson.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			loader := lab.NewLoader()
			type res struct {
				File       string   `json:"file"`
				OK         bool     `json:"ok"`
				ID         string   `json:"id,omitempty"`
				Steps      int      `json:"steps,omitempty"`
				NeedsTrust []string `json:"needs_trust,omitempty"`
				// Trust is "none" or "--trust"; TrustReasons says why.
				Trust        string        `json:"trust,omitempty"`
				TrustReasons []string      `json:"trust_reasons,omitempty"`
				Problems     []lab.Problem `json:"problems,omitempty"`
			}
			var all []res
			bad := 0
			for _, f := range args {
				s, err := loader.LoadFile(f)
				r := res{File: f, OK: err == nil}
				if err != nil {
					bad++
					var le *lab.LoadError
					if errors.As(err, &le) {
						r.Problems = le.Problems
					} else {
						r.Problems = []lab.Problem{{Msg: err.Error()}}
					}
					if !asJSON {
						fmt.Fprintln(cmd.OutOrStdout(), err)
					}
				} else {
					r.ID, r.Steps = s.ID, len(s.Steps)
					r.NeedsTrust, r.TrustReasons = s.NeedsTrustWhy()
					r.Trust = "none"
					if len(r.NeedsTrust) > 0 || len(r.TrustReasons) > 0 {
						r.Trust = "--trust"
					}
					if !asJSON {
						printTrust(cmd.OutOrStdout(), f, r.NeedsTrust, r.TrustReasons, len(s.Steps), s.ID)
					}
				}
				all = append(all, r)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(all); err != nil {
					return err
				}
			}
			if bad > 0 {
				return exitError{2}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON")
	return cmd
}

// scenarioTest holds the flags of `scenario test`.
type scenarioTest struct {
	asJSON, trust, verbose, all bool
	junit                       string
}

func newScenarioTestCmd() *cobra.Command {
	var o scenarioTest
	cmd := &cobra.Command{
		Use:   "test [ID|FILE...]",
		Short: "Prove scenarios: each check must FAIL before its step and PASS after",
		Long: `test runs every step of each scenario (all built-in ones when no ID is given)
with its solution, evaluating the step's checks twice: before the step's
do/solve each check must FAIL — a check that already passes cannot tell a
learner anything and is reported as a defect (mark checks that must hold
throughout with guard: true) — and after it every check must PASS. Then the
scenario is reset and nothing it made may be left in the kernel (cgroups,
mounts, links). Scenarios this host cannot run are reported as skipped,
with the reason. Exit status 1 on any defect.`,
		Example: `  sudo ctlab scenario test --all
  sudo ctlab scenario test ns-uts ns-pid
  sudo ctlab scenario test --json > selftest.json
  sudo ctlab scenario test --junit selftest.xml`,
		RunE: o.run,
	}
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print the reports as JSON (evidence before and after for every check)")
	cmd.Flags().BoolVar(&o.trust, "trust", false, "allow host commands of scenarios that have them")
	cmd.Flags().BoolVarP(&o.verbose, "verbose", "v", false, "print every check's before/after result")
	cmd.Flags().BoolVar(&o.all, "all", false, "test every built-in scenario (the default when no ID is given)")
	cmd.Flags().StringVar(&o.junit, "junit", "", "also write JUnit XML (a suite per scenario, a case per step) to this file")
	return cmd
}

func (o *scenarioTest) run(cmd *cobra.Command, args []string) error {
	if o.all && len(args) > 0 {
		return usageError{errors.New("--all tests every built-in scenario: give no IDs with it")}
	}
	list := shippedScenarios(cmd.ErrOrStderr())
	if len(args) > 0 {
		list = nil
		for _, id := range args {
			s, err := findScenario(cmd, id)
			if err != nil {
				return err
			}
			list = append(list, s)
		}
	}
	ctx, cancel := interruptible(cmd.Context())
	defer cancel()
	out := cmd.OutOrStdout()
	reps := []*lab.TestReport{}
	failed := 0
	for _, s := range list {
		if ctx.Err() != nil {
			break
		}
		rep := o.test(ctx, s)
		reps = append(reps, rep)
		if !rep.Pass {
			failed++
		}
		if !o.asJSON {
			o.print(out, rep)
		}
	}
	if err := o.write(out, reps); err != nil {
		return err
	}
	if failed > 0 {
		if !o.asJSON {
			fmt.Fprintf(out, "%d of %d scenarios have defects\n", failed, len(reps))
		}
		return exitError{1}
	}
	return ctx.Err()
}

// test self-tests one scenario, or skips one that needs --trust.
func (o *scenarioTest) test(ctx context.Context, s *lab.Scenario) *lab.TestReport {
	if steps := s.TrustSteps(); len(steps) > 0 && !o.trust {
		return &lab.TestReport{Scenario: s.ID, Pass: true, Skipped: []string{"touches the host (steps " + strings.Join(steps, ", ") + "): needs --trust"}}
	}
	return lab.SelfTest(ctx, s, lab.Options{Trust: o.trust})
}

// print writes one report as text.
func (o *scenarioTest) print(out io.Writer, rep *lab.TestReport) {
	switch {
	case len(rep.Skipped) > 0:
		fmt.Fprintf(out, "SKIP %s: %s\n", rep.Scenario, strings.Join(rep.Skipped, "; "))
	case rep.Pass:
		fmt.Fprintf(out, "ok   %s (%d steps, %s)\n", rep.Scenario, len(rep.Steps), rep.Duration.Round(1e6))
	default:
		fmt.Fprintf(out, "FAIL %s\n", rep.Scenario)
		for _, d := range rep.Defects() {
			fmt.Fprintf(out, "     - %s\n", d)
		}
	}
	if !o.verbose {
		return
	}
	for _, st := range rep.Steps {
		for i, a := range st.After {
			b := ""
			if i < len(st.Before) {
				b = fmt.Sprintf("%v", st.Before[i].Pass)
			}
			fmt.Fprintf(out, "     %s: %s before=%s after=%v (%s)\n", st.ID, a.Desc, b, a.Pass, a.Source)
		}
	}
}

// write prints the reports as JSON and writes the JUnit file, as asked.
func (o *scenarioTest) write(out io.Writer, reps []*lab.TestReport) error {
	if o.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(reps); err != nil {
			return err
		}
	}
	if o.junit == "" {
		return nil
	}
	f, err := os.Create(o.junit)
	if err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	werr := lab.WriteJUnit(f, reps)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	return werr
}

func newScenarioVocabCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "vocab",
		Short: "List every check and action a scenario can use, with its keys",
		Long: `vocab prints the vocabulary of scenario files: every action (do, solve,
cleanup) and every check (expect), with its family, its keys ("?" marks an
optional one; parentheses give a default or the allowed values) and what it
does or reads. It is generated from the same table the loader and the engine
use, as is the reference in docs/scenario-format.md.`,
		Example: `  ctlab scenario vocab
  ctlab scenario vocab --json | jq '.[] | select(.role == "check") | .name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(lab.Vocabulary())
			}
			for _, role := range []string{"action", "check"} {
				fmt.Fprintf(out, "%sS\n", strings.ToUpper(role))
				for _, k := range lab.Vocabulary() {
					if k.Role == role {
						fmt.Fprintf(out, "  %-22s %-11s %s\n", k.Name, k.Family, strings.ReplaceAll(k.Args(), "`", ""))
					}
				}
				fmt.Fprintln(out)
			}
			fmt.Fprintln(out, "What each one does or reads: docs/scenario-format.md, or --json.")
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the vocabulary as JSON: name, role, family, doc, fields")
	return cmd
}

func newScenarioResetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "reset ID",
		Short:   "Remove every kernel object a scenario made and forget its progress",
		Example: `  sudo ctlab scenario reset ns-uts`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := findScenario(cmd, args[0])
			if err != nil {
				return err
			}
			e, err := lab.New(s, lab.Options{Trust: true}) // nothing is run: trust is moot
			if err != nil {
				return err
			}
			if err := e.Close(cmd.Context()); err != nil {
				return err
			}
			p, err := lab.OpenProgress()
			if err != nil {
				return err
			}
			p.Reset(s.ID)
			if err := p.Save(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "scenario %s reset: its containers are removed and its progress forgotten\n", s.ID)
			return nil
		},
	}
	return cmd
}

func newProgressCmd() *cobra.Command {
	var reset, asJSON bool
	cmd := &cobra.Command{
		Use:   "progress [--reset [ID]]",
		Short: "Show (or reset) your progress through the scenarios",
		Long: `progress prints which steps of which scenarios you have passed. It is kept in
~/.config/ctlab/progress.json (under sudo, in the invoking user's home and
owned by them): one line per scenario, so it diffs and merges well.
--reset forgets everything, --reset ID one scenario.`,
		Example: `  ctlab progress
  ctlab progress --json
  ctlab progress --reset ns-uts
  ctlab progress --reset`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && !reset {
				return usageError{errors.New("an ID is only accepted with --reset")}
			}
			p, err := lab.OpenProgress()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if reset {
				id := ""
				if len(args) == 1 {
					id = args[0]
					if _, ok := p.Scenarios[id]; !ok {
						return usageError{fmt.Errorf("no progress recorded for %q", id)}
					}
				}
				p.Reset(id)
				if err := p.Save(); err != nil {
					return err
				}
				if id == "" {
					id = "all scenarios"
				}
				fmt.Fprintf(out, "progress reset: %s (%s)\n", id, p.Path)
				return nil
			}
			if asJSON {
				b, err := p.Marshal()
				if err != nil {
					return err
				}
				_, err = out.Write(b)
				return err
			}
			list := shippedScenarios(cmd.ErrOrStderr())
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPASSED\tHINTS\tSOLVED\tUPDATED")
			for _, s := range list {
				sp := p.Scenarios[s.ID]
				if sp == nil {
					fmt.Fprintf(tw, "%s\t0/%d\t\t\t\n", s.ID, len(s.Steps))
					continue
				}
				fmt.Fprintf(tw, "%s\t%d/%d\t%d\t%s\t%s\n", s.ID, len(sp.Passed), len(s.Steps), sp.HintsUsed(), strings.Join(sp.Solved, ","), sp.Updated.Format("2006-01-02 15:04"))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(out, "(%s)\n", p.Path)
			return nil
		},
	}
	cmd.Flags().BoolVar(&reset, "reset", false, "forget progress (of one scenario when ID is given)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the progress file")
	return cmd
}

// printTrust says which trust a valid file needs and why.
func printTrust(w io.Writer, f string, steps, reasons []string, n int, id string) {
	fmt.Fprintf(w, "%s: ok (%s, %d steps)\n", f, id, n)
	if len(steps) > 0 {
		fmt.Fprintf(w, "%s: touches the host (commands or file reads) in steps %s: it needs --trust\n", f, strings.Join(steps, ", "))
	}
	for _, r := range reasons {
		fmt.Fprintf(w, "%s: needs --trust: %s\n", f, r)
	}
	if len(steps) == 0 && len(reasons) == 0 {
		fmt.Fprintf(w, "%s: trust: none (its containers have their own user, mount and pid namespaces and are hardened)\n", f)
	}
}
