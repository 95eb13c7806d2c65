package tui

import (
	"context"
	"fmt"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/ctlab/ctlab/lab"
	"github.com/ctlab/ctlab/tui/common"
	"github.com/ctlab/ctlab/tui/components/actionlog"
	"github.com/ctlab/ctlab/tui/components/narration"
	"github.com/ctlab/ctlab/tui/components/statepane"
	"github.com/ctlab/ctlab/tui/components/statusbar"
)

type screen int

const (
	screenHome screen = iota
	screenLesson
	screenReader
	screenSearch
	screenGlossary
)

// Refresh periods: the state pane at about 4 Hz, a task's grading at 1 Hz
// (a check may exec inside the container, which costs a fork and exec).
const (
	refreshEvery = 250 * time.Millisecond
	checkEvery   = time.Second
)

// stepStatus is the state of one step in this session.
type stepStatus int

const (
	stepIdle stepStatus = iota
	stepRunning
	stepWaiting // a task whose actions ran: the learner's turn
	stepPassed
	stepFailed
)

// Model is the whole program: the home screen and the lesson screen.
type Model struct {
	ctx     context.Context // cancelled when the program ends
	opts    Options
	backend Backend
	styles  common.Styles
	keys    common.KeyMap
	lang    string
	width   int
	height  int
	layout  common.Layout

	screen   screen
	showHelp bool
	notice   string // one line in the status bar: errors, "no more hints"
	fatal    error  // returned by Run (e.g. an unknown scenario id)

	// home screen: the course, chapter by chapter
	items      []homeItem
	rows       []homeRow
	cursor     int    // index into rows
	selectedID string // the scenario last selected or opened
	read       map[string]bool
	progress   progressStore
	homeLoaded bool
	opening    bool
	closing    bool   // back from a lesson: its kernel objects are being removed
	lessonFrom screen // where closing a lesson goes back to

	// the reader, search and glossary
	rd    reader
	docs  map[string]*renderedDoc
	srch  search
	gl    glossaryView
	index []entry

	// lesson screen
	sess      Session
	sessGen   int // bumps on every open/close: stale events and ops are dropped
	scen      *lab.Scenario
	step      int
	status    []stepStatus
	passed    map[string]bool
	hints     map[int]string // step -> latest hint revealed
	quizzes   map[int]*quiz  // step -> its question's prediction and answer
	gv        *gradeView     // the homework grader, when open (g)
	busy      string         // the op in flight ("run", "reset", ...), "" when idle
	cancelOp  context.CancelFunc
	checking  bool
	lastCheck time.Time
	seen      map[string]string // check desc -> last logged result, to keep polling quiet
	pane      int               // presenter mode: 0 lesson, 1 state, 2 log
	zoom      bool              // z: the lesson text alone, full width
	tickID    int
	tickGen   int
	loader    *lab.Loader

	narr  narration.Model
	state statepane.Model
	log   actionlog.Model
	bar   statusbar.Model

	// frame is the last drawn screen; clean says the last Update changed
	// nothing visible, so View returns frame as is (a 4 Hz refresh of an
	// unchanged kernel costs no drawing).
	frame string
	clean bool
	boxes boxCache

	// open records the sessions this model opened so Run can remove their
	// kernel objects however the program ends (q, ctrl+c, SIGTERM, panic).
	open *openSessions
}

// New returns the program's model. ctx bounds every engine call.
func New(ctx context.Context, backend Backend, opts Options) *Model {
	if opts.Lang != "zh" {
		opts.Lang = "en"
	}
	styles := common.DefaultStyles()
	keys := common.DefaultKeyMap()
	keys.SetLang(opts.Lang)
	// Glamour's dark style until the terminal says its background is
	// light; without colour (NO_COLOR) the renderer drops the colours and
	// keeps bold and underline, which NO_COLOR allows.
	glamourStyle := "dark"
	m := &Model{
		ctx:     ctx,
		opts:    opts,
		backend: backend,
		styles:  styles,
		keys:    keys,
		lang:    opts.Lang,
		tickID:  1,
		loader:  lab.NewLoader(),
		narr:    narration.New(styles, glamourStyle),
		state:   statepane.New(styles, opts.Lang),
		log:     actionlog.New(styles, common.T(opts.Lang, "log.empty")),
		bar:     statusbar.New(styles),
		open:    &openSessions{},
		seen:    map[string]string{},
		boxes:   boxCache{},
		read:    map[string]bool{},
		docs:    map[string]*renderedDoc{},
	}
	m.rows = courseRows(nil)
	m.cursor = m.nextSelectable(-1, +1)
	m.state.SetPresent(opts.Present)
	if opts.ScenarioID != "" {
		m.opening = true
	}
	m.resize(common.MinWidth, common.MinHeight)
	if opts.Page != "" {
		m.showPage(m.lang, opts.Page, 0) // `ctlab learn PAGE`
	}
	return m
}

func (m *Model) t(id string) string { return common.T(m.lang, id) }

// Init loads the catalogue; a scenario given on the command line is opened
// as soon as it is known.
func (m *Model) Init() tea.Cmd {
	// The background query is answered asynchronously (v2 never blocks
	// on it, unlike v1's 5 s stall); no answer simply keeps "dark".
	cmds := []tea.Cmd{loadHome(m.ctx, m.backend, m.lang), loadPagesRead(m.progress), tea.RequestBackgroundColor}
	if m.screen == screenReader {
		cmds = append(cmds, m.needDoc())
	}
	return tea.Batch(cmds...)
}

// Update routes a message to the screen in front.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	m.clean = false
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		return m, m.resize(msg.Width, msg.Height)
	case tea.BackgroundColorMsg:
		if !msg.IsDark() {
			return m, m.narr.SetStyle("light")
		}
		return m, nil
	case narration.RenderedMsg:
		m.narr.Update(msg)
		return m, nil
	case pageRenderedMsg:
		m.docs[msg.key] = msg.doc
		if m.screen == screenReader {
			return m, m.placeDoc()
		}
		return m, nil
	case pagesReadMsg:
		for _, p := range msg.pages {
			m.read[p] = true
		}
		if msg.err != nil {
			m.notice = msg.err.Error()
		}
		return m, nil
	case tea.KeyPressMsg:
		if key.Matches(msg, m.keys.ForceQuit) {
			return m, m.quit()
		}
		if m.screen == screenSearch {
			return m, m.updateSearch(msg) // every other key is typed
		}
		if m.screen != screenLesson {
			m.notice = ""
		}
		if m.showHelp {
			if key.Matches(msg, m.keys.Help, m.keys.Back, m.keys.Quit) {
				m.showHelp = false
			}
			return m, nil
		}
		if key.Matches(msg, m.keys.Help) {
			m.showHelp = true
			return m, nil
		}
		if m.gv != nil {
			return m, m.updateGrade(msg)
		}
		if key.Matches(msg, m.keys.Lang) {
			return m, m.toggleLang()
		}
		if msg.String() == "g" && m.homeworkContext() {
			m.openGrade() // on the homework chapter g grades (the glossary stays on /)
			return m, nil
		}
	case gradeDoneMsg, gradeTickMsg:
		if m.gv != nil {
			return m, m.updateGrade(msg)
		}
		return m, nil
	case homeLoadedMsg:
		return m, m.onHomeLoaded(msg)
	case sessionOpenedMsg:
		return m, m.sessionOpened(msg)
	case sessionClosedMsg:
		m.screen, m.lessonFrom = m.lessonFrom, screenHome
		if m.screen == screenLesson {
			m.screen = screenHome
		}
		m.opening, m.closing = false, false
		if msg.err != nil {
			m.notice = msg.err.Error()
		}
		return m, loadHome(m.ctx, m.backend, m.lang)
	case noticeMsg:
		if msg.err != nil {
			m.notice = msg.err.Error()
		}
		return m, nil
	}
	switch m.screen {
	case screenLesson:
		return m, m.updateLesson(msg)
	case screenReader:
		return m, m.updateReader(msg)
	case screenGlossary:
		return m, m.updateGlossary(msg)
	}
	return m, m.updateHome(msg)
}

// quit ends the program. Cancelling the op in flight (an action, a check)
// lets it stop early; Run then waits for it and removes the scenario's
// kernel objects, so ctrl+c during an action leaves nothing behind.
func (m *Model) quit() tea.Cmd {
	if m.cancelOp != nil {
		m.cancelOp()
	}
	return tea.Quit
}

func (m *Model) toggleLang() tea.Cmd {
	if m.lang == "zh" {
		m.lang = "en"
	} else {
		m.lang = "zh"
	}
	m.keys.SetLang(m.lang)
	m.state.SetLang(m.lang)
	m.log.SetEmptyText(m.t("log.empty"))
	switch m.screen {
	case screenLesson:
		m.sess.SetLang(m.lang) // no kernel work: the engine only stores it
		return m.showStep()
	case screenReader:
		m.showPage(m.lang, m.rd.page, m.rd.offset)
		return m.needDoc()
	case screenSearch:
		m.runSearch()
	}
	return nil
}

// resize recomputes the layout once per WindowSizeMsg; components cache
// their drawings per size, so frames in between cost nothing extra.
func (m *Model) resize(w, h int) tea.Cmd {
	if w <= 0 || h <= 0 {
		return nil // not a terminal (output piped): keep 80×24
	}
	m.width, m.height = w, h
	m.layout = common.Compute(w, h, m.opts.Present)
	l := m.layout
	m.bar.SetSize(w)
	// inner sizes: borders take one cell on each side; the lesson pane
	// also shows a two-line step header.
	if m.opts.Present {
		m.state.SetSize(l.Width-4, l.BodyH-2)
		m.log.SetSize(l.Width-4, l.BodyH-2)
		return m.narr.SetSize(l.Width-4, l.BodyH-4)
	}
	m.state.SetSize(l.RightW-2, l.BodyH-2)
	m.log.SetSize(l.Width-2, l.LogH-2)
	var doc tea.Cmd
	if m.screen == screenReader {
		doc = m.needDoc()
	}
	if m.zoom {
		return tea.Batch(doc, m.narr.SetSize(l.Width-2, l.BodyH+l.LogH-4))
	}
	return tea.Batch(doc, m.narr.SetSize(l.LeftW-2, l.BodyH-4))
}

// View draws the screen in front.
func (m *Model) View() tea.View {
	s := m.frame
	switch {
	case m.clean && s != "":
	case m.showHelp:
		s = m.viewHelp()
	case m.gv != nil:
		s = m.viewGrade()
	case m.screen == screenLesson:
		s = m.viewLesson()
	case m.screen == screenReader:
		s = m.viewReader()
	case m.screen == screenSearch:
		s = m.viewSearch()
	case m.screen == screenGlossary:
		s = m.viewGlossary()
	default:
		s = m.viewHome()
	}
	m.frame = s
	v := tea.NewView(s)
	v.AltScreen = true
	v.WindowTitle = "ctlab"
	return v
}

func (m *Model) viewHelp() string {
	var keys interface {
		ShortHelp() []key.Binding
		FullHelp() [][]key.Binding
	} = common.HomeKeys{KeyMap: m.keys}
	switch m.screen {
	case screenLesson:
		keys = common.LessonKeys{KeyMap: m.keys}
	case screenReader:
		keys = common.ReaderKeys{KeyMap: m.keys}
	case screenSearch, screenGlossary:
		keys = common.ListKeys{KeyMap: m.keys}
	}
	body := m.styles.Title.Render("ctlab — "+m.t("key.help")) + "\n\n" + m.bar.FullHelp(keys)
	// Every key is listed on every "?" screen: the lesson's also name the
	// question's keys and the course screens' ones.
	if m.screen == screenLesson {
		body += "\n\n" + m.styles.Subtle.Render(m.t("help.question")) + "\n" + m.bar.FullHelp(common.QuestionKeys{KeyMap: m.keys})
	}
	if m.screen != screenReader {
		body += "\n\n" + m.styles.Subtle.Render(m.t("help.course")) + "\n" + m.bar.FullHelp(common.CourseKeys{KeyMap: m.keys})
	}
	body += "\n\n" + m.styles.Subtle.Render(fmt.Sprintf("? / esc %s", m.t("key.back")))
	return box(m.styles.Pane, m.width, m.height, body, "")
}
