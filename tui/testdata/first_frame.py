# Measures a real ctlab binary from exec to its first frame on a pty (80x24).
# Usage: python3 tui/testdata/first_frame.py PATH/TO/ctlab   (see tui/bench_test.go)
import os, pty, time, sys, select, struct, fcntl, termios, statistics
def once(args):
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"]="xterm-256color"; os.environ["XDG_CONFIG_HOME"]="/tmp/ctlab-first-frame"
        os.execv(args[0], args)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    t0=time.time(); buf=b""; first=None
    while True:
        r,_,_=select.select([fd],[],[],5)
        if not r: break
        try: d=os.read(fd, 65536)
        except OSError: break
        buf+=d
        if first is None and (b"containers from the kernel up" in buf or b"1/3" in buf):
            first=time.time()-t0
            os.write(fd, b"q")
    os.waitpid(pid,0)
    return first
for args in ([sys.argv[1] if len(sys.argv) > 1 else "bin/ctlab", "--lang", "en"],):
    ts=[once(args)*1000 for _ in range(10)]
    print(args, "first frame ms: median %.1f min %.1f max %.1f" % (statistics.median(ts), min(ts), max(ts)))
