package documents

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rpacloud/rpacloud/core/lifecycle"
	"github.com/rpacloud/rpacloud/core/schedule"
)

// Build makes one document of a process in one language.
func Build(k Kind, d Data, lang Language) (*Doc, error) {
	b := builder{d: d, lang: lang, loc: time.UTC}
	if d.Timezone != "" {
		loc, err := time.LoadLocation(d.Timezone)
		if err != nil {
			return nil, fmt.Errorf("documents: time zone %q: %w", d.Timezone, err)
		}
		b.loc = loc
	}
	var doc *Doc
	switch k {
	case Record:
		doc = b.record()
	case Acceptance:
		doc = b.acceptance()
	case Schedule:
		doc = b.schedule()
	case Manual:
		doc = b.manual()
	default:
		return nil, fmt.Errorf("documents: unknown kind %q", k)
	}
	doc.Kind, doc.Language = k, lang
	doc.Footer = fmt.Sprintf("%s · %s · %s %s", d.Organisation, doc.Title, b.t("generated", "生成于"), b.when(d.Generated))
	return doc, nil
}

type builder struct {
	d    Data
	lang Language
	loc  *time.Location
}

// t picks the label of the document's language.
func (b builder) t(en, zh string) string {
	if b.lang == Chinese {
		return zh
	}
	return en
}

func (b builder) when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(b.loc).Format("2006-01-02 15:04 MST")
}

func (b builder) dur(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	h, m := int(d.Hours()), int(d.Minutes())%60
	switch {
	case h == 0:
		return fmt.Sprintf(b.t("%d min", "%d 分钟"), m)
	case m == 0:
		return fmt.Sprintf(b.t("%d h", "%d 小时"), h)
	}
	return fmt.Sprintf(b.t("%d h %d min", "%d 小时 %d 分钟"), h, m)
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "—"
	}
	return s
}

func list(xs []string) string {
	if len(xs) == 0 {
		return "—"
	}
	return strings.Join(xs, ", ")
}

func pct(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }

func (b builder) stageName(s lifecycle.Stage) string {
	switch s {
	case lifecycle.S1Acquire:
		return b.t("S1 acquiring a VM", "S1 获取虚拟机")
	case lifecycle.S2Prepare:
		return b.t("S2 preparing the VM", "S2 准备虚拟机（软件、配置文件、内网访问）")
	case lifecycle.S3Develop:
		return b.t("S3 developing or migrating", "S3 开发或迁移流程")
	case lifecycle.S4Test:
		return b.t("S4 developer test", "S4 开发测试")
	case lifecycle.S5Trial:
		return b.t("S5 business trial run", "S5 业务试运行")
	case lifecycle.Accepted:
		return b.t("accepted", "已验收")
	}
	return string(s)
}

func (b builder) actionName(a lifecycle.Action) string {
	switch a {
	case lifecycle.AcquireVM:
		return b.t("VM acquired", "已获取虚拟机")
	case lifecycle.PrepareVM:
		return b.t("VM prepared", "虚拟机准备完成")
	case lifecycle.Develop:
		return b.t("developed / migrated", "开发/迁移完成")
	case lifecycle.PassTest:
		return b.t("test passed", "测试通过")
	case lifecycle.FailTest:
		return b.t("test failed", "测试未通过")
	case lifecycle.PassTrial:
		return b.t("trial passed, accepted", "试运行通过，验收")
	case lifecycle.FailTrial:
		return b.t("trial failed", "试运行出现故障")
	case lifecycle.Maintenance:
		return b.t("reopened for maintenance", "重新开放维护修改")
	}
	return string(a)
}

func (b builder) runsThrough() string {
	p := b.d.Process
	switch p.Kind {
	case "vendor":
		name := map[string]string{"uipath": "UiPath", "aa": "Automation Anywhere"}[p.Vendor]
		if name == "" {
			name = p.Runner
		}
		return fmt.Sprintf(b.t("%s robot (vendor connection %s)", "%s 机器人（厂商连接 %s）"), name, p.Runner)
	case "crawler":
		if p.Runner == "browser" {
			return b.t("browser crawler (headless Chromium)", "浏览器爬虫（无头 Chromium）")
		}
		return b.t("HTTP crawler", "HTTP 爬虫")
	}
	return fmt.Sprintf(b.t("built-in runner %s", "内置执行器 %s"), p.Runner)
}

func (b builder) processFields() []Field {
	p, d := b.d.Process, b.d
	return []Field{
		{b.t("Process", "流程名称"), p.Name},
		{b.t("Owning department", "所属部门"), orDash(p.Owner)},
		{b.t("Company", "所属公司"), orDash(p.OwnerParent)},
		{b.t("Runs as", "运行方式"), b.runsThrough()},
		{b.t("Package / flow", "流程包/脚本"), orDash(p.Package)},
		{b.t("Pool", "机器人池"), d.Pool.Name},
		{b.t("Current lifecycle stage", "当前阶段"), b.stageName(d.Stage)},
	}
}

func (b builder) record() *Doc {
	d, p := b.d, b.d.Process
	doc := &Doc{
		Title:    b.t("Process information record sheet", "流程信息记录表"),
		Subtitle: p.Name,
	}
	fields := append(b.processFields(),
		Field{b.t("Provider", "虚拟机来源"), d.Pool.Provider},
		Field{b.t("Robots in the pool", "机器人数量"), fmt.Sprintf(b.t("%d permanent, up to %d", "常驻 %d 台，最多 %d 台"), d.Pool.Min, d.Pool.Max)},
		Field{b.t("Time limit per attempt", "单次运行时限"), b.dur(p.MaxDuration)},
		Field{b.t("Automatic retries", "自动重试次数"), fmt.Sprint(p.Retries)},
		Field{b.t("Credentials (names only)", "所需凭证（仅名称）"), list(p.Credentials)},
	)
	doc.Sections = append(doc.Sections, Section{Sheet: b.t("Record", "记录表"), Heading: b.t("Process", "流程信息"), Fields: fields})
	doc.Sections = append(doc.Sections, Section{
		Heading: b.t("VM preparation (S2)", "虚拟机准备（S2）"),
		Fields: []Field{
			{b.t("Software", "安装软件"), list(d.Pool.Software)},
			{b.t("Configuration files", "配置文件"), list(d.Pool.ConfigFiles)},
			{b.t("Network profile", "内网访问设置"), orDash(d.Pool.Network)},
			{b.t("Proxy", "代理"), orDash(d.Pool.Proxy)},
			{b.t("DNS servers", "DNS 服务器"), list(d.Pool.DNS)},
			{b.t("Allowed hosts", "允许访问"), list(d.Pool.Allow)},
			{b.t("Denied hosts", "禁止访问"), list(d.Pool.Deny)},
		},
	})
	doc.Sections = append(doc.Sections, Section{Heading: b.t("VMs and remote access", "虚拟机与远程连接"), Table: b.vmTable()})
	doc.Sections = append(doc.Sections, Section{Heading: b.t("Booked time slots", "排期时段"), Table: b.bookingTable(b.ownBookings(), false)})
	doc.Sections = append(doc.Sections, Section{
		Heading: b.t("Runs on the platform", "平台运行记录"),
		Fields: []Field{
			{b.t("Batches", "批次数"), fmt.Sprint(p.Batches)},
			{b.t("Tasks", "任务数"), fmt.Sprint(p.Tasks)},
			{b.t("Succeeded", "成功"), fmt.Sprint(p.Succeeded)},
			{b.t("Failed", "失败"), fmt.Sprint(p.Failed)},
			{b.t("Cancelled", "已取消"), fmt.Sprint(p.Cancelled)},
			{b.t("Last run", "最近运行"), b.when(p.LastRun)},
		},
	})
	return doc
}

func (b builder) vmTable() *Table {
	t := &Table{
		Head:   []string{b.t("VM", "虚拟机"), b.t("State", "状态"), b.t("Protocol", "协议"), b.t("Host", "主机"), b.t("Port", "端口"), b.t("User", "用户名")},
		Widths: []float64{22, 12, 10, 24, 8, 16},
	}
	for _, v := range b.d.VMs {
		port := "—"
		if v.Port > 0 {
			port = fmt.Sprint(v.Port)
		}
		t.Rows = append(t.Rows, []string{v.Name, v.State, orDash(strings.ToUpper(v.Protocol)), orDash(v.Host), port, orDash(v.Username)})
	}
	if len(t.Rows) == 0 {
		t.Rows = [][]string{{b.t("no VM yet", "尚无虚拟机"), "", "", "", "", ""}}
	}
	return t
}

func (b builder) ownBookings() []schedule.Booking {
	var out []schedule.Booking
	for _, bk := range b.d.Schedule.Bookings {
		if bk.Process == b.d.Process.Name {
			out = append(out, bk)
		}
	}
	return out
}

func (b builder) dept(name string) string {
	if dn := b.d.Schedule.Departments[name]; dn != "" {
		return dn
	}
	return orDash(name)
}

func (b builder) bookingTable(bs []schedule.Booking, withDept bool) *Table {
	t := &Table{}
	if withDept {
		t.Head = append(t.Head, b.t("Department", "部门"), b.t("Process", "流程"))
		t.Widths = append(t.Widths, 22, 18)
	}
	t.Head = append(t.Head, b.t("Slot", "时段名称"), b.t("When", "运行时间"), b.t("Length", "时长"), b.t("Time zone", "时区"), b.t("Pool", "机器人池"), b.t("Robot", "机器人"))
	t.Widths = append(t.Widths, 18, 34, 12, 16, 14, 14)
	bad := map[string]bool{}
	for _, c := range b.d.Schedule.Clashes {
		for _, id := range c.Bookings {
			bad[id] = true
		}
	}
	for _, bk := range bs {
		var row []string
		if withDept {
			row = append(row, b.dept(bk.Department), bk.Process)
		}
		_, slot, _ := strings.Cut(bk.ID, "/")
		if slot == "" {
			slot = bk.ID
		}
		robot := bk.Robot
		if robot == "" {
			robot = fmt.Sprintf(b.t("any (%d)", "任意（%d 台）"), max(bk.Robots, 1))
		}
		row = append(row, slot, b.cronText(bk.Cron, bk.Duration), b.dur(bk.Duration), orDash(bk.Timezone), bk.Pool, robot)
		t.Rows = append(t.Rows, row)
		if bad[bk.ID] {
			t.Marks = append(t.Marks, "bad")
		} else {
			t.Marks = append(t.Marks, "")
		}
	}
	if len(t.Rows) == 0 {
		row := make([]string, len(t.Head))
		row[0] = b.t("no slot booked", "尚未排期")
		t.Rows = [][]string{row}
	}
	return t
}

// cronText reads the common shapes of a cron expression aloud; anything
// else is shown as written, which is still exact.
func (b builder) cronText(expr string, d time.Duration) string {
	f := strings.Fields(expr)
	if len(f) != 5 {
		return expr
	}
	var hh, mm int
	if _, err := fmt.Sscanf(f[1]+" "+f[0], "%d %d", &hh, &mm); err != nil || strings.ContainsAny(f[0]+f[1], ",-/*") {
		return "cron " + expr
	}
	start := time.Date(2000, 1, 1, hh, mm, 0, 0, time.UTC)
	span := start.Format("15:04") + "–" + start.Add(d).Format("15:04")
	var parts []string
	if f[2] != "*" {
		parts = append(parts, fmt.Sprintf(b.t("days %s of the month", "每月 %s 日"), f[2]))
	}
	if f[3] != "*" {
		parts = append(parts, fmt.Sprintf(b.t("months %s", "%s 月"), f[3]))
	}
	switch strings.ToLower(f[4]) {
	case "*":
		if f[2] == "*" {
			parts = append(parts, b.t("every day", "每天"))
		}
	case "1-5", "mon-fri":
		parts = append(parts, b.t("Monday to Friday", "周一至周五"))
	case "0,6", "6,0", "sat,sun", "sun,sat", "6-7":
		parts = append(parts, b.t("weekends", "周末"))
	default:
		parts = append(parts, fmt.Sprintf(b.t("week days %s", "星期 %s"), f[4]))
	}
	sep := b.t(", ", "，")
	if f[2] != "*" && f[4] != "*" && !strings.HasPrefix(f[2], "*/") && !strings.HasPrefix(f[4], "*/") {
		// Classic cron: with both day fields restricted, a day matches
		// if either does.
		sep = b.t(" or ", " 或 ")
	}
	return strings.Join(parts, sep) + " " + span
}

func (b builder) acceptance() *Doc {
	d := b.d
	doc := &Doc{
		Title:     b.t("Process acceptance sheet", "流程验收表"),
		Subtitle:  d.Process.Name,
		Landscape: true,
	}
	result := b.t("not accepted yet", "尚未验收")
	if d.Stage == lifecycle.Accepted {
		result = b.t("ACCEPTED", "验收通过")
	}
	fields := append(b.processFields(), Field{b.t("Result", "验收结论"), result})
	doc.Sections = append(doc.Sections, Section{Sheet: b.t("Acceptance", "验收表"), Heading: b.t("Process", "流程信息"), Fields: fields})

	hist := &Table{
		Head:   []string{"#", b.t("Step", "步骤"), b.t("Outcome", "结果"), b.t("Now at", "进入阶段"), b.t("By", "操作人"), b.t("When", "时间"), b.t("Evidence", "证据")},
		Widths: []float64{4, 6, 16, 20, 16, 14, 60},
	}
	for _, h := range d.History {
		mark := "good"
		if h.Action == lifecycle.FailTest || h.Action == lifecycle.FailTrial || h.Action == lifecycle.Maintenance {
			mark = "warn"
		}
		hist.Rows = append(hist.Rows, []string{fmt.Sprint(h.Seq), orDash(h.From.Step()), b.actionName(h.Action), b.stageName(h.To), h.Evidence.Actor, b.when(h.Evidence.At), b.evidenceText(h.Evidence)})
		hist.Marks = append(hist.Marks, mark)
	}
	if len(hist.Rows) == 0 {
		hist.Rows = [][]string{{"", "", b.t("no step recorded yet", "尚无记录"), "", "", "", ""}}
	}
	doc.Sections = append(doc.Sections, Section{Heading: b.t("Lifecycle S1–S5 with evidence", "S1–S5 全过程及证据"), Table: hist})

	check := &Table{
		Head:   []string{b.t("Gate", "关口"), b.t("Checklist item", "检查项"), b.t("Done", "完成"), b.t("By", "确认人")},
		Widths: []float64{24, 40, 8, 16},
	}
	for _, a := range []lifecycle.Action{lifecycle.PrepareVM, lifecycle.Develop, lifecycle.PassTrial} {
		done, by := b.lastChecklist(a)
		for _, item := range lifecycle.RequiredItems(a, d.Require) {
			ok, mark := "✗", "bad"
			if done[item] {
				ok, mark = "✓", "good"
			}
			check.Rows = append(check.Rows, []string{b.actionName(a), b.itemText(item), ok, orDash(by)})
			check.Marks = append(check.Marks, mark)
		}
	}
	doc.Sections = append(doc.Sections, Section{Heading: b.t("Checklist", "检查清单"), Table: check})

	runs := &Table{
		Head:   []string{b.t("Batch", "批次"), b.t("Purpose", "用途"), b.t("Tasks", "任务数"), b.t("Succeeded", "成功"), b.t("Failed", "失败"), b.t("Finished", "结束时间"), b.t("Result", "结论")},
		Widths: []float64{8, 16, 8, 10, 8, 20, 14},
	}
	for _, h := range d.History {
		for _, r := range h.Evidence.Runs {
			res, mark := b.t("passed", "通过"), "good"
			if !r.Clean() {
				res, mark = b.t("failed", "未通过"), "bad"
			}
			purpose := b.t("developer test", "开发测试")
			if r.Purpose == lifecycle.TrialRun {
				purpose = b.t("business trial", "业务试运行")
			}
			runs.Rows = append(runs.Rows, []string{fmt.Sprint(r.BatchID), purpose, fmt.Sprint(r.Total), fmt.Sprint(r.Succeeded), fmt.Sprint(r.Failed), b.when(r.EndedAt), res})
			runs.Marks = append(runs.Marks, mark)
		}
	}
	if len(runs.Rows) == 0 {
		runs.Rows = [][]string{{"", b.t("no run linked yet", "尚未关联运行"), "", "", "", "", ""}}
	}
	doc.Sections = append(doc.Sections, Section{Heading: b.t("Test and trial runs on the platform", "平台上的测试与试运行"), Table: runs})

	acc := &Table{
		Head:   []string{b.t("Who", "人员"), b.t("VM", "虚拟机"), b.t("Protocol", "协议"), b.t("For step", "阶段"), b.t("When", "时间")},
		Widths: []float64{18, 22, 10, 26, 20},
	}
	for _, a := range d.Access {
		acc.Rows = append(acc.Rows, []string{a.User, a.VM, strings.ToUpper(a.Protocol), b.stageName(a.Stage), b.when(a.At)})
	}
	if len(acc.Rows) == 0 {
		acc.Rows = [][]string{{b.t("nobody connected yet", "尚无远程连接记录"), "", "", "", ""}}
	}
	doc.Sections = append(doc.Sections, Section{Heading: b.t("Remote access log", "远程连接记录"), Table: acc})

	sign := Section{Heading: b.t("Sign-off", "签字确认")}
	if so := b.signOff(); so != nil {
		sign.Fields = []Field{
			{b.t("Accepted by", "验收人"), so.Name},
			{b.t("Department", "部门"), so.Department},
			{b.t("Comment", "意见"), orDash(so.Comment)},
		}
	}
	sign.SignHere = []string{b.t("Business user", "业务人员"), b.t("Head of department", "部门负责人"), b.t("Developer", "开发人员"), b.t("Date", "日期")}
	doc.Sections = append(doc.Sections, sign)
	return doc
}

func (b builder) signOff() *lifecycle.SignOff {
	for i := len(b.d.History) - 1; i >= 0; i-- {
		if b.d.History[i].Action == lifecycle.PassTrial {
			return b.d.History[i].Evidence.SignOff
		}
	}
	return nil
}

func (b builder) lastChecklist(a lifecycle.Action) (map[string]bool, string) {
	for i := len(b.d.History) - 1; i >= 0; i-- {
		if b.d.History[i].Action == a {
			return b.d.History[i].Evidence.Checklist, b.d.History[i].Evidence.Actor
		}
	}
	return nil, ""
}

func (b builder) itemText(item string) string {
	switch {
	case strings.HasPrefix(item, lifecycle.ItemSoftwarePrefix):
		return b.t("software installed: ", "已安装软件：") + strings.TrimPrefix(item, lifecycle.ItemSoftwarePrefix)
	case strings.HasPrefix(item, lifecycle.ItemFilePrefix):
		return b.t("configuration file in place: ", "配置文件已就位：") + strings.TrimPrefix(item, lifecycle.ItemFilePrefix)
	case strings.HasPrefix(item, lifecycle.ItemCredsPrefix):
		return b.t("credential onboarded into Vault: ", "凭证已存入凭证管理系统：") + strings.TrimPrefix(item, lifecycle.ItemCredsPrefix)
	case item == lifecycle.ItemNetwork:
		return b.t("intranet access (network profile) applied", "内网访问设置已配置")
	case item == lifecycle.ItemPackage:
		return b.t("process package deployed on the VM", "流程包已部署到虚拟机")
	case item == lifecycle.ItemManualHanded:
		return b.t("manual, schedule and acceptance sheet handed to the business", "操作手册、排期表、验收文档已交付业务人员")
	}
	return item
}

func (b builder) evidenceText(ev lifecycle.Evidence) string {
	var parts []string
	if n := len(ev.RunningVMs); n > 0 {
		parts = append(parts, b.t("VMs: ", "虚拟机：")+strings.Join(ev.RunningVMs, ", "))
	}
	if len(ev.Endpoints) > 0 {
		parts = append(parts, b.t("endpoints: ", "连接地址：")+strings.Join(ev.Endpoints, ", "))
	}
	if n := len(ev.Checklist); n > 0 {
		done := 0
		for _, v := range ev.Checklist {
			if v {
				done++
			}
		}
		parts = append(parts, fmt.Sprintf(b.t("checklist %d/%d", "检查项 %d/%d"), done, n))
	}
	for _, r := range ev.Runs {
		parts = append(parts, fmt.Sprintf(b.t("batch %d: %d/%d succeeded", "批次 %d：%d/%d 成功"), r.BatchID, r.Succeeded, r.Total))
	}
	if ev.Fault != nil {
		parts = append(parts, fmt.Sprintf(b.t("fault (%s): %s", "故障（%s）：%s"), b.faultName(ev.Fault.Category), ev.Fault.Description))
	}
	if ev.SignOff != nil {
		parts = append(parts, fmt.Sprintf(b.t("signed off by %s, %s", "%s（%s）签字验收"), ev.SignOff.Name, ev.SignOff.Department))
	}
	if ev.Note != "" {
		parts = append(parts, ev.Note)
	}
	return strings.Join(parts, b.t("; ", "；"))
}

func (b builder) faultName(c lifecycle.FaultCategory) string {
	switch c {
	case lifecycle.FaultProcess:
		return b.t("process", "流程")
	case lifecycle.FaultSystem:
		return b.t("system", "系统")
	case lifecycle.FaultNetwork:
		return b.t("network", "网络")
	case lifecycle.FaultData:
		return b.t("data", "数据")
	}
	return b.t("other", "其他")
}

var weekdays = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}

func (b builder) dayName(w time.Weekday) string {
	if b.lang == Chinese {
		return []string{"周日", "周一", "周二", "周三", "周四", "周五", "周六"}[w]
	}
	return w.String()[:3]
}

func (b builder) schedule() *Doc {
	d, s := b.d, b.d.Schedule
	doc := &Doc{
		Title:     b.t("Run schedule", "流程运行排期表"),
		Subtitle:  fmt.Sprintf(b.t("%s · pool %s · %s to %s", "%s · 机器人池 %s · %s 至 %s"), d.Process.Name, d.Pool.Name, s.From.In(b.loc).Format("2006-01-02"), s.To.In(b.loc).Add(-time.Second).Format("2006-01-02")),
		Landscape: true,
	}
	bs := append([]schedule.Booking(nil), s.Bookings...)
	sort.SliceStable(bs, func(i, j int) bool {
		di, dj := b.dept(bs[i].Department), b.dept(bs[j].Department)
		if di != dj {
			return di < dj
		}
		return bs[i].ID < bs[j].ID
	})
	doc.Sections = append(doc.Sections, Section{
		Sheet:   b.t("By department", "按部门"),
		Heading: b.t("Booked slots by department", "各部门排期"),
		Text: []string{b.t(
			"Departments enter the slots their processes run in; the platform keeps them apart. Rows in red clash with another booking.",
			"各部门填写流程运行时段，平台检查冲突；红色行与其他排期冲突，请调整。")},
		Table: b.bookingTable(bs, true),
	})
	if len(s.Triggers) > 0 {
		doc.Sections = append(doc.Sections, Section{
			Sheet:   b.t("Triggers", "自动触发"),
			Heading: b.t("Triggers: runs the platform starts itself", "自动触发：平台按计划自动启动的运行"),
			Text: []string{b.t(
				"Each trigger starts a batch at the times shown; a trigger outside its department's booked slot is flagged when the configuration is validated.",
				"每个触发器在下列时间自动启动一批任务；不在本部门预约时段内的触发器在配置校验时给出警告。")},
			Table: b.triggerTable(s.Triggers),
		})
	}
	for _, p := range s.Pools {
		doc.Sections = append(doc.Sections, Section{
			Sheet:   fmt.Sprintf(b.t("Pool %s", "池 %s"), p.Name),
			Heading: fmt.Sprintf(b.t("Pool %s: robots booked per hour, week of %s (max %d; red: over max or one robot booked twice)", "机器人池 %s：每小时占用机器人数，%s 当周（上限 %d 台；红色：超过上限或同一机器人重复占用）"), p.Name, b.weekStart().Format("2006-01-02"), p.Max),
			Table:   b.weekGrid(p),
		})
	}
	cl := &Table{
		Head:   []string{b.t("Clash", "冲突类型"), b.t("Pool", "机器人池"), b.t("Robot", "机器人"), b.t("Bookings", "冲突排期"), b.t("Times", "次数"), b.t("First", "首次"), b.t("Needed / max", "需要/上限")},
		Widths: []float64{22, 14, 12, 40, 8, 20, 12},
	}
	for _, c := range s.Clashes {
		kind := map[schedule.ClashKind]string{
			schedule.RobotClash:    b.t("same robot twice", "同一机器人重复占用"),
			schedule.CapacityClash: b.t("more than the pool's max", "超过机器人池上限"),
			schedule.UnknownPool:   b.t("unknown pool", "机器人池不存在"),
		}[c.Kind]
		need := "—"
		if c.Kind == schedule.CapacityClash {
			need = fmt.Sprintf("%d / %d", c.Needed, c.Max)
		}
		cl.Rows = append(cl.Rows, []string{kind, c.Pool, orDash(c.Robot), strings.Join(c.Bookings, ", "), fmt.Sprint(c.Count), b.when(c.First), need})
		cl.Marks = append(cl.Marks, "bad")
	}
	if len(cl.Rows) == 0 {
		cl.Rows = [][]string{{b.t("no clash", "无冲突"), "", "", "", "", "", ""}}
		cl.Marks = []string{"good"}
	}
	doc.Sections = append(doc.Sections, Section{Sheet: b.t("Clashes", "冲突"), Heading: b.t("Clashes", "冲突检查"), Table: cl})

	ut := &Table{
		Head:   []string{b.t("Pool", "机器人池"), b.t("Robot", "机器人"), b.t("Booked", "排期占用率"), b.t("Measured", "实测占用率"), b.t("Reading", "结论")},
		Widths: []float64{16, 22, 14, 14, 44},
	}
	for _, u := range s.Utilisation {
		robot := u.Robot
		if robot == "" {
			robot = b.t("(whole pool)", "（全池）")
		}
		var reading, mark string
		switch u.Verdict() {
		case "saturated":
			reading, mark = b.t("saturated: add a robot or move a slot", "饱和：增加机器人或调整时段"), "bad"
		case "idle":
			reading, mark = b.t("idle: its licence can go", "空闲：可释放许可证"), "warn"
			switch {
			case u.Robot == "":
				reading = b.t("mostly idle: min or max can be lowered", "整体空闲：可下调 min 或 max")
			case !u.Licensed:
				reading = b.t("idle: can be released", "空闲：可释放")
			}
		default:
			reading, mark = b.t("in use", "正常使用"), "good"
		}
		ut.Rows = append(ut.Rows, []string{u.Pool, robot, pct(u.Booked), pct(u.Measured), reading})
		ut.Marks = append(ut.Marks, mark)
	}
	if len(ut.Rows) == 0 {
		ut.Rows = [][]string{{b.t("no robot yet", "尚无机器人"), "", "", "", ""}}
	}
	doc.Sections = append(doc.Sections, Section{
		Sheet:   b.t("Saturation", "饱和度"),
		Heading: fmt.Sprintf(b.t("Saturation: booked and measured utilisation (%s to %s)", "饱和度：排期与实测占用率（%s 至 %s）"), s.From.In(b.loc).Format("2006-01-02"), s.To.In(b.loc).Add(-time.Second).Format("2006-01-02")),
		Text: []string{fmt.Sprintf(b.t(
			"Booked: share of the window reserved in this schedule. Measured: share of the window the robot was actually running tasks. %s or more is saturated; under %s the robot, and its vendor licence, can go.",
			"排期占用率：本表中预约时间占统计期的比例。实测占用率：机器人实际执行任务的时间比例。达到 %s 为饱和；低于 %s 的机器人及其厂商许可证可以释放。"), pct(Saturated), pct(Idle))},
		Table: ut,
	})
	return doc
}

// maxTriggerRunsShown bounds the runs one row lists; the count says how
// many the window holds.
const maxTriggerRunsShown = 5

func (b builder) triggerTable(ts []TriggerRuns) *Table {
	t := &Table{
		Head: []string{b.t("Trigger", "触发器"), b.t("Department", "部门"), b.t("Process", "流程"), b.t("When", "运行时间"),
			b.t("Calendar", "日历"), b.t("Slot", "时段名称"), b.t("Runs", "次数"), b.t("Next runs", "运行时刻")},
		Widths: []float64{16, 16, 16, 26, 16, 14, 8, 44},
	}
	for _, tr := range ts {
		cal := orDash(tr.Calendar)
		if tr.Calendar != "" && tr.Days != "" {
			cal += " (" + map[string]string{"working": b.t("working days", "工作日"), "non_working": b.t("days off", "非工作日")}[tr.Days] + ")"
		}
		var next []string
		for i, r := range tr.Runs {
			if i == maxTriggerRunsShown {
				next = append(next, "…")
				break
			}
			next = append(next, b.when(r))
		}
		count := fmt.Sprint(len(tr.Runs))
		if tr.More {
			count += "+"
		}
		if tr.Other {
			// Another department's trigger: when the pool is busy, not
			// what runs or for whom.
			t.Rows = append(t.Rows, []string{b.t("(another department's run)", "（其他部门的运行）"), "—", "—", "—", "—", "—", count, orDash(strings.Join(next, ", "))})
			t.Marks = append(t.Marks, "")
			continue
		}
		t.Rows = append(t.Rows, []string{tr.Name, b.dept(tr.Department), tr.Process, tr.Cron + " " + tr.Timezone, cal, orDash(tr.Slot), count, orDash(strings.Join(next, ", "))})
		mark := ""
		if tr.Slot == "" {
			mark = "warn"
		}
		t.Marks = append(t.Marks, mark)
	}
	return t
}

// weekStart is the Monday of the schedule window's first week, in the
// display zone.
func (b builder) weekStart() time.Time {
	t := b.d.Schedule.From.In(b.loc)
	t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, b.loc)
	for t.Weekday() != time.Monday {
		t = t.AddDate(0, 0, -1)
	}
	return t
}

// weekGrid is the pool's week as hours × days: each cell the robots booked
// in that hour (the most at any moment of it) and which processes, marked
// when more than the pool's max.
func (b builder) weekGrid(p schedule.Pool) *Table {
	t := &Table{Head: []string{b.t("Hour", "时间")}, Widths: []float64{7}}
	for _, w := range weekdays {
		t.Head = append(t.Head, b.dayName(w))
		t.Widths = append(t.Widths, 19)
	}
	start := b.weekStart()
	var mine []schedule.Booking
	for _, bk := range b.d.Schedule.Bookings {
		if bk.Pool == p.Name {
			mine = append(mine, bk)
		}
	}
	slots, err := schedule.Occurrences(mine, start, start.AddDate(0, 0, 7))
	if err != nil {
		return &Table{Head: []string{b.t("Error", "错误")}, Rows: [][]string{{err.Error()}}, Marks: []string{"bad"}}
	}
	for h := 0; h < 24; h++ {
		row := []string{fmt.Sprintf("%02d:00", h)}
		marks := []string{""}
		for i := range weekdays {
			from := time.Date(start.Year(), start.Month(), start.Day()+i, h, 0, 0, 0, b.loc)
			to := from.Add(time.Hour)
			peak, names, twice := 0, map[string]bool{}, false
			for m := from; m.Before(to); m = m.Add(5 * time.Minute) {
				n, robots := 0, map[string]int{}
				for _, s := range slots {
					if s.Start.Before(m.Add(5*time.Minute)) && s.End.After(m) {
						n += max(s.Booking.Robots, 1)
						names[s.Booking.Process] = true
						if s.Booking.Robot != "" {
							robots[s.Booking.Robot]++
							twice = twice || robots[s.Booking.Robot] > 1
						}
					}
				}
				peak = max(peak, n)
			}
			cell, mark := "", ""
			if peak > 0 {
				ps := make([]string, 0, len(names))
				for n := range names {
					ps = append(ps, n)
				}
				sort.Strings(ps)
				cell = fmt.Sprintf("%d/%d %s", peak, p.Max, strings.Join(ps, ", "))
				mark = "booked"
				if peak > p.Max || twice {
					mark = "bad"
				}
			}
			row = append(row, cell)
			marks = append(marks, mark)
		}
		t.Rows = append(t.Rows, row)
		t.CellMarks = append(t.CellMarks, marks)
	}
	return t
}

func (b builder) manual() *Doc {
	d, p := b.d, b.d.Process
	doc := &Doc{
		Title:    b.t("User manual", "用户操作手册"),
		Subtitle: p.Name,
	}
	doc.Sections = append(doc.Sections, Section{
		Heading: b.t("1. What this is", "1. 简介"),
		Text: []string{
			fmt.Sprintf(b.t(
				"The process %s runs on virtual machines of the pool %s, managed by %s's RPA cloud platform, instead of on a desktop in your office. You connect to the machine from your own computer; nobody needs to travel, and the platform watches every run day and night.",
				"流程 %s 运行在 %s 机器人池的虚拟机上，由 %s 的 RPA 云管理平台统一管理，不再占用办公室的实体电脑。您在自己的电脑上远程连接虚拟机即可，无需驻场；平台全天候监控每一次运行。"),
				p.Name, d.Pool.Name, d.Organisation),
			fmt.Sprintf(b.t("It belongs to %s and runs as: %s.", "所属部门：%s；运行方式：%s。"), orDash(p.Owner), b.runsThrough()),
		},
	})
	conn := Section{Heading: b.t("2. How to connect", "2. 如何远程连接")}
	var vmRows [][]string
	for _, v := range d.VMs {
		if v.Protocol == "" {
			continue
		}
		vmRows = append(vmRows, []string{v.Name, strings.ToUpper(v.Protocol), v.Host, fmt.Sprint(v.Port)})
	}
	if len(vmRows) > 0 {
		conn.Table = &Table{Head: []string{b.t("VM", "虚拟机"), b.t("Protocol", "协议"), b.t("Host", "主机"), b.t("Port", "端口")}, Rows: vmRows, Widths: []float64{24, 10, 26, 8}}
	} else {
		conn.Text = append(conn.Text, b.t("The pool's VMs have not reported a remote-access endpoint yet; ask the platform team.", "该机器人池的虚拟机尚未上报远程连接地址，请联系平台运维人员。"))
	}
	conn.Steps = []string{
		fmt.Sprintf(b.t("Open %s and sign in with your platform token; find the process %s.", "打开 %s，使用平台令牌登录，找到流程 %s。"), orDash(d.ServerURL), p.Name),
		b.t("For RDP, download the connection file (.rdp) the platform offers for the VM and open it: Windows opens Remote Desktop Connection; on macOS use Microsoft Remote Desktop.", "RDP 连接：下载平台提供的 .rdp 连接文件并双击打开（Windows 自带“远程桌面连接”，macOS 使用 Microsoft Remote Desktop）。"),
		b.t("Each connection is recorded with your name and the lifecycle step it is for (development, test, trial run).", "每次连接都会记录连接人及所属阶段（开发、测试、试运行）。"),
		b.t("When you are done, disconnect: do not shut the VM down or sign the robot's account out, or scheduled runs will fail.", "使用完毕请直接断开连接；不要关闭虚拟机或注销机器人账户，否则排期的运行会失败。"),
	}
	if len(vmRows) > 0 {
		v := vmRows[0]
		switch v[1] {
		case "RDP":
			conn.Code = fmt.Sprintf("mstsc /v:%s:%s", v[2], v[3])
		case "SSH":
			conn.Code = fmt.Sprintf("ssh -p %s %s", v[3], v[2])
		case "VNC":
			conn.Code = fmt.Sprintf("vncviewer %s::%s", v[2], v[3])
		}
	}
	doc.Sections = append(doc.Sections, conn)

	run := Section{Heading: b.t("3. How to run it", "3. 如何运行")}
	run.Steps = []string{
		b.t("Run only in your booked slots (below and in the run schedule); outside them the robots belong to other departments.", "请只在已排期的时段运行（见下表及排期表）；其他时段机器人由其他部门使用。"),
		fmt.Sprintf(b.t("Submit the work as a batch: one line of JSON per item, e.g. rpacloud task submit --process %s --input items.jsonl --wait", "以批次提交任务：每行一条 JSON，例如 rpacloud task submit --process %s --input items.jsonl --wait"), p.Name),
		b.t("Follow progress on the platform; the result of every item comes back with the batch.", "在平台上查看进度，每条任务的结果随批次返回。"),
	}
	run.Table = b.bookingTable(b.ownBookings(), false)
	doc.Sections = append(doc.Sections, run)

	fail := Section{Heading: b.t("4. When it fails", "4. 运行失败怎么办")}
	fail.Bullets = []string{
		fmt.Sprintf(b.t("An execution error (the system was slow, a page did not load) is retried automatically up to %d more times, on another robot if one hangs.", "执行错误（系统缓慢、页面未加载等）会自动重试，最多再试 %d 次；如机器人无响应，会换另一台机器人执行。"), p.Retries),
		b.t("A data error (the input is wrong, the target system refused it) is never retried: correct the item and submit it again.", "数据错误（输入有误、目标系统拒收）不会重试：请更正数据后重新提交。"),
		fmt.Sprintf(b.t("An attempt that runs longer than %s is stopped and handed to another robot.", "单次运行超过 %s 会被终止并交给另一台机器人。"), b.dur(p.MaxDuration)),
		b.t("The monitoring screen shows stopped, hung and missed runs at once; the night shift is alerted.", "监控大屏会立即显示中断、卡住或未按时启动的运行，值班人员会收到告警。"),
		fmt.Sprintf(b.t("Still stuck? Contact %s with the batch number.", "仍无法解决？请携带批次号联系 %s。"), orDash(d.Support)),
	}
	doc.Sections = append(doc.Sections, fail)

	cred := Section{Heading: b.t("5. Credentials you must keep current", "5. 需要您维护的账号密码")}
	if len(p.Credentials) == 0 {
		cred.Text = []string{b.t("This process needs no credential of yours.", "本流程不需要您的账号密码。")}
	} else {
		cred.Text = []string{b.t(
			"The robot logs in with these accounts. They are kept in the platform's credential store (HashiCorp Vault) and handed to the robot only while it runs this process. When a password changes or expires, update it in the credential store the same day, or the next run fails with a login error.",
			"机器人使用以下账号登录。账号密码保存在平台的凭证管理系统（HashiCorp Vault）中，仅在运行本流程时交给机器人。密码修改或过期时，请当天在凭证管理系统中更新，否则下次运行会因登录失败而中断。")}
		cred.Bullets = p.Credentials
	}
	cred.Text = append(cred.Text, b.t("Never put a password in task input, in a file on the VM, or in an e-mail.", "切勿把密码写在任务数据、虚拟机上的文件或邮件中。"))
	doc.Sections = append(doc.Sections, cred)

	doc.Sections = append(doc.Sections, Section{
		Heading: b.t("6. Rules for the VM", "6. 虚拟机使用规范"),
		Bullets: []string{
			b.t("Do not install software or change configuration files: the VM is prepared from the platform's declaration and changes are lost.", "不要自行安装软件或修改配置文件：虚拟机按平台声明统一准备，私自修改会被覆盖。"),
			fmt.Sprintf(b.t("The VM reaches the network only through the profile %s; other sites are blocked on purpose.", "虚拟机只能通过内网访问设置 %s 访问网络，其他网站被有意屏蔽。"), orDash(d.Pool.Network)),
			b.t("Keep no personal files on the VM.", "不要在虚拟机上存放个人文件。"),
			b.t("Keep to the run schedule; ask for a new slot rather than running outside yours.", "严格按照排期表执行；需要新时段请申请，不要在他人时段运行。"),
		},
	})
	return doc
}
