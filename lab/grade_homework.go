package lab

import (
	"context"
	"fmt"
	"time"

	"github.com/ctlab/ctlab/lab/grade"
	"github.com/ctlab/ctlab/sandbox/image"
	"github.com/ctlab/ctlab/scenarios/homework"
)

// DefaultHomework is the homework the TUI's g grades against.
const DefaultHomework = "nginx-hello"

// GradeHomework grades image ref (a name in ctlab's image store, e.g.
// "hello", or any reference `ctlab grade` takes) against the built-in
// homework id, exactly as `ctlab grade` does: layers verified and
// unpacked into the shared cache, the image run in the sandbox for its
// serves checks.
func GradeHomework(ctx context.Context, id, ref, lang string) (*grade.Result, error) {
	f, err := homework.Open(id)
	if err != nil {
		return nil, err
	}
	spec, err := grade.ParseSpec(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("homework %s: %w", id, err)
	}
	cache, err := image.NewCache(image.DefaultCacheRoot, image.Limits{})
	if err != nil {
		return nil, fmt.Errorf("layer cache (grading needs root): %w", err)
	}
	if lang != "zh" {
		lang = "en"
	}
	g := &grade.Grader{Spec: spec, Cache: cache, Timeout: 90 * time.Second, Lang: lang, Runner: grade.SandboxRunner{}}
	return g.Grade(ctx, ref), nil
}
