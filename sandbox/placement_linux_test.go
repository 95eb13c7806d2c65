package sandbox

import (
	"context"
	"fmt"
	"testing"

	"github.com/ctlab/ctlab/sandbox/cgroups"
)

// choosePlacement picks the strategy docs/start-path.md's table names for
// each kind of start on this host's cgroup mode.
func TestChoosePlacement(t *testing.T) {
	requireRoot(t)
	cg, err := cgroups.Create(testName(t), cgroups.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Delete(context.Background())
	want := map[[2]bool]string{} // {stage, userns} -> strategy
	switch cgroups.Effective() {
	case cgroups.V2:
		want[[2]bool{false, false}] = "*sandbox.cloneIntoCgroup"
		want[[2]bool{false, true}] = "*sandbox.cloneIntoCgroup"
		want[[2]bool{true, false}] = "*sandbox.cloneIntoCgroup"
		want[[2]bool{true, true}] = "sandbox.attachByPid"
	case cgroups.V1:
		want[[2]bool{false, false}] = "*sandbox.cloneFromThread"
		want[[2]bool{false, true}] = "*sandbox.cloneFromThread"
		want[[2]bool{true, false}] = "sandbox.initMovesItself"
		want[[2]bool{true, true}] = "sandbox.initMovesItself"
	}
	for k, w := range want {
		owner := 0
		if k[1] {
			owner = DefaultUIDBase
		}
		p := choosePlacement(cg, k[0], k[1], owner)
		if got := fmt.Sprintf("%T", p); got != w {
			t.Errorf("stage=%v userns=%v: %s, want %s", k[0], k[1], got, w)
		}
		if c, ok := p.(*cloneIntoCgroup); ok && c.byStage != k[0] {
			t.Errorf("stage=%v userns=%v: byStage=%v", k[0], k[1], c.byStage)
		}
	}
}
