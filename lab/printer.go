package lab

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ctlab/ctlab/sandbox/kstate"
)

// JSONPrinter writes each event as one JSON object per line, with an
// "event" field naming its type (the --json output).
func JSONPrinter(w io.Writer) func(Event) {
	var mu sync.Mutex
	return func(ev Event) {
		b, err := json.Marshal(ev)
		if err != nil {
			b = []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
		}
		mu.Lock()
		defer mu.Unlock()
		name, _ := json.Marshal(ev.Name())
		if len(b) > 2 {
			fmt.Fprintf(w, "{\"event\":%s,%s\n", name, b[1:])
		} else {
			fmt.Fprintf(w, "{\"event\":%s}\n", name)
		}
	}
}

var labels = map[string][2]string{ // en, zh
	"step":     {"step", "步骤"},
	"demo":     {"demo", "演示"},
	"task":     {"task", "任务"},
	"passed":   {"passed", "通过"},
	"failed":   {"failed", "失败"},
	"solved":   {"solved by solve", "由 solve 完成"},
	"hint":     {"hint", "提示"},
	"expected": {"expected", "期望"},
	"actual":   {"actual", "实际"},
	"source":   {"read from", "读取自"},
	"shell":    {"your turn: open a shell with", "轮到你了：打开 shell："},
	"waiting":  {"waiting for the checks to pass (Ctrl-C to stop) ...", "等待检查通过（Ctrl-C 退出）……"},
	"done":     {"scenario", "场景"},
	"guard":    {"guard", "守卫"},
	"differs":  {"differs from the host", "与宿主机不同"},
	"question": {"predict", "先预测"},
	"you":      {"you", "你的答案"},
	"kernel":   {"kernel", "内核的答案"},
	"skipped":  {"(not answered)", "（未作答）"},
	"right":    {"right", "答对了"},
	"wrong":    {"not quite", "不太对"},
	"within":   {"within", "误差"},
}

func label(lang, key string) string {
	l := labels[key]
	if lang == "zh" {
		return l[1]
	}
	return l[0]
}

// PlainPrinter renders events as readable text for a terminal, a log or a
// projector: no colour, no cursor movement.
func PlainPrinter(w io.Writer, lang string) func(Event) {
	var mu sync.Mutex
	var step string
	return func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case ScenarioStarted:
			fmt.Fprintf(w, "== %s: %s (%d %s)\n", e.Scenario, e.Title, e.Steps, label(lang, "step"))
		case StepStarted:
			step = e.Step
			title := e.Title
			if title != "" {
				title = " " + title
			}
			fmt.Fprintf(w, "\n-- [%d] %s (%s)%s\n", e.Index+1, e.Step, label(lang, e.Kind), title)
			if t := strings.TrimSpace(e.Text); t != "" {
				fmt.Fprintln(w, indent(t, "   | "))
			}
			if e.Kind == KindTask && e.ShellName != "" {
				fmt.Fprintf(w, "   %s sudo ctlab exec %s -- /bin/sh\n", label(lang, "shell"), e.ShellName)
			}
		case ActionDone:
			mark := ">"
			if e.Err != "" {
				mark = "!"
			}
			fmt.Fprintf(w, "   %s %s  (%s)\n", mark, e.Desc, round(e.Duration))
			if out := strings.TrimSpace(e.Output); out != "" {
				fmt.Fprintln(w, indent(truncate(out, 2000), "     "))
			}
			if e.Err != "" {
				fmt.Fprintln(w, indent(e.Err, "     "))
			}
		case Snapshot:
			printSnapshot(w, e, lang)
		case CheckResult:
			x := e.Evidence
			mark := "ok  "
			if !x.Pass {
				mark = "FAIL"
			}
			fmt.Fprintf(w, "   %s %s\n", mark, x.Desc)
			fmt.Fprintf(w, "        %s: %s | %s: %s\n", label(lang, "expected"), LocalizeEvidence(lang, x.Expected), label(lang, "actual"), LocalizeEvidence(lang, x.Actual))
			fmt.Fprintf(w, "        %s: %s\n", label(lang, "source"), x.Source)
			if x.Err != "" {
				fmt.Fprintf(w, "        error: %s\n", x.Err)
			}
		case QuestionAsked:
			printQuestion(w, e, lang)
		case QuestionAnswered:
			printAnswer(w, e, lang)
		case HintShown:
			fmt.Fprintf(w, "   %s %d/%d: %s\n", label(lang, "hint"), e.Index+1, e.Of, e.Text)
		case StepPassed:
			extra := ""
			if e.Solved {
				extra = ", " + label(lang, "solved")
			}
			fmt.Fprintf(w, "   => %s %s (%s%s)\n", e.Step, label(lang, "passed"), round(e.Duration), extra)
		case StepFailed:
			fmt.Fprintf(w, "   => %s %s: %s\n", e.Step, label(lang, "failed"), e.Reason)
		case ScenarioDone:
			r := e.Result
			fmt.Fprintf(w, "\n== %s %s: %s (%s)\n", label(lang, "done"), r.Scenario, r.Status, round(r.Duration))
			if r.Message != "" {
				fmt.Fprintf(w, "   %s\n", r.Message)
			}
		}
		_ = step
	}
}

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(100 * time.Microsecond)
}

func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(prefix+l, " ")
	}
	return strings.Join(lines, "\n")
}

// printSnapshot prints the panes a step asked for, compactly: a table of
// namespace inodes, then one line per target for each other pane.
func printSnapshot(w io.Writer, s Snapshot, lang string) {
	if len(s.Panes) == 0 {
		return
	}
	names := slices.Sorted(maps.Keys(s.Targets))
	if i := slices.Index(names, "host"); i > 0 {
		names = append(append([]string{"host"}, names[:i]...), names[i+1:]...)
	}
	for _, pane := range s.Panes {
		if pane == "namespaces" {
			printNamespaces(w, s, names, lang)
			continue
		}
		line := paneLines[pane]
		if line == nil {
			continue
		}
		for _, n := range names {
			if t := s.Targets[n]; t != nil {
				if text := line(n, t); text != "" {
					fmt.Fprintf(w, "   [%s] %-10s %s\n", pane, n, text)
				}
			}
		}
	}
	for _, n := range names {
		for _, part := range slices.Sorted(maps.Keys(s.Targets[n].Errors)) {
			fmt.Fprintf(w, "   [state] %s %s: %s\n", n, part, s.Targets[n].Errors[part])
		}
	}
	for _, n := range slices.Sorted(maps.Keys(s.Errors)) {
		fmt.Fprintf(w, "   [state] %s: %s\n", n, s.Errors[n])
	}
}

// printNamespaces prints one row per namespace kind, one column per
// target whose process was read; * marks an inode that is not the host's.
func printNamespaces(w io.Writer, s Snapshot, names []string, lang string) {
	var cols []*kstate.Snapshot
	fmt.Fprintf(w, "   [namespaces] %-8s", "")
	for _, n := range names {
		if t := s.Targets[n]; t.Namespaces != nil {
			cols = append(cols, t)
			fmt.Fprintf(w, " %-12s", n)
		}
	}
	fmt.Fprintln(w)
	for _, k := range kstate.NSKinds {
		if strings.HasSuffix(k, "_for_children") {
			continue
		}
		fmt.Fprintf(w, "                %-8s", k)
		for _, t := range cols {
			mark := ""
			if !t.Namespaces[k].Shared {
				mark = "*"
			}
			fmt.Fprintf(w, " %-12s", fmt.Sprintf("%d%s", t.Namespaces[k].Container, mark))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "                (* = %s)\n", label(lang, "differs"))
}

// paneLines renders the line of one target for each pane but namespaces;
// "" prints nothing (the part does not apply to that target).
var paneLines = map[string]func(name string, t *kstate.Snapshot) string{
	"hostname": ofProcess(func(p *kstate.Process) string {
		return fmt.Sprintf("%s (domain %s)", p.Hostname.Value, p.Domainname.Value)
	}),
	"processes": func(name string, t *kstate.Snapshot) string {
		if name == "host" || t.Process == nil {
			return ""
		}
		p, st := t.Process, t.Process.Status.Value
		return fmt.Sprintf("pid %d (%s) NSpid %v ppid %d, %d descendants", p.Pid, st.Name, st.NSpid, st.PPid, len(p.Descendants.Value))
	},
	"mounts": ofProcess(func(p *kstate.Process) string {
		return fmt.Sprintf("%d mounts (%s)", len(p.Mounts.Value), p.Mounts.Source)
	}),
	"cgroup": func(_ string, t *kstate.Snapshot) string {
		st := t.CgroupStats
		if st == nil {
			return ""
		}
		return fmt.Sprintf("memory %d/%d  pids %d/%d  cpu throttled %d/%d  frozen %v",
			st.MemoryCurrent, st.MemoryMax, st.PidsCurrent, st.PidsMax, st.NrThrottled, st.NrPeriods, st.Frozen)
	},
	"ids": ofProcess(func(p *kstate.Process) string {
		return fmt.Sprintf("uid %v uid_map %v", p.Status.Value.UID, p.UIDMap.Value)
	}),
	"time": ofProcess(func(p *kstate.Process) string {
		return fmt.Sprintf("monotonic %s boottime %s (offsets %s / %s)",
			p.Clocks.Value.Monotonic.Round(time.Second), p.Clocks.Value.Boottime.Round(time.Second),
			p.TimeOffsets.Value.Monotonic, p.TimeOffsets.Value.Boottime)
	}),
	"links": func(_ string, t *kstate.Snapshot) string {
		if t.NetNS == 0 && len(t.Links) == 0 {
			return ""
		}
		var ls []string
		for _, l := range t.Links {
			ls = append(ls, fmt.Sprintf("%s(%s)%v", l.Name, l.State, l.Addrs))
		}
		return fmt.Sprintf("netns %d: %s", t.NetNS, strings.Join(ls, " "))
	},
	"overlay": func(_ string, t *kstate.Snapshot) string {
		if t.Layout == nil {
			return ""
		}
		var cs []string
		for _, c := range t.Upper {
			cs = append(cs, c.Kind.Symbol()+" "+c.Path)
		}
		return fmt.Sprintf("upper %s: %s", t.Layout.Upper, strings.Join(cs, ", "))
	},
	"ipc": ofProcess(func(p *kstate.Process) string {
		v := p.IPC.Value
		return fmt.Sprintf("shm %d msg %d sem %d", len(v.Shm), len(v.Msg), len(v.Sem))
	}),
	"caps": ofProcess(func(p *kstate.Process) string {
		st := p.Status.Value
		return fmt.Sprintf("CapEff %016x CapBnd %016x NoNewPrivs %v Seccomp %d", st.CapEff, st.CapBnd, st.NoNewPrivs, st.Seccomp)
	}),
}

// ofProcess is a pane line drawn from the target's process, for targets
// that have one running.
func ofProcess(f func(*kstate.Process) string) func(string, *kstate.Snapshot) string {
	return func(_ string, t *kstate.Snapshot) string {
		if t.Process == nil {
			return ""
		}
		return f(t.Process)
	}
}

// printQuestion prints a step's question before its action runs.
func printQuestion(w io.Writer, e QuestionAsked, lang string) {
	fmt.Fprintf(w, "   ? %s: %s\n", label(lang, "question"), e.Question)
	for i, c := range e.Choices {
		fmt.Fprintf(w, "     %d) %s\n", i+1, c)
	}
}

// printAnswer prints the kernel's answer next to the learner's, and where
// the kernel's was read.
func printAnswer(w io.Writer, e QuestionAnswered, lang string) {
	you := e.Answer
	if e.Skipped {
		you = label(lang, "skipped")
	}
	verdict := ""
	if !e.Skipped {
		verdict = "  " + label(lang, "wrong")
		if e.Correct {
			verdict = "  " + label(lang, "right")
		}
	}
	fmt.Fprintf(w, "   ! %s: %s | %s: %s%s\n", label(lang, "you"), you, label(lang, "kernel"), e.KernelText, verdict)
	if x := e.Evidence; x != nil {
		fmt.Fprintf(w, "        %s: %s (%s: %s)\n", label(lang, "actual"), LocalizeEvidence(lang, x.Actual), label(lang, "source"), x.Source)
	}
	if e.Explain != "" {
		fmt.Fprintln(w, indent(strings.TrimSpace(e.Explain), "     "))
	}
}
