package common

// Layout is how the lesson screen divides the terminal. It is computed
// once per resize (not per frame) and handed to each component's SetSize.
type Layout struct {
	Width, Height int
	// Left (lesson text), Right (state pane) and Log (action log) are the
	// outer sizes of the three panes, borders included. In presenter mode
	// only one pane is shown and it gets the whole body.
	LeftW, RightW, BodyH, LogH int
	StatusH                    int
}

// MinWidth and MinHeight are the smallest terminal the lesson screen is
// designed for (80×24); below it the panes are still drawn but cropped.
const (
	MinWidth  = 80
	MinHeight = 24
)

// Compute divides w×h. The left pane gets 55% (the lesson is the point),
// the log takes a quarter of the height but at least 5 lines.
func Compute(w, h int, present bool) Layout {
	l := Layout{Width: w, Height: h, StatusH: 2}
	if w < 20 {
		w = 20
	}
	if h < 10 {
		h = 10
	}
	avail := h - l.StatusH
	if present {
		l.LeftW, l.RightW = w, w
		l.BodyH = avail
		return l
	}
	l.LogH = avail / 4
	if l.LogH < 5 {
		l.LogH = 5
	}
	l.BodyH = avail - l.LogH
	l.LeftW = w * 55 / 100
	l.RightW = w - l.LeftW
	return l
}
