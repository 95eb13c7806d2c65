package statepane

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"charm.land/lipgloss/v2"

	"github.com/ctlab/ctlab/tui/common"
)

// historyLen is how many readings the sparklines keep: at 4 Hz, 10 s.
const historyLen = 40

// Model draws the latest Snapshot of the panes a step asks for. The drawn
// text is cached and redrawn only when the snapshot, size, panes or
// language change, so a frame costs a string copy.
type Model struct {
	styles  common.Styles
	lang    string
	width   int
	height  int
	present bool
	panes   []string

	snap    *Snapshot
	memHist []float64 // memory.current / limit (or bytes when unlimited)
	cpuHist []float64 // CPU use in cores between two readings
	prevCPU uint64
	prevAt  time.Time

	cache string
	dirty bool
}

// New returns an empty pane.
func New(styles common.Styles, lang string) Model {
	return Model{styles: styles, lang: lang, dirty: true}
}

// SetSize sets the pane's inner size (borders excluded).
func (m *Model) SetSize(w, h int) {
	if w != m.width || h != m.height {
		m.width, m.height, m.dirty = w, h, true
	}
}

// SetLang switches the labels' language.
func (m *Model) SetLang(lang string) { m.lang, m.dirty = lang, true }

// SetPresent switches the roomier presenter layout.
func (m *Model) SetPresent(p bool) { m.present, m.dirty = p, true }

// SetPanes selects the sections to draw (the step's `show:` list). A new
// step also starts new sparklines.
func (m *Model) SetPanes(panes []string) {
	m.panes = append([]string(nil), panes...)
	m.memHist, m.cpuHist, m.prevCPU, m.prevAt = nil, nil, 0, time.Time{}
	m.dirty = true
}

// Panes returns the sections drawn.
func (m Model) Panes() []string { return m.panes }

// Snapshot returns the latest reading, nil before the first.
func (m Model) Snapshot() *Snapshot { return m.snap }

// SetSnapshot stores a new reading and extends the sparklines. It reports
// whether the pane changed: an unchanged kernel (the usual case between
// two ticks of a demo) is not drawn again.
func (m *Model) SetSnapshot(s *Snapshot) bool {
	if s != nil && m.snap != nil && s.Cgroup == nil && sameReading(s, m.snap) {
		m.snap = s
		return false
	}
	if s != nil && s.Cgroup != nil {
		cg := s.Cgroup
		if cg.MemMax > 0 {
			m.memHist = push(m.memHist, float64(cg.MemCurrent)/float64(cg.MemMax))
		} else {
			m.memHist = push(m.memHist, float64(cg.MemCurrent))
		}
		if !m.prevAt.IsZero() && cg.CPUUsageUsec >= m.prevCPU {
			dt := s.Taken.Sub(m.prevAt).Microseconds()
			if dt > 0 {
				m.cpuHist = push(m.cpuHist, float64(cg.CPUUsageUsec-m.prevCPU)/float64(dt))
			}
		}
		m.prevCPU, m.prevAt = cg.CPUUsageUsec, s.Taken
	}
	m.snap = s
	m.dirty = true
	return true
}

// sameReading compares two readings, ignoring when they were taken.
func sameReading(a, b *Snapshot) bool {
	x, y := *a, *b
	x.Taken, y.Taken = time.Time{}, time.Time{}
	return reflect.DeepEqual(x, y)
}

func push(h []float64, v float64) []float64 {
	h = append(h, v)
	if len(h) > historyLen {
		h = h[len(h)-historyLen:]
	}
	return h
}

// View returns the pane's content, at most width×height.
func (m *Model) View() string {
	if m.dirty {
		m.cache = m.render()
		m.dirty = false
	}
	return m.cache
}

func (m *Model) t(id string) string { return common.T(m.lang, id) }

func (m *Model) render() string {
	w := m.width
	if w <= 0 {
		return ""
	}
	var b strings.Builder
	s := m.snap
	if s == nil || (s.Container == "" && s.Overlay == nil) {
		b.WriteString(m.styles.Subtle.Render(m.t("pane.nocontainer")))
	} else {
		if s.Container != "" {
			head := fmt.Sprintf("%s · pid %d", s.Container, s.Pid)
			b.WriteString(m.styles.Title.Render(head))
			b.WriteByte('\n')
		}
		if s.Err != "" {
			b.WriteString(m.styles.Fail.Render("✗ " + s.Err))
			b.WriteByte('\n')
		}
		sep := "\n"
		if m.present {
			sep = "\n\n"
		}
		var sections []string
		for _, p := range m.panes {
			if sec := m.section(p, s, w); sec != "" {
				sections = append(sections, sec)
			}
		}
		b.WriteString(strings.Join(sections, sep))
	}
	return crop(b.String(), w, m.height)
}

// crop cuts text to w columns and h lines so a long list never pushes the
// layout around.
func crop(s string, w, h int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if h > 0 && len(lines) > h {
		lines = append(lines[:h-1], "…")
	}
	for i, l := range lines {
		if lipgloss.Width(l) > w {
			lines[i] = truncate(l, w)
		}
	}
	return strings.Join(lines, "\n")
}

func (m *Model) section(p string, s *Snapshot, w int) string {
	switch p {
	case "namespaces":
		return m.namespaces(s)
	case "hostname":
		return m.pairs(s)
	case "cgroup":
		return m.cgroup(s, w)
	case "overlay":
		return m.overlay(s)
	case "links":
		return m.links(s)
	case "ids":
		return m.ids(s)
	case "time":
		return m.clocks(s)
	case "processes":
		return m.list("pane.procs", s.Procs)
	case "mounts":
		return m.list("pane.mounts", s.Mounts)
	case "ipc":
		return m.list("pane.ipc", s.IPC)
	case "caps":
		if s.Caps == "" {
			return ""
		}
		return m.head("pane.caps") + "\n  " + s.Caps
	}
	return ""
}

func (m *Model) head(id string) string { return m.styles.Chapter.Render(m.t(id)) }

func (m *Model) namespaces(s *Snapshot) string {
	if len(s.Namespaces) == 0 {
		return ""
	}
	// Words when there is room, "=" / "≠" alone at 80 columns: the
	// symbols carry the meaning without colour too.
	wide := m.width >= 46
	var b strings.Builder
	b.WriteString(m.head("pane.namespaces"))
	fmt.Fprintf(&b, "\n  %-6s %s %s", "", pad(m.t("pane.host"), 10), pad(m.t("pane.container"), 10))
	for _, r := range s.Namespaces {
		mark, row := m.styles.Pass.Render("="), m.styles.Subtle
		if wide {
			mark = m.styles.Pass.Render("= " + m.t("pane.same"))
		}
		if !r.Same() {
			mark, row = m.styles.Warn.Render("≠"), m.styles.Accent
			if wide {
				mark = m.styles.Warn.Render("≠ " + m.t("pane.diff"))
			}
		}
		fmt.Fprintf(&b, "\n  %s %s", row.Render(fmt.Sprintf("%-6s %-10d %-10d", r.Kind, r.Host, r.Container)), mark)
	}
	return b.String()
}

func (m *Model) pairs(s *Snapshot) string {
	var b strings.Builder
	row := func(id string, p Pair) {
		mark := m.styles.Pass.Render("= " + m.t("pane.same"))
		if p.Host != p.Container {
			mark = m.styles.Warn.Render("≠ " + m.t("pane.diff"))
		}
		fmt.Fprintf(&b, "%s %s\n  %s %s\n  %s %s", m.head(id), mark,
			pad(m.t("pane.host"), 10), m.styles.Accent.Render(quote(p.Host)),
			pad(m.t("pane.container"), 10), m.styles.Accent.Render(quote(p.Container)))
	}
	row("pane.hostname", s.Hostname)
	if s.Domainname.Host != "" || s.Domainname.Container != "" {
		b.WriteString("\n")
		row("pane.domain", s.Domainname)
	}
	return b.String()
}

// pad fills s with spaces to w terminal cells (a Chinese character takes
// two cells, which fmt's %-10s does not know).
func pad(s string, w int) string {
	if n := lipgloss.Width(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

// tail keeps the end of a long path, where the interesting part is.
func tail(p string, w int) string {
	r := []rune(p)
	if w < 4 || len(r) <= w {
		return p
	}
	return "…" + string(r[len(r)-w+1:])
}

func quote(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

func (m *Model) cgroup(s *Snapshot, w int) string {
	cg := s.Cgroup
	if cg == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(m.head("pane.cgroup"))
	if cg.Path != "" {
		b.WriteString(" " + m.styles.Subtle.Render(cg.Path))
	}
	if cg.Frozen {
		b.WriteString(" " + m.styles.Warn.Render("❄ "+m.t("pane.frozen")))
	}
	barW := w - 26
	if barW < 8 {
		barW = 8
	}
	if barW > 30 {
		barW = 30
	}
	if cg.MemMax > 0 {
		fmt.Fprintf(&b, "\n  mem  %s %s/%s", m.bar(float64(cg.MemCurrent)/float64(cg.MemMax), barW), Bytes(cg.MemCurrent), Bytes(cg.MemMax))
	} else {
		fmt.Fprintf(&b, "\n  mem  %s (%s)", Bytes(cg.MemCurrent), m.t("pane.nolimit"))
	}
	if len(m.memHist) > 1 {
		fmt.Fprintf(&b, "\n       %s", m.styles.Accent.Render(Sparkline(m.memHist, barW)))
	}
	if cg.OOMKills > 0 {
		fmt.Fprintf(&b, "\n       %s", m.styles.Fail.Render(fmt.Sprintf("oom_kill %d", cg.OOMKills)))
	}
	if cg.CPUQuotaUsec > 0 && cg.CPUPeriodUsec > 0 {
		fmt.Fprintf(&b, "\n  cpu  %s/%s µs · throttled %d", fmtInt(cg.CPUQuotaUsec), fmtInt(int64(cg.CPUPeriodUsec)), cg.NrThrottled)
	} else {
		fmt.Fprintf(&b, "\n  cpu  %s", m.t("pane.nolimit"))
	}
	if len(m.cpuHist) > 1 {
		last := m.cpuHist[len(m.cpuHist)-1]
		fmt.Fprintf(&b, "\n       %s %.2f", m.styles.Accent.Render(Sparkline(m.cpuHist, barW)), last)
	}
	if cg.PidsMax > 0 {
		fmt.Fprintf(&b, "\n  pids %s %d/%d", m.bar(float64(cg.PidsCurrent)/float64(cg.PidsMax), barW), cg.PidsCurrent, cg.PidsMax)
	} else {
		fmt.Fprintf(&b, "\n  pids %d (%s)", cg.PidsCurrent, m.t("pane.nolimit"))
	}
	return b.String()
}

func (m *Model) bar(frac float64, w int) string {
	if frac < 0 {
		frac = 0
	}
	if frac > 1 {
		frac = 1
	}
	n := int(frac*float64(w) + 0.5)
	style := m.styles.Bar
	if frac >= 0.9 {
		style = m.styles.Fail
	}
	return style.Render(strings.Repeat("█", n)) + m.styles.BarEmpty.Render(strings.Repeat("░", w-n))
}

func (m *Model) overlay(s *Snapshot) string {
	o := s.Overlay
	if o == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(m.head("pane.overlay"))
	fmt.Fprintf(&b, " %s", m.styles.Subtle.Render(fmt.Sprintf("%d %s", o.Lowers, m.t("pane.lower"))))
	b.WriteString("\n  " + m.styles.Subtle.Render(m.t("pane.upperdir")+" "+tail(o.Upper, m.width-8)))
	if len(o.Changes) == 0 {
		b.WriteString("\n  " + m.styles.Subtle.Render(m.t("pane.noupper")))
	}
	for _, c := range o.Changes {
		var sym, label string
		style := m.styles.Accent
		switch c.Kind {
		case "modified":
			sym, label = "C", m.t("pane.copyup")
		case "deleted":
			sym, label, style = "D", m.t("pane.whiteout"), m.styles.Warn
		case "opaque":
			sym, label, style = "O", m.t("pane.opaque"), m.styles.Warn
		default:
			sym, label, style = "A", m.t("pane.added"), m.styles.Pass
		}
		fmt.Fprintf(&b, "\n  %s %s %s", style.Render(sym), c.Path, m.styles.Subtle.Render(label))
	}
	return b.String()
}

func (m *Model) links(s *Snapshot) string {
	if len(s.Nets) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(m.head("pane.links"))
	for _, n := range s.Nets {
		fmt.Fprintf(&b, "\n  %s %s", m.styles.Title.Render(n.Name), m.styles.Subtle.Render(fmt.Sprintf("net:[%d]", n.Inode)))
		for _, l := range n.Links {
			fmt.Fprintf(&b, "\n    %-12s %-7s %s", l.Name, l.State, strings.Join(l.Addrs, " "))
		}
	}
	return b.String()
}

func (m *Model) ids(s *Snapshot) string {
	if len(s.UIDMap) == 0 && len(s.GIDMap) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(m.head("pane.uidmap"))
	b.WriteString(" " + m.styles.Subtle.Render(m.t("pane.idcols")))
	for _, l := range s.UIDMap {
		b.WriteString("\n  " + m.styles.Accent.Render(l))
	}
	if len(s.GIDMap) > 0 {
		b.WriteString("\n" + m.head("pane.gidmap"))
		for _, l := range s.GIDMap {
			b.WriteString("\n  " + m.styles.Accent.Render(l))
		}
	}
	return b.String()
}

func (m *Model) clocks(s *Snapshot) string {
	if s.Time == nil {
		return ""
	}
	return fmt.Sprintf("%s\n  monotonic %s\n  boottime  %s", m.head("pane.time"),
		m.styles.Accent.Render(s.Time.Monotonic.String()), m.styles.Accent.Render(s.Time.Boottime.String()))
}

func (m *Model) list(id string, items []string) string {
	if len(items) == 0 {
		return ""
	}
	return m.head(id) + "\n  " + strings.Join(items, "\n  ")
}

// Sparkline draws the last w values of h with block characters, scaled to
// the largest value shown.
func Sparkline(h []float64, w int) string {
	if len(h) > w {
		h = h[len(h)-w:]
	}
	maxV := 0.0
	for _, v := range h {
		if v > maxV {
			maxV = v
		}
	}
	const ticks = "▁▂▃▄▅▆▇█"
	r := []rune(ticks)
	var b strings.Builder
	for _, v := range h {
		i := 0
		if maxV > 0 {
			i = int(v / maxV * float64(len(r)-1))
		}
		b.WriteRune(r[i])
	}
	return b.String()
}

// Bytes formats n like the kernel's human units (KiB, MiB, GiB).
func Bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

func fmtInt(n int64) string { return fmt.Sprintf("%d", n) }
