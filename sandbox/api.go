package sandbox

// This file is the contract of the sandbox for the scenario engine, the
// grader and the CLI. The implementation lives in the *_linux.go files named
// after the lifecycle (create, init, exec, delete, cleanup).
//
//	Start(ctx, cfg)          -> *Container   clone into new namespaces, cgroup, overlay, pivot_root, exec
//	Run(ctx, cfg)            -> exit status  Start + Wait (+ Remove when cfg.Remove)
//	Load(name) / List()      -> *Container   from the state file, liveness checked against the kernel
//	c.Exec(ctx, ec)          -> exit status  join every namespace (user first) and the cgroup, run a command
//	c.Command(ec)            -> *exec.Cmd    the same, unstarted (for a TUI that must own the terminal)
//	c.Pause/Unpause(ctx)                     cgroup freezer
//	c.Kill(sig), c.Wait(ctx)
//	c.Remove(ctx, force)                     kill, delete cgroup, unmount, remove links and dirs
//	Cleanup(ctx)             -> report       remove everything the journal says a killed run left behind
//
// Paths used (all 0700, all ctlab's own):
//
//	/run/ctlab/journal/<name>.jsonl        intent journal, written before each kernel object is made
//	/run/ctlab/containers/<name>.json      state: init pid + start time, layout, cgroup, links
//	/var/lib/ctlab/containers/<name>/      upper/ work/ merged/ and log for detached containers
//	/var/lib/ctlab/rootfs/                 cached default rootfs builds
