package sandbox

// failpoint marks a step of Start where the crash tests kill ctlab (see
// cleanup_linux_test.go). Release builds keep this no-op: the hook that
// reads CTLAB_FAILPOINT lives in failpoint_linux_test.go, so only a test
// binary (which is also the binary the crash tests run) contains it.
var failpoint = func(name string) {}
