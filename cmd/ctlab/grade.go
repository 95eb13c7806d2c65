package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/ctlab/ctlab/lab"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ctlab/ctlab/lab/grade"
	"github.com/ctlab/ctlab/sandbox/image"
	"github.com/ctlab/ctlab/scenarios/homework"
)

type gradeOptions struct {
	json, tap     bool
	junit, roster string
	timeout       time.Duration
	jobs          int
	spec          string
	lang          string
	cache         string
	noRun         bool
}

// newGradeCmd is `ctlab grade`: check students' images against a homework.
func newGradeCmd() *cobra.Command {
	var o gradeOptions
	cmd := &cobra.Command{
		Use:   "grade HOMEWORK IMAGE... | grade --spec FILE IMAGE...",
		Short: "Grade students' container images against a homework spec",
		Long: `Grade checks each IMAGE against a homework and prints a score per criterion
with the evidence it found. For the built-in homework "nginx-hello" that is:

  1. it is an nginx image (nginx binary, default config, nginx base in history)
  2. /usr/share/nginx/html/index.html says "Hello World", no longer "Welcome to nginx"
     (read from the merged layers: whiteouts and opaque directories count)
  3. it really serves it: the image's own ENTRYPOINT+CMD runs in a sandbox
     (own network namespace, memory and pids limits, few capabilities,
     no_new_privs, masked /proc paths, a timeout) and GET / on port 80 must
     answer 200 with "Hello World"
  4. informative: what the student's own layers added, changed and deleted

IMAGE can be:
  student.tar                  docker save output (docker save -o student.tar IMAGE)
  student.oci.tar              an oci-archive (podman save --format oci-archive,
                               buildah push IMAGE oci-archive:student.oci.tar)
  ./student-oci/               an OCI image layout directory (skopeo copy ... oci:DIR)
  docker://REGISTRY/REPO:TAG   a registry, if one is reachable
  docker-daemon:IMAGE:TAG      the local Docker daemon (exported with docker save)

Images are untrusted input: layers are verified against their digests and
unpacked by a safe extractor into a cache (/var/lib/ctlab/layers, one
directory per layer, so the second image built on the same base is fast).

Output: a readable report (default), --json (Exercism results.json v3),
--tap, --junit FILE, --roster FILE.csv (one row per image, for a gradebook).
Exit status: 0 every image passed, 1 some image failed or could not be
graded, 2 usage error.

Write your own homework as YAML (see scenarios/homework/nginx-hello.yaml)
and run it with --spec FILE; checks are file_exists, file_contains,
file_not_contains, history_mentions, serves and layer_diff.`,
		Example: `  sudo ctlab grade nginx-hello student.tar
  sudo ctlab grade nginx-hello submissions/*.tar --jobs 4 --roster grades.csv
  sudo ctlab grade nginx-hello ./student-oci/ --json > results.json
  sudo ctlab grade nginx-hello docker-daemon:hello:latest --lang zh
  sudo ctlab grade nginx-hello docker://localhost:5000/alice/nginx:hello --junit junit.xml
  sudo ctlab grade --spec my-homework.yaml student.oci.tar --tap`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGrade(cmd, o, args)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.json, "json", false, "print results as JSON (Exercism results.json v3 style)")
	f.BoolVar(&o.tap, "tap", false, "print results as TAP version 13")
	f.StringVar(&o.junit, "junit", "", "also write JUnit XML to `FILE`")
	f.StringVar(&o.roster, "roster", "", "also write a roster CSV (one row per image) to `FILE.csv`")
	f.DurationVar(&o.timeout, "timeout", 60*time.Second, "wall-clock limit per image (load, unpack, run, HTTP)")
	f.IntVar(&o.jobs, "jobs", runtime.NumCPU(), "grade `N` images at a time")
	f.StringVar(&o.spec, "spec", "", "homework spec YAML `FILE` instead of a built-in homework name")
	f.StringVar(&o.lang, "lang", lab.LangFromEnv(), "report language: en or zh")
	f.StringVar(&o.cache, "cache", image.DefaultCacheRoot, "layer cache `DIR` (created 0700)")
	f.BoolVar(&o.noRun, "no-run", false, "do not run images (serves checks report an error)")
	return cmd
}

func runGrade(cmd *cobra.Command, o gradeOptions, args []string) error {
	if o.json && o.tap {
		return usageError{errors.New("choose one of --json and --tap")}
	}
	if o.lang != "en" && o.lang != "zh" {
		return usageError{fmt.Errorf("--lang %q: use en or zh", o.lang)}
	}
	if o.jobs < 1 || o.timeout <= 0 {
		return usageError{errors.New("--jobs and --timeout must be positive")}
	}
	var specR io.ReadCloser
	if o.spec != "" {
		f, err := os.Open(o.spec)
		if err != nil {
			return usageError{fmt.Errorf("--spec: %w", err)}
		}
		specR = f
	} else {
		if len(args) == 0 {
			return usageError{fmt.Errorf("name a homework (%s) or use --spec FILE, then one or more images", strings.Join(homework.List(), ", "))}
		}
		f, err := homework.Open(args[0])
		if err != nil {
			return usageError{err}
		}
		specR, args = f, args[1:]
	}
	spec, err := grade.ParseSpec(specR)
	specR.Close()
	if err != nil {
		return usageError{err}
	}
	if len(args) == 0 {
		return usageError{errors.New("no images to grade: give one or more IMAGE arguments")}
	}
	cache, err := image.NewCache(o.cache, image.Limits{})
	if err != nil {
		return fmt.Errorf("layer cache (grading needs root): %w", err)
	}
	g := &grade.Grader{Spec: spec, Cache: cache, Timeout: o.timeout, Lang: o.lang}
	if !o.noRun {
		g.Runner = grade.SandboxRunner{}
	}
	// Ctrl-C cancels the gradings; each one still removes its sandbox.
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	results := g.GradeAll(ctx, args, o.jobs)

	out := cmd.OutOrStdout()
	switch {
	case o.json:
		err = grade.WriteJSON(out, results)
	case o.tap:
		err = grade.WriteTAP(out, results)
	default:
		err = grade.WriteText(out, spec, results, o.lang)
	}
	if err != nil {
		return err
	}
	if o.junit != "" {
		if err := writeFileWith(o.junit, func(w io.Writer) error { return grade.WriteJUnit(w, spec, results) }); err != nil {
			return err
		}
	}
	if o.roster != "" {
		if err := writeFileWith(o.roster, func(w io.Writer) error { return grade.WriteRoster(w, spec, results) }); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return context.Canceled
	}
	if code := grade.ExitCode(results); code != 0 {
		return exitError{code}
	}
	return nil
}

func writeFileWith(path string, fn func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := fn(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
