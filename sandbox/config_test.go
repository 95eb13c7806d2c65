package sandbox

import (
	"slices"
	"testing"

	"github.com/ctlab/ctlab/sandbox/kstate"
)

// AllNamespaces is derived from kstate.NamespaceKinds: every kind once,
// user first, mnt last.
func TestAllNamespacesDerived(t *testing.T) {
	if len(AllNamespaces) != len(kstate.NamespaceKinds) || AllNamespaces[0] != NSUser || AllNamespaces[len(AllNamespaces)-1] != NSMount {
		t.Fatalf("AllNamespaces = %v", AllNamespaces)
	}
	for _, k := range kstate.NamespaceKinds {
		if !slices.Contains(AllNamespaces, Namespace(k)) || !Namespace(k).Valid() {
			t.Errorf("%s missing from AllNamespaces", k)
		}
	}
	got, err := ParseNamespaces("time,mnt,user")
	if err != nil || !slices.Equal(got, []Namespace{NSUser, NSTime, NSMount}) {
		t.Errorf("ParseNamespaces = %v, %v", got, err)
	}
	if _, err := ParseNamespaces("mnt,bogus"); err == nil {
		t.Errorf("ParseNamespaces accepted a bogus kind")
	}
}
