// See nsexec.go for why this runs before the Go runtime, and
// docs/start-path.md ("The init protocol") for its fds and variables.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#include <stdint.h>
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

// clone3's argument, the kernel's struct clone_args up to the cgroup field
// (CLONE_ARGS_SIZE_VER2), declared here rather than taken from
// <linux/sched.h>: the stage builds against musl too, whose headers carry
// no kernel headers (see the Makefile: musl's start-up costs ~0.1 ms where
// glibc's, which asks the CPU for its cache sizes with ~30 cpuid traps, costs
// ~0.6 ms in a VM).
struct stage_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal;
	uint64_t stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

static void bail(const char *what, const char *arg);

// The C stage's configuration comes from ctlab on an inherited pipe, never
// from the environment: the environment of an exec is the image's, and an
// image with ENV _CTLAB_CG_JOIN=/etc/shadow would make host root write a
// host file before any setns (issue 12). The pipe holds "key=value" lines;
// which fd it is, the argv says (argv[1] is ctlab's own marker, and only
// ctlab execs itself with it).
static char cfg_buf[16384];

static void read_config(int fd) {
	size_t n = 0;
	for (;;) {
		if (n == sizeof cfg_buf - 1) { errno = E2BIG; bail("read", "stage config"); }
		ssize_t r = read(fd, cfg_buf + n, sizeof cfg_buf - 1 - n);
		if (r < 0 && errno == EINTR) continue;
		if (r < 0) bail("read", "stage config");
		if (r == 0) break;
		n += (size_t)r;
	}
	cfg_buf[n] = 0;
	close(fd);
}

// cfg_get returns a copy of key's value, or NULL.
static char *cfg_get(const char *key) {
	size_t kl = strlen(key);
	for (char *line = cfg_buf; line && *line;) {
		char *end = strchr(line, '\n');
		if (!strncmp(line, key, kl) && line[kl] == '=') {
			size_t vl = end ? (size_t)(end - line - kl - 1) : strlen(line + kl + 1);
			return strndup(line + kl + 1, vl);
		}
		line = end ? end + 1 : NULL;
	}
	return NULL;
}

// join_self writes "0" (= the caller) to each v1 "tasks" file of the
// container's cgroup. A thread moving itself skips the global
// cgroup_threadgroup_rwsem, and with it the RCU grace period (5-10 ms) that
// moving a pid waits for after an idle spell; a single-threaded process
// (we are, before the Go runtime) moves whole. The files are opened by
// open_tasks before any namespace is joined (a joined mount namespace may
// not show the host's cgroupfs); the forked init writes them.
#define MAX_TASKS 32
static int tasks_fd[MAX_TASKS];
static int tasks_n;

static void open_tasks(const char *v) {
	if (!v || !*v) return;
	char *copy = strdup(v);
	for (char *save = NULL, *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
		if (tasks_n == MAX_TASKS) { errno = E2BIG; bail("cgroup hierarchies", v); }
		int fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd < 0) bail("open", p);
		tasks_fd[tasks_n++] = fd;
	}
	free(copy);
}

static void join_self(void) {
	for (int i = 0; i < tasks_n; i++) {
		if (write(tasks_fd[i], "0", 1) != 1) bail("join cgroup", "tasks");
		close(tasks_fd[i]);
	}
}

// open_dir opens the v2 cgroup directory (NULL or "" = none: -1).
static int open_dir(const char *v2) {
	if (!v2 || !*v2) return -1;
	int fd = open(v2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) bail("open", v2);
	return fd;
}

// fork_into forks. On cgroup v2 (cgfd = the container cgroup's directory,
// opened by open_dir) clone3 with CLONE_INTO_CGROUP starts the child
// directly in the cgroup: no attach, so none of the RCU grace period (5-10 ms) that the
// first write of a pid to cgroup.procs after an idle spell waits for.
static pid_t fork_into(int cgfd) {
	if (cgfd < 0) return fork();
	struct stage_clone_args args;
	memset(&args, 0, sizeof args);
	args.flags = CLONE_INTO_CGROUP;
	args.exit_signal = SIGCHLD;
	args.cgroup = (uint64_t)cgfd;
	pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof args);
	// Both sides close it: the child must not carry a directory fd of the
	// host's cgroup tree into the container (a WORKDIR /proc/self/fd/N
	// would make it the command's cwd; runc's CVE-2024-21626).
	close(cgfd);
	return pid;
}

void ctlab_nsexec_anchor(void) {}

// status_fd is the init's status pipe while the init stage runs: a failure
// there is reported to Start as an {"error":...} line (readInitPid), not
// only on the container's stderr, which may be a log nobody reads.
static int status_fd = -1;

static void bail(const char *what, const char *arg) {
	const char *err = strerror(errno);
	fprintf(stderr, "ctlab exec: %s %s: %s\n", what, arg ? arg : "", err);
	if (status_fd >= 0) {
		char msg[512], clean[400];
		snprintf(clean, sizeof clean, "%s %s: %s", what, arg ? arg : "", err);
		for (char *c = clean; *c; c++)
			if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) *c = '?';
		int len = snprintf(msg, sizeof msg, "{\"error\":\"init stage: %s\"}\n", clean);
		if (write(status_fd, msg, len) != len) _exit(127);
	}
	_exit(126);
}

static int ns_flag(const char *kind) {
	if (!strcmp(kind, "user")) return CLONE_NEWUSER;
	if (!strcmp(kind, "ipc")) return CLONE_NEWIPC;
	if (!strcmp(kind, "uts")) return CLONE_NEWUTS;
	if (!strcmp(kind, "net")) return CLONE_NEWNET;
	if (!strcmp(kind, "pid")) return CLONE_NEWPID;
	if (!strcmp(kind, "cgroup")) return CLONE_NEWCGROUP;
	if (!strcmp(kind, "time")) return CLONE_NEWTIME;
	if (!strcmp(kind, "mnt")) return CLONE_NEWNS;
	return -1;
}

// become_root makes the process uid/gid 0 of the user namespace it just
// joined (it maps to an unprivileged uid on the host). setgroups may be
// denied by /proc/<pid>/setgroups; that is harmless here.
static void become_root(void) {
	setgroups(0, NULL);
	if (setresgid(0, 0, 0) < 0) bail("setresgid", "0");
	if (setresuid(0, 0, 0) < 0) bail("setresuid", "0");
}

#define MAX_JOIN 8

// join_namespaces joins the namespaces of a container init's "join=KIND:FD,..."
// (files ctlab opened and checked to be namespaces of that kind), in runc's
// order (libcontainer/nsenter): every kind but user first, while we still
// hold the host's privileges, skipping those that say EPERM; then the user
// namespace (and become its root); then the skipped ones, which its
// capabilities may now allow. Each fd is closed once joined: a host
// namespace file must not reach the container. A pid or time namespace
// applies to the children, so the fork that follows lands in it.
static void join_namespaces(char *spec) {
	int fds[MAX_JOIN], flags[MAX_JOIN], n = 0;
	const char *kinds[MAX_JOIN];
	for (char *save = NULL, *item = spec ? strtok_r(spec, ",", &save) : NULL; item; item = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(item, ':');
		if (!colon || n == MAX_JOIN) { errno = EINVAL; bail("bad namespace spec", item); }
		*colon = 0;
		kinds[n] = item;
		flags[n] = ns_flag(item);
		fds[n] = atoi(colon + 1);
		if (flags[n] < 0) { errno = EINVAL; bail("unknown namespace", item); }
		n++;
	}
	for (int pass = 0; pass < 3; pass++) {
		for (int i = 0; i < n; i++) {
			if (fds[i] < 0 || (pass == 1) != (flags[i] == CLONE_NEWUSER)) continue;
			if (setns(fds[i], flags[i]) < 0) {
				if (errno == EPERM && pass == 0) continue;
				bail("setns", kinds[i]);
			}
			close(fds[i]);
			fds[i] = -1;
			if (flags[i] == CLONE_NEWUSER) become_root();
		}
	}
}

// unshare_flags ORs the flags of a space-separated list of kinds.
static int unshare_flags(char *list) {
	int flags = 0;
	for (char *save = NULL, *k = list ? strtok_r(list, " ", &save) : NULL; k; k = strtok_r(NULL, " ", &save)) {
		int f = ns_flag(k);
		if (f < 0) { errno = EINVAL; bail("unknown namespace", k); }
		flags |= f;
	}
	return flags;
}

static pid_t child_pid;

static void forward(int sig) {
	if (child_pid > 0) kill(child_pid, sig);
}

// wait_and_exit waits for child_pid and exits with its status (128+signal
// when killed).
static void wait_and_exit(int fail) {
	int status;
	while (waitpid(child_pid, &status, 0) < 0) {
		if (errno != EINTR) _exit(fail);
	}
	if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
	if (WIFSIGNALED(status)) _exit(128 + WTERMSIG(status));
	_exit(1);
}

// join_cgroups writes "0" (= the caller) to each file: v1 "tasks" files,
// where a thread moving itself skips the global cgroup_threadgroup_rwsem
// and its RCU grace period; we are single-threaded, so that moves the
// whole process.
static void join_cgroups(char *list) {
	for (char *save = NULL, *p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
		int fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd < 0) bail("open", p);
		if (write(fd, "0", 1) != 1) bail("join cgroup", p);
		close(fd);
	}
}

// ctlab_init_stage runs in a container init re-executed by sandbox.Start,
// when it asks for a new pid and/or time namespace or joins namespaces
// (argv "__ctlab_init stage"; its config on fd 6: "init=pid time MONO_S
// MONO_NS BOOT_S BOOT_NS join" (the word join is informative), "cg_v2=DIR",
// "cg_join=TASKS:TASKS", "join=KIND:FD,..."). setns must run
// single-threaded (mnt, user) and a joined pid or time namespace, like a
// new one, holds only the children. Both new kinds only apply to children of
// the process that unshares them, and a time namespace's offsets must be
// written before any process enters it; before Linux 6.2 an execve does not
// enter it either, and a Go runtime whose thread has a pending time
// namespace cannot start threads. So, still single-threaded: unshare, write
// the offsets, fork. The child continues into the Go init as pid 1 of the
// new pid namespace, inside the new time namespace. This process stays
// behind as the container's waiter ("shim"): it reports the child's host
// pid on fd 4, forwards signals, and exits with the child's status. With
// "reparent=1" (an OCI runtime's container, like runc) it exits once it
// reported the pid instead: the init is re-parented to the nearest child
// subreaper (containerd's shim, conmon, ctlab-oci run), which reaps it, and
// the pid its caller sees is the container's pid 1.
static void ctlab_init_stage(int argc, char **argv) {
	if (argc < 3 || strcmp(argv[1], "__ctlab_init") || strcmp(argv[2], "stage")) return;
	status_fd = 4;
	read_config(6);
	const char *spec = cfg_get("init");
	if (!spec) { errno = EINVAL; bail("stage config", "no init"); }
	char *rp = cfg_get("reparent");
	int reparent = rp && !strcmp(rp, "1");
	int want_pid = 0, want_time = 0;
	long long ms = 0, mns = 0, bs = 0, bns = 0;
	char word[16];
	int n = 0;
	const char *p = spec;
	while (sscanf(p, "%15s%n", word, &n) == 1) {
		p += n;
		if (!strcmp(word, "pid")) want_pid = 1;
		else if (!strcmp(word, "time")) {
			want_time = 1;
			if (sscanf(p, "%lld %lld %lld %lld%n", &ms, &mns, &bs, &bns, &n) != 4) { errno = EINVAL; bail("time offsets", spec); }
			p += n;
		}
	}
	// We were exec'd through /proc/self/fd/N: give the waiter (and, until
	// its own execve, the init) a name that says what it is.
	prctl(PR_SET_NAME, "ctlab-init", 0, 0, 0);
	// Everything named by a path is opened before a joined mount namespace
	// can hide it.
	// (The offsets file's opener, host root, may set them for a time
	// namespace a joined user namespace owns.)
	int cgfd = open_dir(cfg_get("cg_v2"));
	open_tasks(cfg_get("cg_join"));
	int offs = want_time ? open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC) : -1;
	if (want_time && offs < 0) bail("open", "/proc/self/timens_offsets");
	join_namespaces(cfg_get("join"));
	// With a joined user namespace the new kinds are made here, after it,
	// so that they belong to it (runc's order); else the clone made them.
	int more = unshare_flags(cfg_get("unshare"));
	if (more && unshare(more) < 0) bail("unshare", "namespaces");
	if (want_time) {
		if (unshare(CLONE_NEWTIME) < 0) bail("unshare", "time namespace");
		char buf[128];
		int len = snprintf(buf, sizeof buf, "monotonic %lld %lld\nboottime %lld %lld\n", ms, mns, bs, bns);
		if (write(offs, buf, len) != len) bail("write", "/proc/self/timens_offsets");
		close(offs);
	}
	if (want_pid && unshare(CLONE_NEWPID) < 0) bail("unshare", "pid namespace");
	child_pid = fork_into(cgfd);
	if (child_pid < 0) bail("fork", "container init");
	if (child_pid == 0) {
		// v1: the init moves itself into the container's cgroups (the
		// parent made their "tasks" files writable for it); the waiter
		// stays ctlab's.
		join_self();
		return; // on into the Go runtime: sandbox.MaybeInit
	}
	status_fd = -1; // the waiter's own failures are its exit status
	char msg[64];
	int len = snprintf(msg, sizeof msg, "{\"pid\":%d}\n", child_pid);
	if (write(4, msg, len) != len) _exit(127);
	// Hold no pipe ends: the parent learns that the init exec'd when the
	// status pipe reaches EOF.
	syscall(SYS_close_range, 3, ~0U, 0);
	if (reparent) _exit(0);
	signal(SIGTERM, forward);
	signal(SIGHUP, forward);
	signal(SIGINT, forward);
	signal(SIGQUIT, forward);
	wait_and_exit(127);
}

// ctlab_nsexec is the exec helper (argv "__nsexec -- CMD..."; its config on
// fd 3: "ns=KIND:FD,...", "cgroup_procs=FILE:FILE"): join the cgroup, then
// the namespaces, user first, and fork (joining a pid namespace only moves
// children). The child continues into the Go runtime (sandbox's init
// function, execChild), which applies the container's hardening, changes to
// the working directory and execs the command; this process waits and
// forwards signals.
static void nsexec_main(int argc, char **argv) {
	ctlab_init_stage(argc, argv);
	if (argc < 2 || strcmp(argv[1], "__nsexec")) return;

	// A process that has joined the container but not yet exec'd must not be
	// open to ptrace or /proc/<pid>/exe tricks from inside (CVE-2019-5736).
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	read_config(3);

	char *cg = cfg_get("cgroup_procs");
	if (cg && *cg) join_cgroups(cg);

	int joined_user = 0;
	char *spec = cfg_get("ns");
	for (char *save = NULL, *item = spec ? strtok_r(spec, ",", &save) : NULL; item; item = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(item, ':');
		if (!colon) { errno = EINVAL; bail("bad namespace spec", item); }
		*colon = 0;
		int fd = atoi(colon + 1), flag = ns_flag(item);
		if (flag < 0) { errno = EINVAL; bail("unknown namespace", item); }
		if (setns(fd, flag) < 0) bail("setns", item);
		close(fd);
		if (flag == CLONE_NEWUSER) joined_user = 1;
	}

	if (joined_user) become_root();

	child_pid = fork_into(-1);
	if (child_pid < 0) bail("fork", NULL);
	if (child_pid == 0) return; // on into the Go runtime: execChild
	// Terminal-generated signals reach the child directly (same process
	// group); forward the ones a supervisor sends to us.
	syscall(SYS_close_range, 3, ~0U, 0);
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGTERM, forward);
	signal(SIGHUP, forward);
	wait_and_exit(126);
}

#ifdef __GLIBC__
// glibc passes a constructor the program's arguments.
__attribute__((constructor)) static void ctlab_nsexec(int argc, char **argv, char **envp) {
	(void)envp;
	nsexec_main(argc, argv);
}
#else
// musl passes a constructor nothing: the first arguments (all the markers
// need) come from /proc/self/cmdline, the kernel's copy of argv.
__attribute__((constructor)) static void ctlab_nsexec(void) {
	static char buf[4096];
	static char *argv[8];
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0) return;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0) return;
	buf[n] = 0;
	int argc = 0;
	for (char *p = buf; p < buf + n && argc < 7; p += strlen(p) + 1) argv[argc++] = p;
	argv[argc] = NULL;
	nsexec_main(argc, argv);
}
#endif
