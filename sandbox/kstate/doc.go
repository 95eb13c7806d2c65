// Package kstate reads one snapshot of a process's live kernel state (namespaces, ids, cgroups, mounts, names, IPC, clocks, children) straight from /proc, never from ctlab's own records; ReadSnapshot adds a container's cgroup, links and upper layer.
package kstate
