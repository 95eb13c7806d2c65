// Package v2check holds kernel tests that prove the pure cgroup v2 test VM (.ci/v2vm) gives the sandbox what it needs.
package v2check
