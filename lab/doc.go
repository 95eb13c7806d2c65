// Package lab is ctlab's scenario engine: it loads strict YAML lessons, runs their steps in sandbox containers, and grades typed checks against live kernel state.
package lab
