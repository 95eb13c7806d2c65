package statepane

import "github.com/charmbracelet/x/ansi"

// truncate cuts a styled line to w cells, keeping escape codes intact.
func truncate(s string, w int) string { return ansi.Truncate(s, w, "…") }
