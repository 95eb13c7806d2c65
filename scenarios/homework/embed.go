// Package homework embeds the homework specs that `ctlab grade <id>` knows by name.
package homework

import (
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"
)

//go:embed *.yaml
var files embed.FS

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// Open returns the YAML of the homework called id (e.g. "nginx-hello").
func Open(id string) (fs.File, error) {
	if !idPattern.MatchString(id) {
		return nil, fmt.Errorf("homework id %q: not a valid name", id)
	}
	f, err := files.Open(id + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no built-in homework %q (known: %s); use --spec FILE for your own", id, strings.Join(List(), ", "))
	}
	return f, nil
}

// List returns the ids of the built-in homework specs.
func List() []string {
	ents, _ := files.ReadDir(".")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(out)
	return out
}
