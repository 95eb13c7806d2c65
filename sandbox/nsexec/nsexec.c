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
#include <linux/sched.h>

static void bail(const char *what, const char *arg);

// join_self writes "0" (= the caller) to each ':'-separated v1 "tasks"
// file in the variable. A thread moving itself skips the global
// cgroup_threadgroup_rwsem, and with it the RCU grace period (5-10 ms) that
// moving a pid waits for after an idle spell; a single-threaded process
// (we are, before the Go runtime) moves whole.
static void join_self(const char *var) {
	const char *v = getenv(var);
	if (!v || !*v) return;
	char *copy = strdup(v);
	for (char *save = NULL, *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
		int fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd < 0) bail("open", p);
		if (write(fd, "0", 1) != 1) bail("join cgroup", p);
		close(fd);
	}
	free(copy);
}

// fork_into forks. On cgroup v2 (_CTLAB_CG_V2 = the container cgroup's
// directory) clone3 with CLONE_INTO_CGROUP starts the child directly in the
// cgroup: no attach, so none of the RCU grace period (5-10 ms) that the
// first write of a pid to cgroup.procs after an idle spell waits for.
static pid_t fork_into(void) {
	const char *v2 = getenv("_CTLAB_CG_V2");
	if (!v2 || !*v2) return fork();
	int cgfd = open(v2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0) bail("open", v2);
	struct clone_args args;
	memset(&args, 0, sizeof args);
	args.flags = CLONE_INTO_CGROUP;
	args.exit_signal = SIGCHLD;
	args.cgroup = (uint64_t)cgfd;
	pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof args);
	if (pid != 0) close(cgfd);
	return pid;
}

void ctlab_nsexec_anchor(void) {}

static void bail(const char *what, const char *arg) {
	fprintf(stderr, "ctlab exec: %s %s: %s\n", what, arg ? arg : "", strerror(errno));
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

static pid_t child_pid;

static void forward(int sig) {
	if (child_pid > 0) kill(child_pid, sig);
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
// when it asks for a new pid and/or time namespace (_CTLAB_INIT="pid time
// MONO_S MONO_NS BOOT_S BOOT_NS"). Both kinds only apply to children of the
// process that unshares them, and a time namespace's offsets must be written
// before any process enters it; before Linux 6.2 an execve does not enter
// it either, and a Go runtime whose thread has a pending time namespace
// cannot start threads. So, still single-threaded: unshare, write the
// offsets, fork. The child continues into the Go init as pid 1 of the new
// pid namespace, inside the new time namespace. This process stays behind
// as the container's waiter ("shim"): it reports the child's host pid on fd
// 4, forwards signals, and exits with the child's status.
static void ctlab_init_stage(void) {
	const char *spec = getenv("_CTLAB_INIT");
	if (!spec) return;
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
	if (want_time) {
		if (unshare(CLONE_NEWTIME) < 0) bail("unshare", "time namespace");
		char buf[128];
		int len = snprintf(buf, sizeof buf, "monotonic %lld %lld\nboottime %lld %lld\n", ms, mns, bs, bns);
		int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, buf, len) != len) bail("write", "/proc/self/timens_offsets");
		close(fd);
	}
	if (want_pid && unshare(CLONE_NEWPID) < 0) bail("unshare", "pid namespace");
	child_pid = fork_into();
	if (child_pid < 0) bail("fork", "container init");
	if (child_pid == 0) {
		// v1: the init moves itself into the container's cgroups (the
		// parent made their "tasks" files writable for it); the waiter
		// stays ctlab's.
		join_self("_CTLAB_CG_JOIN");
		unsetenv("_CTLAB_INIT");
		unsetenv("_CTLAB_CG_V2");
		unsetenv("_CTLAB_CG_JOIN");
		return; // on into the Go runtime: sandbox.MaybeInit
	}
	char msg[64];
	int len = snprintf(msg, sizeof msg, "{\"pid\":%d}\n", child_pid);
	if (write(4, msg, len) != len) _exit(127);
	// Hold no pipe ends: the parent learns that the init exec'd when the
	// status pipe reaches EOF.
	syscall(SYS_close_range, 3, ~0U, 0);
	signal(SIGTERM, forward);
	signal(SIGHUP, forward);
	signal(SIGINT, forward);
	signal(SIGQUIT, forward);
	int status;
	while (waitpid(child_pid, &status, 0) < 0) {
		if (errno != EINTR) _exit(127);
	}
	if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
	if (WIFSIGNALED(status)) _exit(128 + WTERMSIG(status));
	_exit(1);
}

__attribute__((constructor)) static void ctlab_nsexec(int argc, char **argv, char **envp) {
	(void)envp;
	ctlab_init_stage();
	const char *spec_env = getenv("_CTLAB_NSEXEC");
	if (!spec_env) return;

	// A process that has joined the container but not yet exec'd must not be
	// open to ptrace or /proc/<pid>/exe tricks from inside (CVE-2019-5736).
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

	int cmd = -1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) { cmd = i + 1; break; }
	}
	if (cmd < 0 || cmd >= argc) {
		fprintf(stderr, "ctlab exec: no command given\n");
		_exit(125);
	}

	char *cg = getenv("_CTLAB_CGROUP_PROCS");
	if (cg && *cg) {
		char *copy = strdup(cg);
		join_cgroups(copy);
		free(copy);
	}

	int joined_user = 0;
	char *spec = strdup(spec_env);
	for (char *save = NULL, *item = strtok_r(spec, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(item, ':');
		if (!colon) { errno = EINVAL; bail("bad namespace spec", item); }
		*colon = 0;
		int fd = atoi(colon + 1), flag = ns_flag(item);
		if (flag < 0) { errno = EINVAL; bail("unknown namespace", item); }
		if (setns(fd, flag) < 0) bail("setns", item);
		close(fd);
		if (flag == CLONE_NEWUSER) joined_user = 1;
	}
	free(spec);

	if (joined_user) {
		// Become root of the joined user namespace (it maps to an
		// unprivileged uid on the host). setgroups may be denied by
		// /proc/<pid>/setgroups; that is harmless here.
		setgroups(0, NULL);
		if (setresgid(0, 0, 0) < 0) bail("setresgid", "0");
		if (setresuid(0, 0, 0) < 0) bail("setresuid", "0");
	}
	const char *cwd = getenv("_CTLAB_CWD");
	if (chdir(cwd && *cwd ? cwd : "/") < 0) bail("chdir", cwd);

	unsetenv("_CTLAB_NSEXEC");
	unsetenv("_CTLAB_CGROUP_PROCS");
	unsetenv("_CTLAB_CWD");

	// Joining a pid namespace only moves our future children into it.
	child_pid = fork_into();
	if (child_pid < 0) bail("fork", NULL);
	if (child_pid == 0) {
		// Nothing of ctlab's may leak into the container (CVE-2024-21626).
		syscall(SYS_close_range, 3, ~0U, 0);
		unsetenv("_CTLAB_CG_V2");
		execvp(argv[cmd], &argv[cmd]);
		fprintf(stderr, "ctlab exec: %s: %s\n", argv[cmd], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	// Terminal-generated signals reach the child directly (same process
	// group); forward the ones a supervisor sends to us.
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGTERM, forward);
	signal(SIGHUP, forward);
	int status;
	while (waitpid(child_pid, &status, 0) < 0) {
		if (errno != EINTR) bail("waitpid", NULL);
	}
	if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
	if (WIFSIGNALED(status)) _exit(128 + WTERMSIG(status));
	_exit(1);
}
