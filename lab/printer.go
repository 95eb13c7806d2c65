package lab

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
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
			fmt.Fprintf(w, "        %s: %s | %s: %s\n", label(lang, "expected"), x.Expected, label(lang, "actual"), x.Actual)
			fmt.Fprintf(w, "        %s: %s\n", label(lang, "source"), x.Source)
			if x.Err != "" {
				fmt.Fprintf(w, "        error: %s\n", x.Err)
			}
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

// printSnapshot prints the panes a step asked for, compactly.
func printSnapshot(w io.Writer, s Snapshot, lang string) {
	if len(s.Panes) == 0 {
		return
	}
	names := make([]string, 0, len(s.Processes))
	for n := range s.Processes {
		if n != "host" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	names = append([]string{"host"}, names...)
	for _, pane := range s.Panes {
		switch pane {
		case "namespaces":
			fmt.Fprintf(w, "   [namespaces] %-8s", "")
			for _, n := range names {
				fmt.Fprintf(w, " %-12s", n)
			}
			fmt.Fprintln(w)
			for _, k := range []string{"mnt", "uts", "ipc", "pid", "net", "user", "cgroup", "time"} {
				fmt.Fprintf(w, "                %-8s", k)
				hostIno := uint64(0)
				for i, n := range names {
					p := s.Processes[n]
					if p == nil {
						continue
					}
					ino := p.Namespaces[k].Value
					if i == 0 {
						hostIno = ino
					}
					mark := ""
					if i > 0 && ino != hostIno {
						mark = "*"
					}
					fmt.Fprintf(w, " %-12s", fmt.Sprintf("%d%s", ino, mark))
				}
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "                (* = %s)\n", label(lang, "differs"))
		case "hostname":
			for _, n := range names {
				if p := s.Processes[n]; p != nil {
					fmt.Fprintf(w, "   [hostname] %-10s %s (domain %s)\n", n, p.Hostname.Value, p.Domainname.Value)
				}
			}
		case "processes":
			for _, n := range names {
				if p := s.Processes[n]; p != nil && n != "host" {
					st := p.Status.Value
					fmt.Fprintf(w, "   [processes] %-10s pid %d (%s) NSpid %v ppid %d, %d descendants\n", n, p.Pid, st.Name, st.NSpid, st.PPid, len(p.Descendants.Value))
				}
			}
		case "mounts":
			for _, n := range names {
				if p := s.Processes[n]; p != nil {
					fmt.Fprintf(w, "   [mounts] %-10s %d mounts (%s)\n", n, len(p.Mounts.Value), p.Mounts.Source)
				}
			}
		case "cgroup":
			for _, n := range names {
				if v := s.Cgroups[n]; v != nil && v.Stats != nil {
					st := v.Stats
					fmt.Fprintf(w, "   [cgroup] %-10s memory %d/%d  pids %d/%d  cpu throttled %d/%d  frozen %v\n", n,
						st.MemoryCurrent, st.MemoryMax, st.PidsCurrent, st.PidsMax, st.NrThrottled, st.NrPeriods, st.Frozen)
				}
			}
		case "ids":
			for _, n := range names {
				if p := s.Processes[n]; p != nil {
					fmt.Fprintf(w, "   [ids] %-10s uid %v uid_map %v\n", n, p.Status.Value.UID, p.UIDMap.Value)
				}
			}
		case "time":
			for _, n := range names {
				if p := s.Processes[n]; p != nil {
					fmt.Fprintf(w, "   [time] %-10s monotonic %s boottime %s (offsets %s / %s)\n", n,
						p.Clocks.Value.Monotonic.Round(time.Second), p.Clocks.Value.Boottime.Round(time.Second),
						p.TimeOffsets.Value.Monotonic, p.TimeOffsets.Value.Boottime)
				}
			}
		case "links":
			for _, n := range names {
				if v := s.Links[n]; v != nil {
					var ls []string
					for _, l := range v.Links {
						ls = append(ls, fmt.Sprintf("%s(%s)%v", l.Name, l.State, l.Addrs))
					}
					fmt.Fprintf(w, "   [links] %-10s netns %d: %s\n", n, v.NetNS, strings.Join(ls, " "))
				}
			}
		case "overlay":
			ups := make([]string, 0, len(s.Upper))
			for n := range s.Upper {
				ups = append(ups, n)
			}
			sort.Strings(ups)
			for _, n := range ups {
				v := s.Upper[n]
				var cs []string
				for _, c := range v.Changes {
					cs = append(cs, c.Kind.Symbol()+" "+c.Path)
				}
				fmt.Fprintf(w, "   [overlay] %-10s upper %s: %s\n", n, v.Layout.Upper, strings.Join(cs, ", "))
			}
		case "ipc":
			for _, n := range names {
				if p := s.Processes[n]; p != nil {
					v := p.IPC.Value
					fmt.Fprintf(w, "   [ipc] %-10s shm %d msg %d sem %d\n", n, len(v.Shm), len(v.Msg), len(v.Sem))
				}
			}
		case "caps":
			for _, n := range names {
				if p := s.Processes[n]; p != nil {
					st := p.Status.Value
					fmt.Fprintf(w, "   [caps] %-10s CapEff %016x CapBnd %016x NoNewPrivs %v Seccomp %d\n", n, st.CapEff, st.CapBnd, st.NoNewPrivs, st.Seccomp)
				}
			}
		}
	}
	for n, e := range s.Errors {
		fmt.Fprintf(w, "   [state] %s: %s\n", n, e)
	}
}
