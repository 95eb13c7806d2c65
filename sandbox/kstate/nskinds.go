package kstate

// NamespaceKinds are the eight namespace kinds as named in /proc/<pid>/ns:
// the one list in ctlab. host.NamespaceKinds, NSKinds and
// sandbox.AllNamespaces are derived from it.
var NamespaceKinds = []string{"mnt", "uts", "ipc", "pid", "net", "user", "cgroup", "time"}

// NSKinds are the namespace files of /proc/<pid>/ns, the eight kinds plus
// the two "for children" links (pid and time namespaces apply to children
// created after unshare/setns, not to the caller itself).
var NSKinds = append(append([]string(nil), NamespaceKinds...), "pid_for_children", "time_for_children")
