// Package kstate reads one snapshot of a process's live kernel state (namespaces, ids, cgroups, mounts, names, IPC, clocks, children) straight from /proc, never from ctlab's own records.
//
// Every value carries its Source: the file or syscall it was read from, so a
// lesson check can show the learner where the evidence came from and they
// can read the same file themselves.
package kstate
