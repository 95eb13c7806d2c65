package grade

// Benchmarks for issue 5's performance goals. Run:
//
//	go test ./lab/grade/ -run '^$' -bench BenchmarkGrade -benchtime 3x
//
// They build a ~140 MB nginx-like image (the Debian nginx base plus 128 MiB
// of incompressible "userland" files) once, then measure end-to-end grading
// (load, verify, unpack, run in the sandbox, HTTP, cleanup) against
// `umoci unpack` of the same OCI layout, a second image sharing the base
// (layer cache hit), --jobs scaling, and the peak RSS of a grading process.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ctlab/ctlab/sandbox/image"
	"github.com/ctlab/ctlab/scenarios/homework"
)

type bigImages struct {
	dir           string
	docker, oci   string // first student image
	docker2, oci2 string // a second student sharing base + bulk layers
	small         []string
	bytes         int64
}

var (
	bigOnce sync.Once
	big     bigImages
	bigErr  string
)

// buildBig builds the benchmark images once per process. It uses a
// testing.B only for t.Fatal/Skip plumbing; files live in a temp dir
// removed at the end of the process (TestMain).
func buildBig(b *testing.B) bigImages {
	bigOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ctlab-grade-bench-")
		if err != nil {
			bigErr = err.Error()
			return
		}
		benchDirs = append(benchDirs, dir)
		base := baseImage(b, dir)
		bulk := bigLayer(b, filepath.Join(dir, "bulk.tar"), 128)
		base.Layers = append(base.Layers[:1:1], image.BuildLayer{TarPath: bulk, CreatedBy: "/bin/sh -c apt-get install -y curl ca-certificates # and friends"}, base.Layers[1])
		// keep history extras pointing at the right layers
		for i := range base.Extra {
			if base.Extra[i].AfterLayer == 1 {
				base.Extra[i].AfterLayer = 2
			}
		}
		subs := submissions()
		s1 := subs[0].build(b, dir, base) // RUN sed
		s2 := subs[1].build(b, dir, base) // COPY
		big = bigImages{dir: dir,
			docker: writeImage(b, s1, dir, "big1", image.FormatDockerArchive), oci: writeImage(b, s1, dir, "big1", image.FormatOCILayout),
			docker2: writeImage(b, s2, dir, "big2", image.FormatDockerArchive), oci2: writeImage(b, s2, dir, "big2", image.FormatOCILayout)}
		if st, err := os.Stat(big.docker); err == nil {
			big.bytes = st.Size()
		}
		small := baseImage(b, dir)
		for i := 0; i < 20; i++ {
			s := subs[i%3].build(b, dir, small)
			big.small = append(big.small, writeImage(b, s, dir, fmt.Sprintf("small%02d", i), image.FormatDockerArchive))
		}
	})
	if bigErr != "" {
		b.Skip(bigErr)
	}
	if big.docker == "" {
		b.Skip("benchmark images could not be built (see earlier skip)")
	}
	return big
}

var benchDirs []string

func requireSandbox(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skipf("the sandbox needs root (euid %d)", os.Geteuid())
	}
}

func benchGrader(b *testing.B, cacheDir string) *Grader {
	cache, err := image.NewCache(cacheDir, image.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	return &Grader{Spec: loadHomework(b), Cache: cache, Runner: SandboxRunner{}, Timeout: 2 * time.Minute}
}

func mustPass(b *testing.B, r *Result) {
	if r.Status != Pass {
		var sb strings.Builder
		WriteText(&sb, loadHomework(b), []*Result{r}, "en")
		b.Fatalf("benchmark image did not pass:\n%s", sb.String())
	}
}

// BenchmarkGradeBigImage: a first (cold cache) end-to-end grade of the
// ~140 MB image, from a docker-save tar and from a gzip OCI layout, and
// `umoci unpack` of the same OCI layout alone, in the same run.
func BenchmarkGradeBigImage(b *testing.B) {
	requireSandbox(b)
	imgs := buildBig(b)
	for _, tc := range []struct{ name, ref string }{{"docker-archive", imgs.docker}, {"oci-layout", imgs.oci}} {
		b.Run("ctlab-cold/"+tc.name, func(b *testing.B) {
			b.SetBytes(imgs.bytes)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				cacheDir := filepath.Join(imgs.dir, fmt.Sprintf("cache-%s-%d", tc.name, i))
				g := benchGrader(b, cacheDir)
				b.StartTimer()
				mustPass(b, g.Grade(context.Background(), tc.ref))
				b.StopTimer()
				os.RemoveAll(cacheDir)
				b.StartTimer()
			}
		})
	}
	b.Run("umoci-unpack/oci-layout", func(b *testing.B) {
		umoci, err := exec.LookPath("umoci")
		if err != nil {
			b.Skipf("umoci not installed (apt-get install umoci): %v", err)
		}
		b.SetBytes(imgs.bytes)
		for i := 0; i < b.N; i++ {
			bundle := filepath.Join(imgs.dir, fmt.Sprintf("umoci-bundle-%d", i))
			out, err := exec.Command(umoci, "unpack", "--image", imgs.oci+":latest", bundle).CombinedOutput()
			if err != nil {
				b.Fatalf("umoci unpack: %v: %s", err, out)
			}
			b.StopTimer()
			os.RemoveAll(bundle)
			b.StartTimer()
		}
	})
}

// BenchmarkGradeSharedBase: the second image shares the base and bulk
// layers with the first, so only its own small layer is unpacked.
func BenchmarkGradeSharedBase(b *testing.B) {
	requireSandbox(b)
	imgs := buildBig(b)
	cacheDir := filepath.Join(imgs.dir, "cache-shared")
	defer os.RemoveAll(cacheDir)
	g := benchGrader(b, cacheDir)
	t0 := time.Now()
	mustPass(b, g.Grade(context.Background(), imgs.docker))
	first := time.Since(t0)
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		// Drop the second image's own layer so each iteration unpacks it again.
		b.StopTimer()
		im, err := image.Open(context.Background(), imgs.docker2)
		if err != nil {
			b.Fatal(err)
		}
		ls := im.Layers()
		g.Cache.Remove(context.Background(), ls[len(ls)-1].DiffID())
		im.Close()
		b.StartTimer()
		t1 := time.Now()
		r := g.Grade(context.Background(), imgs.docker2)
		total += time.Since(t1)
		mustPass(b, r)
		if i == b.N-1 {
			b.Logf("second image phases: %v", r.Phases)
		}
	}
	second := total / time.Duration(b.N)
	b.ReportMetric(float64(first.Milliseconds()), "first-ms")
	b.ReportMetric(float64(second.Milliseconds()), "second-ms")
	b.ReportMetric(float64(first)/float64(second), "speedup")
}

// BenchmarkGradeJobs grades 20 small images (warm cache) with --jobs 1 and
// --jobs NumCPU-equivalents.
func BenchmarkGradeJobs(b *testing.B) {
	requireSandbox(b)
	imgs := buildBig(b)
	cacheDir := filepath.Join(imgs.dir, "cache-jobs")
	defer os.RemoveAll(cacheDir)
	g := benchGrader(b, cacheDir)
	for _, r := range g.GradeAll(context.Background(), imgs.small, 2) { // warm the cache
		mustPass2(b, r)
	}
	for _, jobs := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("jobs=%d", jobs), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				for _, r := range g.GradeAll(context.Background(), imgs.small, jobs) {
					mustPass2(b, r)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/20, "ms/image")
		})
	}
}

// mustPass2 accepts the three passing submission kinds used for the 20 images.
func mustPass2(b *testing.B, r *Result) {
	if r.Status != Pass {
		b.Fatalf("%s: %s %s", r.Image, r.Status, r.Message)
	}
}

// BenchmarkGradePeakRSS grades the big image (cold cache) in a child
// process and reports its peak RSS (getrusage ru_maxrss = VmHWM).
func BenchmarkGradePeakRSS(b *testing.B) {
	requireSandbox(b)
	imgs := buildBig(b)
	for _, ref := range []string{imgs.docker, imgs.oci} {
		name := filepath.Base(ref)
		b.Run(name, func(b *testing.B) {
			var maxKB int64
			for i := 0; i < b.N; i++ {
				cacheDir := filepath.Join(imgs.dir, "cache-rss")
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), "CTLAB_GRADE_CHILD="+ref, "CTLAB_GRADE_CHILD_CACHE="+cacheDir)
				out, err := cmd.CombinedOutput()
				os.RemoveAll(cacheDir)
				if err != nil {
					b.Fatalf("child: %v: %s", err, out)
				}
				var r Result
				if err := json.Unmarshal(out[strings.IndexByte(string(out), '{'):], &r); err != nil || r.Status != Pass {
					b.Fatalf("child result: %v %s", err, out)
				}
				if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > maxKB {
					maxKB = ru.Maxrss
				}
			}
			b.ReportMetric(float64(maxKB)/1024, "peak-RSS-MiB")
		})
	}
}

// gradeChild is the child side of BenchmarkGradePeakRSS (called from TestMain).
func gradeChild(ref, cacheDir string) int {
	cache, err := image.NewCache(cacheDir, image.Limits{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	f, err := homework.Open("nginx-hello")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	spec, err := ParseSpec(f)
	f.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	g := &Grader{Spec: spec, Cache: cache, Runner: SandboxRunner{}, Timeout: 2 * time.Minute}
	r := g.Grade(context.Background(), ref)
	r.Info = nil
	json.NewEncoder(os.Stdout).Encode(r)
	return 0
}
