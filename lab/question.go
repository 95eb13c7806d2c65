package lab

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Question is a step's predict-then-observe question: asked before the
// step's action runs, answered after it from the kernel. Either Choices
// (multiple choice) or Number (a number within a tolerance).
//
//	question:
//	  en: How many periods will be throttled in 3 seconds?
//	  zh: 3 秒里会有多少个周期被节流？
//	  number: {tolerance: 12}
//	  observe: {cgroup_value: {in: box, file: cpu.stat, key: nr_throttled, op: ">=", value: "0"}}
//
// Observe is a check of the vocabulary evaluated after the action: its
// Evidence.Actual is the kernel's answer (the first number in it for a
// number question or a numeric choice). Only a conceptual question the
// kernel cannot answer marks one choice `correct` instead.
type Question struct {
	EN      string    `yaml:"en" json:"en"`
	ZH      string    `yaml:"zh" json:"zh"`
	Choices []*Choice `yaml:"choices,omitempty" json:"choices,omitempty"`
	Number  *NumberQ  `yaml:"number,omitempty" json:"number,omitempty"`
	Observe *Check    `yaml:"observe,omitempty" json:"observe,omitempty"`
	// Match says what of the observed evidence picks the right choice:
	// "actual" (default: the value read) or "pass" (whether the observe
	// check held: choice values "true" and "false").
	Match   string `yaml:"match,omitempty" json:"match,omitempty"`
	Explain Text   `yaml:"explain,omitempty" json:"explain,omitempty"`
}

// Choice is one answer of a multiple-choice question. Value is what the
// observed Actual is matched against (default: its 1-based position).
type Choice struct {
	Value   string `yaml:"value,omitempty" json:"value,omitempty"`
	EN      string `yaml:"en" json:"en"`
	ZH      string `yaml:"zh" json:"zh"`
	Correct bool   `yaml:"correct,omitempty" json:"correct,omitempty"`
}

// NumberQ is a numeric question: a prediction within Tolerance of the
// kernel's number is right.
type NumberQ struct {
	Tolerance float64 `yaml:"tolerance" json:"tolerance"`
	Unit      Text    `yaml:"unit,omitempty" json:"unit,omitempty"`
}

// In returns the question in lang.
func (q *Question) In(lang string) string { return Text{EN: q.EN, ZH: q.ZH}.In(lang) }

// In returns the choice's text in lang.
func (c *Choice) In(lang string) string { return Text{EN: c.EN, ZH: c.ZH}.In(lang) }

func (c *Choice) value(i int) string {
	if c.Value != "" {
		return c.Value
	}
	return strconv.Itoa(i + 1)
}

// question validates step st's question at path p (after its actions, so
// the observe check sees the targets they made).
func (v *validator) question(p []any, q *Question) {
	if q == nil {
		return
	}
	v.text(p, "question", Text{EN: q.EN, ZH: q.ZH})
	switch {
	case len(q.Choices) > 0 && q.Number != nil:
		v.addf(p, "question: give choices or number, not both")
	case q.Number != nil:
		if q.Observe == nil {
			v.addf(p, "question: a number question needs observe: the check whose actual value is the kernel's answer")
		}
		if q.Number.Tolerance < 0 || math.IsNaN(q.Number.Tolerance) {
			v.addf(append(p, "number"), "question: tolerance %v: want >= 0", q.Number.Tolerance)
		}
	case len(q.Choices) < 2 || len(q.Choices) > 6:
		v.addf(p, "question: want 2..6 choices, or number")
	default:
		v.choices(p, q)
	}
	if q.Observe != nil {
		v.check(append(p, "observe"), q.Observe)
	}
	switch {
	case q.Match != "" && q.Match != "actual" && q.Match != "pass":
		v.addf(append(p, "match"), "question: match %q: want actual or pass", q.Match)
	case q.Match == "pass" && (q.Observe == nil || q.Number != nil):
		v.addf(append(p, "match"), "question: match: pass needs observe and choices")
	case q.Match == "pass":
		for i, c := range q.Choices {
			if c != nil && c.Value != "true" && c.Value != "false" {
				v.addf(append(p, "choices", i), "question: with match: pass a choice's value is true or false, not %q", c.Value)
			}
		}
	}
}

// choices checks that exactly one answer source says which choice is right.
func (v *validator) choices(p []any, q *Question) {
	correct := 0
	seen := map[string]bool{}
	for i, c := range q.Choices {
		cp := append(p, "choices", i)
		if c == nil {
			v.addf(cp, "question: empty choice")
			continue
		}
		v.text(cp, "choice", Text{EN: c.EN, ZH: c.ZH})
		if seen[c.value(i)] {
			v.addf(cp, "question: choice value %q is used twice", c.value(i))
		}
		seen[c.value(i)] = true
		if c.Correct {
			correct++
		}
	}
	switch {
	case q.Observe != nil && correct > 0:
		v.addf(p, "question: with observe the kernel says which choice is right: remove correct: true")
	case q.Observe == nil && correct != 1:
		v.addf(p, "question: mark exactly one choice correct: true (found %d), or give observe", correct)
	}
}

// Prediction is the learner's answer to a step's question next to the
// kernel's, as recorded in a Result and the progress file.
type Prediction struct {
	Answer  string `json:"answer,omitempty"`  // the learner's: a choice value or a number
	Skipped bool   `json:"skipped,omitempty"` // not answered (headless, --solve)
	Kernel  string `json:"kernel,omitempty"`  // the right answer: a choice value or the number read
	Correct bool   `json:"correct"`
}

// QuestionAsked: the current step has a question; it is asked before the
// step's action runs.
type QuestionAsked struct {
	Time     time.Time `json:"time"`
	Step     string    `json:"step"`
	Question string    `json:"question"`
	Choices  []string  `json:"choices,omitempty"` // in order; answers are 1-based positions or values
	Values   []string  `json:"values,omitempty"`
	Number   bool      `json:"number,omitempty"`
	Unit     string    `json:"unit,omitempty"`
}

// QuestionAnswered: after the action the kernel answered the step's
// question; Evidence is the observe check that read it (nil for a
// conceptual choice question).
type QuestionAnswered struct {
	Time       time.Time `json:"time"`
	Step       string    `json:"step"`
	Question   string    `json:"question"`
	Prediction `json:"prediction"`
	KernelText string    `json:"kernel_text"` // the answer as shown: a choice's text, or the number with its unit
	Explain    string    `json:"explain,omitempty"`
	Evidence   *Evidence `json:"evidence,omitempty"`
}

func (QuestionAsked) Name() string    { return "question_asked" }
func (QuestionAnswered) Name() string { return "question_answered" }

// Predict records the learner's answer to the current step's question
// (a choice value or a number); "" records it as skipped.
func (e *Engine) Predict(answer string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := &e.steps[e.cur]
	s.predicted = true
	s.prediction = Prediction{Answer: strings.TrimSpace(answer), Skipped: strings.TrimSpace(answer) == ""}
}

// askQuestion emits step i's question (if any) when the step starts.
func (e *Engine) askQuestion(i int, lang string) {
	st := e.s.Steps[i]
	q := st.Question
	if q == nil {
		return
	}
	ev := QuestionAsked{Time: time.Now(), Step: st.ID, Question: q.In(lang), Number: q.Number != nil}
	for j, c := range q.Choices {
		ev.Choices = append(ev.Choices, c.In(lang))
		ev.Values = append(ev.Values, c.value(j))
	}
	if q.Number != nil {
		ev.Unit = q.Number.Unit.In(lang)
	}
	e.emit(ev)
}

// reveal reads the kernel's answer to step i's question, once, after the
// step's action, and emits it next to the learner's prediction.
func (e *Engine) reveal(ctx context.Context, i int) {
	st := e.s.Steps[i]
	q := st.Question
	e.mu.Lock()
	if q == nil || e.steps[i].revealed {
		e.mu.Unlock()
		return
	}
	e.steps[i].revealed = true
	p := e.steps[i].prediction
	if !e.steps[i].predicted {
		p = Prediction{Skipped: true}
	}
	lang := e.opt.Lang
	e.mu.Unlock()
	ans := QuestionAnswered{Time: time.Now(), Step: st.ID, Question: q.In(lang), Explain: q.Explain.In(lang)}
	if q.Observe != nil {
		ev := e.Evaluate(ctx, []*Check{q.Observe})[0]
		ans.Evidence = &ev
	}
	p.Kernel, ans.KernelText = q.answer(ans.Evidence, lang)
	p.Correct = !p.Skipped && p.Kernel != "" && q.judge(p.Answer, p.Kernel)
	ans.Prediction = p
	e.mu.Lock()
	e.steps[i].prediction = p
	e.steps[i].answer = ans.Evidence
	e.mu.Unlock()
	e.emit(ans)
}

// answer is the right answer (a choice value or a number) and how to show
// it; "" when the kernel could not be read.
func (q *Question) answer(ev *Evidence, lang string) (string, string) {
	if ev != nil && ev.Err != "" {
		return "", "(" + ev.Err + ")"
	}
	if q.Number != nil {
		n, ok := firstNumber(ev.Actual)
		if !ok {
			return "", ev.Actual
		}
		s := strconv.FormatFloat(n, 'f', -1, 64)
		if u := q.Number.Unit.In(lang); u != "" {
			return s, s + " " + u
		}
		return s, s
	}
	got := ""
	if ev != nil {
		got = ev.Actual
		if q.Match == "pass" {
			got = strconv.FormatBool(ev.Pass)
		}
	}
	for j, c := range q.Choices {
		if (ev == nil && c.Correct) || (ev != nil && matches(got, c.value(j))) {
			return c.value(j), c.In(lang)
		}
	}
	if ev != nil {
		return "", ev.Actual
	}
	return "", ""
}

// judge reports whether the learner's answer is the kernel's.
func (q *Question) judge(answer, kernel string) bool {
	if q.Number != nil {
		a, ok1 := firstNumber(answer)
		k, ok2 := firstNumber(kernel)
		return ok1 && ok2 && math.Abs(a-k) <= q.Number.Tolerance
	}
	return strings.EqualFold(strings.TrimSpace(answer), kernel)
}

var numberRE = regexp.MustCompile(`-?[0-9]+(\.[0-9]+)?`)

func firstNumber(s string) (float64, bool) {
	m := numberRE.FindString(s)
	if m == "" {
		return 0, false
	}
	n, err := strconv.ParseFloat(m, 64)
	return n, err == nil
}

// matches reports whether an observed Actual is a choice's value: the
// same number (the first in Actual), or the same word at its start.
func matches(actual, value string) bool {
	if want, err := strconv.ParseFloat(value, 64); err == nil {
		got, ok := firstNumber(actual)
		return ok && got == want
	}
	a, v := strings.ToLower(strings.TrimSpace(actual)), strings.ToLower(value)
	return a == v || strings.HasPrefix(a, v+" ") || strings.HasPrefix(a, v+"(")
}

// questionDefect is what `scenario test` reports when a step's question
// could not be answered from the kernel after the step.
func questionDefect(st *Step, ev *Evidence, p Prediction) string {
	if st.Question == nil || st.Question.Observe == nil {
		return ""
	}
	switch {
	case ev == nil:
		return "question: never answered"
	case ev.Err != "":
		return fmt.Sprintf("question: observe %s could not be read: %s", ev.Desc, ev.Err)
	case p.Kernel == "":
		return fmt.Sprintf("question: observe %s read %q, which answers none of the choices", ev.Desc, ev.Actual)
	}
	return ""
}
