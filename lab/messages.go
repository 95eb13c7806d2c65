package lab

import (
	"fmt"
	"strings"
)

// messages is the lab's small table of localised sentences, keyed by id:
// preflight reasons and the words of check evidence. Each entry is a
// format string in English and in Chinese with the same verbs in the same
// order (TestMessagesComplete holds every key to that).
var messages = map[string][2]string{
	"pre.root":       {"needs root: run it with sudo", "需要 root：请用 sudo 运行"},
	"pre.kernel":     {"needs Linux %s or newer; this kernel is %s", "需要 Linux %s 或更新版本；本机内核是 %s"},
	"pre.ns":         {"needs the %s namespace, which /proc/self/ns does not offer%s", "需要 %s 命名空间，但 /proc/self/ns 里没有%s"},
	"pre.ns.time":    {" (time namespaces arrived in Linux 5.6)", "（time 命名空间从 Linux 5.6 起才有）"},
	"pre.cgroup":     {"needs cgroup %s; this host uses %s (mode %s)", "需要 cgroup %s；本机用的是 %s（模式 %s）"},
	"pre.controller": {"needs the %s cgroup controller; usable here: %s", "需要 %s cgroup 控制器；本机可用的有：%s"},
	"pre.overlay":    {"needs overlayfs (modprobe overlay)", "需要 overlayfs（modprobe overlay）"},
	"pre.userns":     {"needs user namespaces (sysctl user.max_user_namespaces is 0, or the kernel lacks them)", "需要 user 命名空间（sysctl user.max_user_namespaces 为 0，或内核不支持）"},
	"pre.systemd":    {"needs systemd as PID 1 on a pure cgroup v2 host (here: systemd PID 1 %v, cgroup mode %s)", "需要以 systemd 为 PID 1 的纯 cgroup v2 主机（本机：systemd 是 PID 1 %v，cgroup 模式 %s）"},
	"pre.binary":     {"needs the %s command on the host (e.g. apt-get install %s)", "宿主机上需要 %s 命令（例如 apt-get install %s）"},
	"pre.ctlab-oci":  {"needs ctlab's OCI runtime ctlab-oci beside ctlab or on PATH (make build writes bin/ctlab-oci)", "需要 ctlab 的 OCI 运行时 ctlab-oci，放在 ctlab 旁边或 PATH 中（make build 会生成 bin/ctlab-oci）"},

	// evidence: whole values
	"ev.running":    {"running", "运行中"},
	"ev.diff":       {"different inodes", "inode 不同"},
	"ev.same":       {"the same inode", "inode 相同"},
	"ev.unreadable": {"(unreadable)", "（无法读取）"},
	"ev.absent":     {"absent from the upperdir", "不在 upperdir 中"},
	"ev.whiteout":   {"whiteout (char 0/0)", "whiteout（字符设备 0/0）"},
	"ev.opaque":     {"directory, opaque", "目录，不透明"},
	"ev.notopaque":  {"directory, not opaque", "目录，非不透明"},
	"ev.frozen":     {"frozen (v2 cgroup.freeze 1, v1 freezer.state FROZEN)", "已冻结（v2 cgroup.freeze 1，v1 freezer.state FROZEN）"},
	// evidence: beginnings, followed by a value
	"evp.not":       {"not ", "不是 "},
	"evp.output":    {"output containing ", "输出包含 "},
	"evp.file":      {"a file containing ", "文件包含 "},
	"evp.mount":     {"a mount at ", "挂载于 "},
	"evp.nomount":   {"no mount at ", "没有挂载于 "},
	"evp.release":   {"the host's release ", "宿主机的内核版本 "},
	"evp.body":      {"body containing ", "响应体包含 "},
	"evp.address":   {"address ", "地址 "},
	"evp.owned":     {"owned by uid ", "属主 uid "},
	"evp.unchanged": {"unchanged: ", "未变："},
	"evp.noconn":    {"no connection: ", "无法连接："},
	"evp.badresp":   {"bad response: ", "响应错误："},
	"evp.uptime":    {"uptime inside - uptime on the host ", "容器内 uptime − 宿主机 uptime "},
	"evp.parent":    {"parent ", "父进程 "},
	// evidence: endings
	"evs.exited": {" has exited", " 已退出"},
}

// Msg returns message id in lang ("zh" or English), formatted with a.
func Msg(lang, id string, a ...any) string {
	m, ok := messages[id]
	if !ok {
		return id
	}
	f := m[0]
	if lang == "zh" {
		f = m[1]
	}
	if len(a) == 0 {
		return f
	}
	return fmt.Sprintf(f, a...)
}

// LocalizeEvidence renders an evidence string (Expected or Actual, which
// the checks write in English for the JSON stream and scripts) in lang
// for a reader: known values and their beginnings and endings are
// translated, what the kernel said (numbers, paths, output) stays as is.
func LocalizeEvidence(lang, s string) string {
	if lang != "zh" || s == "" {
		return s
	}
	for id, m := range messages {
		if strings.HasPrefix(id, "ev.") && s == m[0] {
			return m[1]
		}
	}
	out := s
	for {
		changed := false
		for id, m := range messages {
			if strings.HasPrefix(id, "evp.") && strings.HasPrefix(out, m[0]) {
				rest := LocalizeEvidence(lang, out[len(m[0]):])
				return m[1] + rest
			}
		}
		for id, m := range messages {
			if strings.HasPrefix(id, "evs.") && strings.HasSuffix(out, m[0]) {
				out, changed = strings.TrimSuffix(out, m[0])+m[1], true
			}
		}
		if !changed {
			return out
		}
	}
}
