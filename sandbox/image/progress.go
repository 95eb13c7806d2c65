package image

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Progress reports per-layer transfer progress. On a terminal (Live) one
// line per layer is redrawn in place; otherwise one line is printed when a
// layer is done, so logs stay readable. A nil *Progress reports nothing.
type Progress struct {
	W    io.Writer
	Live bool
	mu   sync.Mutex
	last time.Time
}

// HumanSize prints n bytes the way docker does (kB, MB, GB; powers of 1000).
func HumanSize(n int64) string {
	f := float64(n)
	for _, u := range []string{"B", "kB", "MB", "GB"} {
		if f < 1000 || u == "GB" {
			if u == "B" {
				return fmt.Sprintf("%dB", n)
			}
			return fmt.Sprintf("%.3g%s", f, u)
		}
		f /= 1000
	}
	return ""
}

func (p *Progress) line(d v1.Hash, msg string, final bool) {
	if p == nil || p.W == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.Live && !final {
		return
	}
	if p.Live && !final && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	end := "\n"
	if p.Live {
		fmt.Fprint(p.W, "\r\x1b[K")
		if !final {
			end = ""
		}
	}
	fmt.Fprintf(p.W, "%s: %s%s", shortHex(d), msg, end)
}

func (p *Progress) done(d v1.Hash, msg string) { p.line(d, msg, true) }

// reader wraps r so that reading it reports progress for layer d.
func (p *Progress) reader(ctx context.Context, d v1.Hash, size int64, r io.Reader) io.Reader {
	return &progressReader{ctx: ctx, p: p, d: d, size: size, r: r}
}

type progressReader struct {
	ctx  context.Context
	p    *Progress
	d    v1.Hash
	size int64
	n    int64
	r    io.Reader
}

func (r *progressReader) Read(b []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	k, err := r.r.Read(b)
	r.n += int64(k)
	r.p.line(r.d, bar(r.n, r.size), false)
	return k, err
}

// bar draws "[=====>     ]  12.3MB/45.6MB".
func bar(n, size int64) string {
	const width = 30
	if size <= 0 {
		return HumanSize(n)
	}
	fill := int(float64(width) * float64(n) / float64(size))
	if fill > width {
		fill = width
	}
	b := make([]byte, width)
	for i := range b {
		switch {
		case i < fill:
			b[i] = '='
		case i == fill:
			b[i] = '>'
		default:
			b[i] = ' '
		}
	}
	return fmt.Sprintf("[%s] %s/%s", b, HumanSize(n), HumanSize(size))
}
