package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// took runs cmd and returns its wall time.
func took(b *testing.B, cmd *exec.Cmd) time.Duration {
	b.Helper()
	t0 := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return time.Since(t0)
}

// BenchmarkBuildVsBuildah measures, in one run on the same base image, the
// homework Dockerfile built by the installed ctlab and by buildah bud:
// without cache (goal: ctlab <= 0.5x buildah), with a warm cache (goal:
// <= 1x), and saving the result as a docker-archive (ctlab save vs buildah
// push docker-archive:). It reports each time and the ratios.
func BenchmarkBuildVsBuildah(b *testing.B) {
	needTool(b, "buildah")
	base := "ctlab-test/nginx:latest"
	if out, err := ctl("image", "inspect", base).CombinedOutput(); err != nil {
		b.Skipf("no offline nginx base (run TestImageCommands first): %s", out)
	}
	e := newBuildah(b)
	e.baseFor(b, base, "localhost/ctlab-proof-base:latest")
	dir := b.TempDir()
	df := strings.Replace(homeworkDockerfile, "%s", "localhost/ctlab-proof-base:latest", 1)
	writeFile(b, filepath.Join(dir, "Dockerfile"), df)
	const tag = "localhost/ctlab-bench-hello:latest"
	defer ctl("rmi", tag).Run()
	bud := func(extra ...string) *exec.Cmd {
		return exec.Command("buildah", e.args(append(append([]string{"bud", "--runtime", "runc", "--isolation", "oci", "-t", tag}, extra...), dir)...)...)
	}
	var ctlNo, budNo, ctlWarm, budWarm, ctlSave, budSave time.Duration
	out := b.TempDir()
	// Warm buildah's layer cache once, outside the timings.
	took(b, bud("--layers"))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctlNo += took(b, bin(b, "build", "--no-cache", "-t", tag, dir))
		budNo += took(b, bud("--layers=false", "--no-cache"))
		ctlWarm += took(b, bin(b, "build", "-t", tag, dir))
		budWarm += took(b, bud("--layers"))
		ctlSave += took(b, bin(b, "save", "-o", filepath.Join(out, "ctlab.tar"), tag))
		b.StopTimer()
		os.Remove(filepath.Join(out, "buildah.tar")) // docker-archive refuses to add to one
		b.StartTimer()
		budSave += took(b, exec.Command("buildah", e.args("push", tag, "docker-archive:"+filepath.Join(out, "buildah.tar")+":"+tag)...))
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	b.ReportMetric(ms(ctlNo), "ctlab-build-ms")
	b.ReportMetric(ms(budNo), "buildah-bud-ms")
	b.ReportMetric(ms(ctlWarm), "ctlab-cached-ms")
	b.ReportMetric(ms(budWarm), "buildah-cached-ms")
	b.ReportMetric(ms(ctlSave), "ctlab-save-ms")
	b.ReportMetric(ms(budSave), "buildah-push-ms")
	b.Logf("build no cache: ctlab %.1f ms, buildah %.1f ms: ratio %.2fx (goal <= 0.5)", ms(ctlNo), ms(budNo), ms(ctlNo)/ms(budNo))
	b.Logf("build cached:   ctlab %.1f ms, buildah %.1f ms: ratio %.2fx (goal <= 1)", ms(ctlWarm), ms(budWarm), ms(ctlWarm)/ms(budWarm))
	b.Logf("save:           ctlab %.1f ms, buildah push docker-archive %.1f ms: ratio %.2fx", ms(ctlSave), ms(budSave), ms(ctlSave)/ms(budSave))
}

func writeFile(tb testing.TB, p, content string) {
	tb.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}
