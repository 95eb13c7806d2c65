package common

import "charm.land/bubbles/v2/key"

// KeyMap is every key ctlab answers to, in one struct, so the help bar,
// the "?" screen and Update all agree. It implements help.KeyMap.
type KeyMap struct {
	Run, Next, Prev, Shell, Hint, Check, ResetStep, ResetAll key.Binding
	Lang, Help, Quit, Back, Up, Down, Open, PageUp, PageDown key.Binding
	ForceQuit, Pane                                          key.Binding
	// the course: search, glossary, the reader's links and outline, and
	// the lesson's full-width text view
	Search, Glossary, Zoom, Outline, NextLink, PrevLink key.Binding
	HistBack, HistForward, Left, Right                  key.Binding
	// help-only entries: the question picker's keys (read in quizKey, not
	// through bindings) and g, which grades on the homework chapter
	QChoose, QPick, QNumber, QAnswer, GlossOrGrade key.Binding
}

// DefaultKeyMap returns the bindings described in the lesson help (issue 4).
// The help texts are English; SetLang switches them.
func DefaultKeyMap() KeyMap {
	k := KeyMap{
		Run:       key.NewBinding(key.WithKeys("enter")),
		Next:      key.NewBinding(key.WithKeys("n")),
		Prev:      key.NewBinding(key.WithKeys("p")),
		Shell:     key.NewBinding(key.WithKeys("s")),
		Hint:      key.NewBinding(key.WithKeys("h")),
		Check:     key.NewBinding(key.WithKeys("c")),
		ResetStep: key.NewBinding(key.WithKeys("r")),
		ResetAll:  key.NewBinding(key.WithKeys("R")),
		Lang:      key.NewBinding(key.WithKeys("L")),
		Help:      key.NewBinding(key.WithKeys("?")),
		Quit:      key.NewBinding(key.WithKeys("q")),
		ForceQuit: key.NewBinding(key.WithKeys("ctrl+c")),
		Pane:      key.NewBinding(key.WithKeys("tab")),
		Back:      key.NewBinding(key.WithKeys("esc")),
		Up:        key.NewBinding(key.WithKeys("up", "k")),
		Down:      key.NewBinding(key.WithKeys("down", "j")),
		Open:      key.NewBinding(key.WithKeys("enter")),
		PageUp:    key.NewBinding(key.WithKeys("pgup", "b")),
		PageDown:  key.NewBinding(key.WithKeys("pgdown", " ")),

		Search:      key.NewBinding(key.WithKeys("/")),
		Glossary:    key.NewBinding(key.WithKeys("g")),
		Zoom:        key.NewBinding(key.WithKeys("z")),
		Outline:     key.NewBinding(key.WithKeys("o")),
		NextLink:    key.NewBinding(key.WithKeys("tab")),
		PrevLink:    key.NewBinding(key.WithKeys("shift+tab")),
		HistBack:    key.NewBinding(key.WithKeys("esc", "backspace")),
		HistForward: key.NewBinding(key.WithKeys("f")),
		Left:        key.NewBinding(key.WithKeys("left", "h")),
		Right:       key.NewBinding(key.WithKeys("right", "l")),

		QChoose:      key.NewBinding(key.WithKeys("up", "down")),
		QPick:        key.NewBinding(key.WithKeys("1")),
		QNumber:      key.NewBinding(key.WithKeys("0")),
		QAnswer:      key.NewBinding(key.WithKeys("enter")),
		GlossOrGrade: key.NewBinding(key.WithKeys("g")),
	}
	k.SetLang("en")
	return k
}

// SetLang sets the help texts of every binding to lang ("zh" or "en").
func (k *KeyMap) SetLang(lang string) {
	t := func(b *key.Binding, keys, id string) { b.SetHelp(keys, T(lang, id)) }
	t(&k.Run, "enter", "key.run")
	t(&k.Next, "n", "key.next")
	t(&k.Prev, "p", "key.prev")
	t(&k.Shell, "s", "key.shell")
	t(&k.Hint, "h", "key.hint")
	t(&k.Check, "c", "key.check")
	t(&k.ResetStep, "r", "key.reset")
	t(&k.ResetAll, "R", "key.resetall")
	t(&k.Lang, "L", "key.lang")
	t(&k.Help, "?", "key.help")
	t(&k.Quit, "q", "key.quit")
	t(&k.ForceQuit, "ctrl+c", "key.quit")
	t(&k.Pane, "tab", "key.pane")
	t(&k.Back, "esc", "key.back")
	t(&k.Up, "↑/k", "key.up")
	t(&k.Down, "↓/j", "key.down")
	t(&k.Open, "enter", "key.open")
	t(&k.PageUp, "pgup/b", "key.pgup")
	t(&k.PageDown, "pgdn/space", "key.pgdown")
	t(&k.Search, "/", "key.search")
	t(&k.Glossary, "g", "key.glossary")
	t(&k.Zoom, "z", "key.zoom")
	t(&k.Outline, "o", "key.outline")
	t(&k.NextLink, "tab", "key.nextlink")
	t(&k.PrevLink, "shift+tab", "key.prevlink")
	t(&k.HistBack, "esc", "key.histback")
	t(&k.HistForward, "f", "key.histfwd")
	t(&k.Left, "←/h", "key.left")
	t(&k.Right, "→/l", "key.right")
	t(&k.QChoose, "↑/↓ ←/→", "key.qchoose")
	t(&k.QPick, "1–9", "key.qpick")
	t(&k.QNumber, "0–9 . -", "key.qnumber")
	t(&k.QAnswer, "enter", "key.qanswer")
	t(&k.GlossOrGrade, "g", "key.glossgrade")
}

// LessonKeys is the help.KeyMap of the lesson screen.
type LessonKeys struct{ KeyMap }

// ShortHelp is the one-line help bar.
func (k LessonKeys) ShortHelp() []key.Binding {
	return []key.Binding{k.Run, k.Next, k.Shell, k.Hint, k.Check, k.Help, k.Quit}
}

// FullHelp is the "?" screen.
func (k LessonKeys) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Run, k.Next, k.Prev, k.Shell, k.Hint, k.Check},
		{k.ResetStep, k.ResetAll, k.Lang, k.Quit, k.Back},
		{k.Up, k.Down, k.PageUp, k.PageDown, k.Pane, k.Zoom},
	}
}

// QuestionKeys is the "?" screen's part for a step's question, which is
// asked before the step's action runs.
type QuestionKeys struct{ KeyMap }

// ShortHelp is unused: the question shows its own prompt.
func (k QuestionKeys) ShortHelp() []key.Binding { return nil }

// FullHelp lists the picker's and the number input's keys.
func (k QuestionKeys) FullHelp() [][]key.Binding {
	return [][]key.Binding{{k.QChoose, k.QPick}, {k.QNumber, k.QAnswer}}
}

// CourseKeys is the "?" screen's part for the course's other screens
// (home, reader, search, glossary), so every key is listed on each.
type CourseKeys struct{ KeyMap }

// ShortHelp is unused: each screen has its own bar.
func (k CourseKeys) ShortHelp() []key.Binding { return nil }

// FullHelp lists the reading and finding keys.
func (k CourseKeys) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Search, k.GlossOrGrade, k.Outline},
		{k.NextLink, k.PrevLink, k.HistForward},
		{k.Left, k.Right, k.HistBack},
	}
}

// HomeKeys is the help.KeyMap of the home screen.
type HomeKeys struct{ KeyMap }

// ShortHelp is the one-line help bar.
func (k HomeKeys) ShortHelp() []key.Binding {
	return []key.Binding{k.Open, k.Search, k.Glossary, k.Lang, k.Help, k.Quit}
}

// FullHelp is the "?" screen.
func (k HomeKeys) FullHelp() [][]key.Binding {
	return [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown, k.Open}, {k.Search, k.Glossary, k.Lang, k.Help, k.Quit}}
}

// ReaderKeys is the help.KeyMap of the page reader.
type ReaderKeys struct{ KeyMap }

// ShortHelp is the one-line help bar.
func (k ReaderKeys) ShortHelp() []key.Binding {
	return []key.Binding{k.NextLink, k.Open, k.HistBack, k.Outline, k.Search, k.Help}
}

// FullHelp is the "?" screen.
func (k ReaderKeys) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Up, k.Down, k.PageUp, k.PageDown, k.Left, k.Right},
		{k.NextLink, k.PrevLink, k.Open, k.HistBack, k.HistForward},
		{k.Outline, k.Search, k.Glossary, k.Lang, k.Quit},
	}
}

// SearchKeys is the help.KeyMap of the search screen (letters are typed).
type SearchKeys struct{ KeyMap }

// ShortHelp is the one-line help bar.
func (k SearchKeys) ShortHelp() []key.Binding {
	return []key.Binding{
		key.NewBinding(key.WithKeys("up"), key.WithHelp("↑/↓", k.Up.Help().Desc+"/"+k.Down.Help().Desc)),
		k.Open, k.Back,
	}
}

// FullHelp is the "?" screen.
func (k SearchKeys) FullHelp() [][]key.Binding { return [][]key.Binding{k.ShortHelp()} }

// ListKeys is the help.KeyMap of the search results and the glossary.
type ListKeys struct{ KeyMap }

// ShortHelp is the one-line help bar.
func (k ListKeys) ShortHelp() []key.Binding {
	return []key.Binding{k.Up, k.Down, k.Open, k.Back}
}

// FullHelp is the "?" screen.
func (k ListKeys) FullHelp() [][]key.Binding {
	return [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown}, {k.Open, k.Back, k.Quit}}
}
