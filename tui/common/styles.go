package common

import (
	"charm.land/lipgloss/v2"
)

// Styles is the one place colours and borders are chosen. Colours are the
// 16 basic ANSI ones so the learner's terminal theme decides the exact
// shade (readable on light and dark backgrounds), and every meaning that a
// colour carries is also carried by a symbol, so NO_COLOR loses nothing.
type Styles struct {
	Title     lipgloss.Style // screen and pane titles
	Subtle    lipgloss.Style // secondary text: sources, durations
	Selected  lipgloss.Style // the highlighted row of a list
	Pass      lipgloss.Style // a check that passed, "same"/"ok"
	Fail      lipgloss.Style // a check that failed, an error
	Warn      lipgloss.Style // unmet requirements, throttling
	Accent    lipgloss.Style // values the lesson is about
	Pane      lipgloss.Style // a bordered pane
	PaneFocus lipgloss.Style // the pane in front (presenter mode)
	Chapter   lipgloss.Style // chapter headings on the home screen
	Bar       lipgloss.Style // the filled part of a usage bar
	BarEmpty  lipgloss.Style // the empty part of a usage bar
	Status    lipgloss.Style // the status bar line
	Key       lipgloss.Style // a key name in the help line
}

// DefaultStyles returns ctlab's styles.
func DefaultStyles() Styles {
	green, red, yellow, cyan, gray := lipgloss.Color("2"), lipgloss.Color("1"), lipgloss.Color("3"), lipgloss.Color("6"), lipgloss.Color("8")
	return Styles{
		Title:     lipgloss.NewStyle().Bold(true),
		Subtle:    lipgloss.NewStyle().Foreground(gray),
		Selected:  lipgloss.NewStyle().Bold(true).Reverse(true),
		Pass:      lipgloss.NewStyle().Foreground(green),
		Fail:      lipgloss.NewStyle().Foreground(red).Bold(true),
		Warn:      lipgloss.NewStyle().Foreground(yellow),
		Accent:    lipgloss.NewStyle().Foreground(cyan),
		Pane:      lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(gray),
		PaneFocus: lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(cyan),
		Chapter:   lipgloss.NewStyle().Bold(true).Underline(true),
		Bar:       lipgloss.NewStyle().Foreground(cyan),
		BarEmpty:  lipgloss.NewStyle().Foreground(gray),
		Status:    lipgloss.NewStyle().Reverse(true),
		Key:       lipgloss.NewStyle().Bold(true),
	}
}
