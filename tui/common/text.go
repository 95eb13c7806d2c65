package common

// T returns the interface string id in lang ("zh" or "en"). Lesson text
// comes from the scenarios and content pages; this table is only the
// chrome around it. An unknown id is returned as is, so a missing
// translation shows up in the golden files rather than as a blank.
func T(lang, id string) string {
	if m, ok := strings[id]; ok {
		if lang == "zh" && m[1] != "" {
			return m[1]
		}
		return m[0]
	}
	return id
}

var strings = map[string][2]string{
	"key.run":      {"run step", "运行本步"},
	"key.next":     {"next", "下一步"},
	"key.prev":     {"previous", "上一步"},
	"key.shell":    {"shell", "容器 shell"},
	"key.hint":     {"hint", "提示"},
	"key.check":    {"check", "检查"},
	"key.reset":    {"reset step", "重置本步"},
	"key.resetall": {"reset scenario", "重置场景"},
	"key.lang":     {"中文/English", "中文/English"},
	"key.help":     {"help", "帮助"},
	"key.quit":     {"quit", "退出"},
	"key.back":     {"back", "返回"},
	"key.up":       {"up", "上"},
	"key.down":     {"down", "下"},
	"key.open":     {"open", "打开"},
	"key.pgup":     {"scroll up", "上翻"},
	"key.pgdown":   {"scroll down", "下翻"},
	"key.pane":     {"next pane (presenter)", "切换窗格（演示模式）"},

	"home.title":    {"ctlab — containers from the kernel up", "ctlab — 从内核看容器"},
	"home.empty":    {"no scenarios found", "没有找到场景"},
	"home.unmet":    {"cannot run here", "本机无法运行"},
	"home.ready":    {"ready", "可运行"},
	"home.done":     {"done", "已完成"},
	"home.minutes":  {"min", "分钟"},
	"home.opening":  {"opening", "正在打开"},
	"home.checking": {"checking host…", "正在检查本机…"},

	"chapter.intro":      {"What a container is", "容器是什么"},
	"chapter.namespaces": {"Namespaces", "命名空间"},
	"chapter.cgroups":    {"Cgroups", "控制组（cgroups）"},
	"chapter.overlay":    {"Overlay & images", "Overlay 与镜像"},
	"chapter.runtimes":   {"Runtimes", "容器运行时"},
	"chapter.homework":   {"Homework", "作业"},

	"step.demo":     {"demo", "演示"},
	"step.task":     {"task", "任务"},
	"step.passed":   {"passed", "已通过"},
	"step.failed":   {"failed", "未通过"},
	"step.running":  {"running…", "运行中…"},
	"step.waiting":  {"waiting for you", "等待你操作"},
	"step.ready":    {"press enter to run", "按 enter 运行"},
	"step.taskhint": {"press s for a shell in the container", "按 s 打开容器里的 shell"},
	"step.done":     {"scenario complete", "场景完成"},
	"step.hint":     {"hint", "提示"},
	"step.nohint":   {"no more hints", "没有更多提示了"},
	"step.cleanup":  {"removing the scenario's kernel objects…", "正在清理场景创建的内核对象…"},

	"pane.state":       {"kernel state", "内核状态"},
	"pane.lesson":      {"lesson", "课文"},
	"pane.log":         {"actions and checks", "动作与检查"},
	"pane.nocontainer": {"no container yet:\npress enter to run the step", "还没有容器：\n按 enter 运行本步"},
	"pane.same":        {"same", "相同"},
	"pane.diff":        {"different", "不同"},
	"pane.host":        {"host", "宿主机"},
	"pane.container":   {"container", "容器"},
	"pane.limit":       {"limit", "上限"},
	"pane.nolimit":     {"no limit", "无上限"},
	"pane.upper":       {"upper layer", "上层（upperdir）"},
	"pane.noupper":     {"upper layer is empty", "上层为空"},
	"pane.links":       {"links", "网络接口"},
	"pane.uidmap":      {"uid map", "uid 映射"},
	"pane.gidmap":      {"gid map", "gid 映射"},
	"pane.time":        {"time offsets", "时间偏移"},
	"pane.hostname":    {"hostname", "主机名"},
	"pane.domain":      {"domain name", "域名"},
	"pane.procs":       {"processes", "进程"},
	"pane.mounts":      {"mounts", "挂载"},
	"pane.ipc":         {"SysV IPC", "SysV IPC"},
	"pane.caps":        {"capabilities", "能力（capabilities）"},
	"pane.namespaces":  {"namespaces", "命名空间"},
	"pane.cgroup":      {"cgroup", "控制组"},
	"pane.overlay":     {"overlay", "overlay"},
	"pane.copyup":      {"copied up", "已复制上来"},
	"pane.whiteout":    {"whiteout", "白化（whiteout）"},
	"pane.opaque":      {"opaque", "不透明目录"},
	"pane.added":       {"added", "新增"},
	"pane.frozen":      {"frozen", "已冻结"},

	"resumed": {"resumed at step", "从这一步继续："},
	"shell.banner": {"── ctlab: a shell inside the lesson's container. `exit` (or ctrl+d) goes back to the lesson. ──",
		"── ctlab：这是课程容器里的 shell。输入 `exit`（或 ctrl+d）回到课程。──"},
	"shell.closed": {"shell closed — checking", "已退出 shell — 正在检查"},

	"log.want":  {"want", "期望"},
	"log.got":   {"got", "实际"},
	"log.empty": {"nothing run yet", "还没有运行任何动作"},

	"keep.note": {"ctlab: --keep: the lesson's containers are still there (ctlab ps, ctlab exec NAME -- sh); remove them with ctlab rm -f NAME, or open the lesson again (it starts clean)",
		"ctlab：--keep：课程的容器仍然保留（ctlab ps，ctlab exec 名字 -- sh）；用 ctlab rm -f 名字 删除，或重新打开这一课（会先清理干净）"},
	"err.notty": {"ctlab: the lessons need an interactive terminal (no TTY on stdin/stdout); use `ctlab scenario run --plain ID` instead",
		"ctlab：课程界面需要交互式终端（stdin/stdout 不是 TTY）；请改用 `ctlab scenario run --plain ID`"},
}
