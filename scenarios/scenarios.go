// Package scenarios embeds ctlab's lesson scenario files (YAML) and homework specs.
package scenarios

import "embed"

// FS holds the scenario files at its top level (*.yaml) and, when present,
// the homework specs under homework/. The pattern is "*" rather than
// "*.yaml homework" because go:embed refuses a pattern that matches
// nothing, and homework/ is written separately: "*" compiles with whatever
// exists (it also embeds this .go file, which readers skip).
//
//go:embed *
var FS embed.FS
