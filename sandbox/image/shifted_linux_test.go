package image

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Removing a layer removes its id-shifted copies (every range), not the
// other layers' copies, and does not follow a symlink planted among them.
func TestRemoveShiftedCopies(t *testing.T) {
	top := t.TempDir()
	c, err := NewCache(filepath.Join(top, "layers"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	hex, other := strings.Repeat("a", 64), strings.Repeat("b", 64)
	outside := filepath.Join(top, "outside")
	for _, d := range []string{
		filepath.Join(c.Root, hex),
		filepath.Join(top, "layers-shifted", "100000", hex, "etc"),
		filepath.Join(top, "layers-shifted", "165536", hex),
		filepath.Join(top, "layers-shifted", "100000", other),
		outside,
	} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(outside, "keep"), []byte("x"), 0o600)
	os.MkdirAll(filepath.Join(top, "layers-shifted", "200000"), 0o700)
	os.Symlink(outside, filepath.Join(top, "layers-shifted", "200000", hex))
	if err := c.Remove(context.Background(), v1.Hash{Algorithm: "sha256", Hex: hex}); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(top, "layers-shifted", "*", "*"))
	if len(left) != 1 || filepath.Base(left[0]) != other {
		t.Errorf("shifted copies left: %v, want only %s's", left, other)
	}
	if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
		t.Errorf("a symlinked dir's content was removed: %v", err)
	}
}
