package cgroups

// V2Dir is the cgroup's directory in the unified (v2) hierarchy, or "" on a
// v1/hybrid host. Opened, it is the fd for clone3(CLONE_INTO_CGROUP), which
// starts a child directly in the cgroup: it never runs outside its limits,
// and the kernel skips the expensive migration of an attach.
func (c *Cgroup) V2Dir() string {
	if c.mode != V2 {
		return ""
	}
	return c.v2dir
}
