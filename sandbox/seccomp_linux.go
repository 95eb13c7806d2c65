package sandbox

import (
	"runtime"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/ctlab/ctlab/sandbox/seccomp"
)

// The hardened container's filter is an allow-list equivalent to Docker's
// default profile (moby/profiles seccomp/default_linux.go) for a process
// that keeps KeptCapabilities: everything not listed fails with EPERM, and
// none of the groups Docker adds for CAP_SYS_ADMIN, CAP_SYS_PTRACE,
// CAP_SYS_MODULE, ... applies because the container has none of those
// capabilities. So keyctl/add_key/request_key, io_uring_*, bpf,
// perf_event_open, userfaultfd, mount and the new mount API (fsopen,
// fsconfig, fsmount, fspick, move_mount, open_tree, mount_setattr),
// unshare, setns, pivot_root, chroot, the module and kexec calls, swapon,
// reboot, open_by_handle_at, clock/time setting, quotactl, syslog, ... are
// all refused without being named. The filter is written as an OCI
// profile and compiled by sandbox/seccomp, the compiler of the OCI
// runtime's linux.seccomp, which adds the architecture and x32 checks.
//
// The compiler skips names the running architecture lacks, so the
// 32-bit-only names of Docker's list (chown32, _llseek, ...) simply drop out
// on amd64 and arm64; seccomp_linux_test.go checks each name exists on some
// architecture, which catches typos.
const seccompAllowed = `
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3
epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old
eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64
fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64
fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs
fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv
futex_wake futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid
getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority
getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid
getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr getxattrat
inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy
io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit ipc kill
landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link
linkat listen listmount listxattr listxattrat llistxattr _llseek lremovexattr lseek lsetxattr lstat
lstat64 madvise map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod
mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv
msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open openat
openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll
ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64
pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg
recvmmsg_time64 recvmsg remap_file_pages removexattr removexattrat rename renameat renameat2
restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn
rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity
sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send
sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32
setresuid setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt
set_thread_area set_tid_address setuid setuid32 setxattr setxattrat shmat shmctl shmdt shmget
shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice stat
stat64 statfs statfs64 statmount statx symlink symlinkat sync sync_file_range syncfs sysinfo tee
tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64
times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat uretprobe utime utimensat
utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
process_vm_readv process_vm_writev ptrace
`

// seccompArchAllowed are Docker's per-architecture additions.
var seccompArchAllowed = map[string]string{
	"amd64": "arch_prctl modify_ldt",
	"arm64": "arm_fadvise64_64 arm_sync_file_range breakpoint cacheflush set_tls",
}

// nsFlags are the clone flags that create namespaces. clone is allowed
// only with none of them (Docker's SCMP_CMP_MASKED_EQ rule); clone3 passes
// its flags in a struct seccomp cannot read, so it fails with ENOSYS and
// libc falls back to clone, whose flags the filter does see.
const nsFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// socketDomains are the address families Docker allows for socket(2): all
// but the removed ones and AF_ALG (kernel crypto) and AF_VSOCK (host/guest
// channel, not namespaced by default).
var socketDomains = []uint64{
	unix.AF_UNIX, unix.AF_INET, unix.AF_AX25, unix.AF_IPX, unix.AF_APPLETALK, unix.AF_NETROM,
	unix.AF_BRIDGE, unix.AF_ATMPVC, unix.AF_X25, unix.AF_INET6, unix.AF_ROSE, unix.AF_NETBEUI,
	unix.AF_SECURITY, unix.AF_KEY, unix.AF_NETLINK, unix.AF_PACKET, unix.AF_ASH, unix.AF_RDS,
	unix.AF_SNA, unix.AF_PPPOX, unix.AF_LLC, unix.AF_IB, unix.AF_MPLS, unix.AF_CAN, unix.AF_TIPC,
	unix.AF_BLUETOOTH, unix.AF_IUCV, unix.AF_RXRPC, unix.AF_PHONET, unix.AF_IEEE802154, unix.AF_NFC,
	unix.AF_KCM, unix.AF_QIPCRTR, unix.AF_SMC, unix.AF_XDP, unix.AF_MCTP,
}

// personalities Docker lets a process select: PER_LINUX, UNAME26,
// PER_LINUX32, UNAME26|PER_LINUX32, and 0xffffffff (query).
var personalities = []uint64{0x0, 0x0008, 0x20000, 0x20008, 0xffffffff}

// seccompProfile is the filter as data: one unconditional allow group, the
// argument-checked allows, and clone3 answered with ENOSYS. Anything else
// gets the default, EPERM, except syscalls numbered above every listed one:
// the compiler answers those with ENOSYS (runc's stub for a refusing
// default, so libc falls back from calls newer than the list), which
// refuses them all the same. A foreign architecture's call (i386 int 0x80,
// x32 numbers on x86_64) gets ENOSYS through seccompOptions.
func seccompProfile() *specs.LinuxSeccomp {
	allow := func(name string, args ...specs.LinuxSeccompArg) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow, Args: args}
	}
	eperm, enosys := uint(unix.EPERM), uint(unix.ENOSYS)
	names := strings.Fields(seccompAllowed + " " + seccompArchAllowed[runtime.GOARCH])
	rules := []specs.LinuxSyscall{
		{Names: names, Action: specs.ActAllow},
		allow("clone", specs.LinuxSeccompArg{Index: 0, Op: specs.OpMaskedEqual, Value: nsFlags, ValueTwo: 0}),
	}
	for _, d := range socketDomains {
		rules = append(rules, allow("socket", specs.LinuxSeccompArg{Index: 0, Op: specs.OpEqualTo, Value: d}))
	}
	for _, p := range personalities {
		rules = append(rules, allow("personality", specs.LinuxSeccompArg{Index: 0, Op: specs.OpEqualTo, Value: p}))
	}
	rules = append(rules, specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys})
	return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: &eperm, Syscalls: rules}
}

// seccompOptions: a foreign architecture fails with ENOSYS rather than
// runc's thread kill, so a program probing the x32 ABI sees "no such
// call" and carries on.
var seccompOptions = seccomp.Options{UnlistedArchErrno: uint(unix.ENOSYS)}

var (
	filterOnce sync.Once
	filter     *seccomp.Filter
	filterErr  error
)

// seccompFilter returns the compiled filter (built once per process: the
// init builds it right before it execs, exec will too). Every name is in
// some architecture's table (TestSeccompNames), so the compiler has
// nothing to warn about.
func seccompFilter() (*seccomp.Filter, error) {
	filterOnce.Do(func() {
		filter, filterErr = seccomp.Compile(seccompProfile(), seccompOptions, func(string) {})
	})
	return filter, filterErr
}

// InstallSeccomp applies the hardened containers' filter to the calling
// thread. It is the one entry point for every process that enters a
// hardened container (the init before its execve, and exec's helper), so
// start and exec run under the same filter.
//
// Preconditions: no_new_privs is set (or the thread has CAP_SYS_ADMIN);
// the goroutine is locked to the thread that will exec. The filter survives
// execve and binds every descendant.
func InstallSeccomp() error { return installSeccomp() }

func installSeccomp() error {
	f, err := seccompFilter()
	if err != nil {
		return err
	}
	return f.Load()
}
