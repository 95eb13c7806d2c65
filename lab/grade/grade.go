package grade

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ctlab/ctlab/sandbox/image"
)

// Status is the Exercism vocabulary: pass, fail, or error (the grader could
// not run the test, e.g. the image is broken).
type Status string

// Statuses.
const (
	Pass  Status = "pass"
	Fail  Status = "fail"
	Error Status = "error"
)

// CriterionResult is one criterion's outcome with its evidence.
type CriterionResult struct {
	ID          string        `json:"id"`
	TaskID      int           `json:"task_id"`
	Title       string        `json:"title"`
	Status      Status        `json:"status"`
	Points      int           `json:"points"`
	MaxPoints   int           `json:"max_points"`
	Informative bool          `json:"informative,omitempty"`
	Message     string        `json:"message"`
	Evidence    []string      `json:"evidence,omitempty"`
	Duration    time.Duration `json:"duration_ns"`
}

// Result is the grade of one image.
type Result struct {
	Image     string            `json:"image"`
	Status    Status            `json:"status"`
	Message   string            `json:"message,omitempty"`
	Points    int               `json:"points"`
	MaxPoints int               `json:"max_points"`
	Criteria  []CriterionResult `json:"criteria"`
	Info      *image.Info       `json:"info,omitempty"`
	Duration  time.Duration     `json:"duration_ns"`
	// Phases records how long loading, unpacking and each check took.
	Phases map[string]time.Duration `json:"phases_ns,omitempty"`
}

// Grader grades images against one spec.
type Grader struct {
	Spec    *Spec
	Cache   *image.Cache
	Runner  Runner        // nil: serves checks report an error
	Timeout time.Duration // per image (0: 2 minutes)
	Lang    string        // en or zh
}

// Submission is what the checks see of one image.
type Submission struct {
	Image  *image.Image
	Layers []*image.Unpacked // bottom first
	Merged *image.Merged
	Info   *image.Info
}

// outcome is what one check found.
type outcome struct {
	pass     bool
	evidence []string
}

func (g *Grader) tr(en, zh string) string {
	if g.Lang == "zh" {
		return zh
	}
	return en
}

// GradeAll grades refs with up to jobs images at a time, results in order.
func (g *Grader) GradeAll(ctx context.Context, refs []string, jobs int) []*Result {
	if jobs < 1 {
		jobs = 1
	}
	out := make([]*Result, len(refs))
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	for i, ref := range refs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = g.Grade(ctx, ref)
		}()
	}
	wg.Wait()
	return out
}

// Grade grades one image. It never returns nil; problems with the image
// itself become an "error" result with a message for the student.
func (g *Grader) Grade(ctx context.Context, ref string) *Result {
	start := time.Now()
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := &Result{Image: ref, Phases: map[string]time.Duration{}}
	for _, c := range g.Spec.Criteria {
		res.MaxPoints += c.Points
	}
	defer func() { res.Duration = time.Since(start) }()

	sub, cleanup, err := g.load(ctx, ref, res)
	if err != nil {
		res.Status = Error
		res.Message = sanitize(err.Error())
		for i, c := range g.Spec.Criteria {
			res.Criteria = append(res.Criteria, CriterionResult{ID: c.ID, TaskID: i + 1, Title: c.Title.In(g.Lang), Status: Error,
				MaxPoints: c.Points, Informative: c.Informative, Message: g.tr("the image could not be loaded", "无法读取镜像")})
		}
		return res
	}
	defer cleanup()
	res.Info = sub.Info
	res.Status = Pass
	for i, c := range g.Spec.Criteria {
		t0 := time.Now()
		cr := g.criterion(ctx, sub, c)
		cr.TaskID = i + 1
		cr.Duration = time.Since(t0)
		res.Phases["criterion:"+c.ID] = cr.Duration
		res.Points += cr.Points
		if !c.Informative {
			switch {
			case cr.Status == Error && res.Status == Pass:
				res.Status = Error
			case cr.Status == Fail && res.Status != Fail:
				res.Status = Fail
			}
		}
		res.Criteria = append(res.Criteria, cr)
	}
	res.Message = fmt.Sprintf(g.tr("%d of %d points", "得分 %d / %d"), res.Points, res.MaxPoints)
	return res
}

func (g *Grader) load(ctx context.Context, ref string, res *Result) (*Submission, func(), error) {
	t0 := time.Now()
	im, err := image.Open(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	res.Phases["load"] = time.Since(t0)
	t0 = time.Now()
	layers, err := im.Unpack(ctx, g.Cache)
	if err != nil {
		im.Close()
		return nil, nil, err
	}
	res.Phases["unpack"] = time.Since(t0)
	m, err := image.NewMerged(image.LowerDirs(layers))
	if err != nil {
		im.Close()
		return nil, nil, err
	}
	info, err := im.Describe(layers, 200)
	if err != nil {
		m.Close()
		im.Close()
		return nil, nil, err
	}
	cleanup := func() { m.Close(); im.Close() }
	return &Submission{Image: im, Layers: layers, Merged: m, Info: info}, cleanup, nil
}

func (g *Grader) criterion(ctx context.Context, sub *Submission, c Criterion) CriterionResult {
	cr := CriterionResult{ID: c.ID, Title: c.Title.In(g.Lang), MaxPoints: c.Points, Informative: c.Informative, Status: Pass}
	for _, ch := range c.Checks {
		o, err := g.check(ctx, sub, ch)
		if err != nil {
			cr.Status = Error
			cr.Evidence = append(cr.Evidence, sanitize(err.Error()))
			continue
		}
		cr.Evidence = append(cr.Evidence, o.evidence...)
		if !o.pass && cr.Status == Pass {
			cr.Status = Fail
		}
	}
	if c.Informative && cr.Status == Fail {
		cr.Status = Pass
	}
	switch cr.Status {
	case Pass:
		cr.Points = c.Points
		cr.Message = c.Pass.In(g.Lang)
	case Fail:
		cr.Message = c.Fail.In(g.Lang)
	case Error:
		cr.Message = g.tr("the check could not run", "检查无法执行")
	}
	if cr.Message == "" && !c.Informative {
		cr.Message = string(cr.Status)
	}
	return cr
}

func (g *Grader) check(ctx context.Context, sub *Submission, ch Check) (outcome, error) {
	switch {
	case ch.FileExists != nil:
		return g.fileExists(sub, ch.FileExists), nil
	case ch.FileContains != nil:
		return g.fileText(sub, ch.FileContains, true), nil
	case ch.FileNotContains != nil:
		return g.fileText(sub, ch.FileNotContains, false), nil
	case ch.HistoryMentions != nil:
		return g.historyMentions(sub, ch.HistoryMentions), nil
	case ch.Serves != nil:
		return g.serves(ctx, sub, ch.Serves)
	case ch.LayerDiff != nil:
		return g.layerDiff(sub, ch.LayerDiff), nil
	}
	return outcome{}, errors.New("empty check")
}

func (g *Grader) fileExists(sub *Submission, c *FileExists) outcome {
	var fi image.FileInfo
	var err error
	if c.Type == "symlink" {
		fi, err = sub.Merged.Lstat(c.Path)
	} else {
		fi, err = sub.Merged.Stat(c.Path)
	}
	if err != nil {
		return outcome{false, []string{fmt.Sprintf(g.tr("%s: not found in the merged filesystem", "%s：合并后的文件系统中不存在"), c.Path)}}
	}
	ok := true
	switch c.Type {
	case "", "file":
		ok = fi.Mode.IsRegular()
	case "dir":
		ok = fi.Mode.IsDir()
	case "symlink":
		ok = fi.Mode&fs.ModeSymlink != 0
	}
	if ok && c.Executable && !fi.IsExecutable() {
		ok = false
	}
	ev := fmt.Sprintf(g.tr("%s: %v, %d bytes (layer %d from the top)", "%s：%v，%d 字节（自顶向下第 %d 层）"), c.Path, fi.Mode, fi.Size, fi.Layer+1)
	if fi.Path != c.Path {
		ev += fmt.Sprintf(" -> %s", fi.Path)
	}
	return outcome{ok, []string{ev}}
}

// maxReadBytes bounds a file_contains read: a page, not a disk image.
const maxReadBytes = 4 << 20

func (g *Grader) fileText(sub *Submission, c *FileText, want bool) outcome {
	data, trunc, err := sub.Merged.ReadFile(c.Path, maxReadBytes)
	if err != nil {
		return outcome{false, []string{fmt.Sprintf(g.tr("%s: cannot read: %s", "%s：无法读取：%s"), c.Path, sanitize(err.Error()))}}
	}
	hay, needle := string(data), c.Text
	if c.IgnoreCase {
		hay, needle = strings.ToLower(hay), strings.ToLower(needle)
	}
	has := strings.Contains(hay, needle)
	verb := map[bool]string{true: g.tr("contains", "包含"), false: g.tr("does not contain", "不包含")}[has]
	ev := fmt.Sprintf("%s %s %q", c.Path, verb, c.Text)
	if trunc {
		ev += g.tr(" (first 4 MiB read)", "（只读取前 4 MiB）")
	}
	evs := []string{ev}
	if has != want {
		evs = append(evs, g.tr("content: ", "内容：")+excerpt(data, 160))
	}
	return outcome{has == want, evs}
}

func (g *Grader) historyMentions(sub *Submission, c *HistoryMentions) outcome {
	info := sub.Info
	var hay []string
	for _, h := range info.History {
		hay = append(hay, "history: "+h.CreatedBy, "history: "+h.Comment)
	}
	for _, e := range info.Env {
		hay = append(hay, "env: "+e)
	}
	for k, v := range info.Labels {
		hay = append(hay, "label: "+k+"="+v)
	}
	for _, w := range c.Any {
		for _, h := range hay {
			a, b := h, w
			if c.IgnoreCase {
				a, b = strings.ToLower(a), strings.ToLower(b)
			}
			if strings.Contains(a, b) {
				return outcome{true, []string{fmt.Sprintf(g.tr("found %q in %s", "在 %[2]s 中找到 %[1]q"), w, excerpt([]byte(h), 120))}}
			}
		}
	}
	return outcome{false, []string{fmt.Sprintf(g.tr("none of %q in the history, environment or labels", "历史、环境变量和标签中都没有 %q"), c.Any)}}
}

// studentLayers returns the index of the first layer after the base.
func studentLayers(info *image.Info, baseEndsAt string) (int, bool) {
	if baseEndsAt == "" {
		return 0, false
	}
	re, err := regexp.Compile(baseEndsAt)
	if err != nil {
		return 0, false
	}
	layers := 0
	for _, h := range info.History {
		if h.Layer >= 0 {
			layers = h.Layer + 1
		}
		if re.MatchString(h.CreatedBy) {
			return layers, true
		}
	}
	return 0, false
}

func (g *Grader) layerDiff(sub *Submission, c *LayerDiff) outcome {
	info := sub.Info
	first, found := studentLayers(info, c.BaseEndsAt)
	max := c.MaxFiles
	if max <= 0 {
		max = 20
	}
	ev := []string{fmt.Sprintf(g.tr("image %s: %d layers, %s stored, %s unpacked", "镜像 %s：%d 层，存储 %s，解包后 %s"),
		info.Digest, len(info.Layers), human(info.Size), human(info.Unpacked))}
	if found {
		ev = append(ev, fmt.Sprintf(g.tr("base image: layers 1-%d; your layers: %d", "基础镜像：第 1-%d 层；你的层：%d 个"), first, len(info.Layers)-first))
	} else {
		ev = append(ev, g.tr("base image not identified: showing every layer", "未识别出基础镜像：显示所有层"))
	}
	for _, l := range info.Layers[first:] {
		ch := l.Changes
		ev = append(ev, fmt.Sprintf(g.tr("layer %d %s: +%d added ~%d modified -%d deleted, %s — %s", "第 %d 层 %s：新增 %d，修改 %d，删除 %d，%s — %s"),
			l.Index+1, short(l.DiffID), ch.Added, ch.Modified, ch.Deleted, human(l.Unpacked), excerpt([]byte(l.CreatedBy), 100)))
		n := 0
		for _, c := range ch.List {
			if n >= max {
				ev = append(ev, "    ...")
				break
			}
			if c.Type == image.KindDir && c.Kind != image.Deleted {
				continue // parent dirs are noise in a diff view
			}
			sym := map[image.ChangeKind]string{image.Added: "+", image.Modified: "~", image.Deleted: "-"}[c.Kind]
			ev = append(ev, fmt.Sprintf("    %s %s", sym, sanitize(c.Path)))
			n++
		}
	}
	return outcome{true, ev}
}

func short(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
		return d[i+1 : i+13]
	}
	return d
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// excerpt returns a sanitized, single-line, bounded quote of b.
func excerpt(b []byte, max int) string {
	s := sanitize(string(b))
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return fmt.Sprintf("%q", s)
}

var ansi = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-_])`)

// sanitize strips terminal escape sequences and control characters (except
// newline and tab) from text that came from an image or its process, so a
// student's output cannot rewrite the grader's terminal.
func sanitize(s string) string {
	s = ansi.ReplaceAllString(s, "")
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}
