// Package install finds the programs ctlab installs side by side: ctlab,
// ctlab-tui (the terminal UI) and ctlab-init (the container init).
package install

import (
	"os"
	"path/filepath"
)

// Sibling returns the path of name in the directory of the running
// executable, or "" when there is no such regular file.
func Sibling(name string) string {
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(self), name)
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	return p
}
