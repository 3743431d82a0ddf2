"""Dashboard wording in Chinese (the default) and English, shared by the templates and the browser.

One table keyed by a stable id, so the server-rendered shell and the JavaScript that fills it in
with the API's numbers say the same thing, and a missing translation is a test failure, not a
blank on a village clerk's phone.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")

STRINGS: dict[str, tuple[str, str]] = {
    "app": ("农云", "nongyun"),
    "app_sub": ("农业数字乡村监测", "Digital-village farm monitoring"),
    "switch_lang": ("English", "中文"),
    "district": ("区", "District"),
    "township": ("乡镇", "Township"),
    "village": ("村", "Village"),
    "device": ("设备", "Device"),
    "refreshed": ("更新于", "Updated"),
    "refresh_note": ("每60秒自动刷新", "Refreshes every 60 s"),
    "loading": ("加载中…", "Loading…"),
    "load_failed": ("数据加载失败", "Could not load data"),
    "no_data": ("暂无数据", "No data"),
    "charts_missing": ("图表组件缺失，无法绘图", "Chart library missing: cannot draw"),
    "charts_missing_long": ("本安装缺少图表组件 echarts.min.js，所有图表都无法显示（数字表格不受影响）。"
                            "请重新安装农云（pip install -e . 或 pip install nongyun），安装时会自动放入该文件。",
                            "This installation lacks the chart library echarts.min.js, so no chart can be drawn "
                            "(the figures in the tables are unaffected). Reinstall nongyun (pip install -e . or "
                            "pip install nongyun): its build puts the file in place."),
    "devices_online": ("设备在线", "Devices online"),
    "soil_moisture_today": ("今日土壤含水量", "Soil moisture today"),
    "air_temp_today": ("今日气温", "Air temp today"),
    "rain_24h": ("24小时降雨", "Rain, last 24 h"),
    "active_alerts": ("活动告警", "Active alerts"),
    # the alerts panel (alerts.js): kinds, states, acknowledging
    "alerts_panel": ("当前告警", "Active alerts"),
    "alert_place": ("地点", "Place"),
    "alert_since": ("开始时间", "Since"),
    "alert_kind_drought": ("旱情", "Drought"),
    "alert_kind_frost": ("霜冻", "Frost"),
    "alert_kind_heat": ("高温", "Heat"),
    "alert_kind_waterlogging": ("渍涝", "Waterlogging"),
    "alert_kind_device_offline": ("站点离线", "Station offline"),
    "alert_kind_battery_low": ("电池电压低", "Low battery"),
    "alert_threshold": ("（阈值 {v}）", " (threshold {v})"),
    "alert_open": ("未处理", "Open"),
    "alert_acked": ("已确认（{by}，{at}）", "Acknowledged by {by}, {at}"),
    "alert_cleared": ("已解除", "Cleared"),
    "alert_ack": ("确认", "Acknowledge"),
    "alert_acking": ("确认中…", "Acknowledging…"),
    "alert_none": ("当前没有告警", "No active alerts"),
    "alert_ack_failed": ("确认失败，请刷新页面后重试", "Could not acknowledge: reload the page and retry"),
    "alert_ack_forbidden": ("无权确认该告警", "You may not acknowledge this alert"),
    "alert_ack_gone": ("该告警已不存在，请刷新页面", "The alert no longer exists: reload the page"),
    "season_output": ("本季粮食产量", "Season grain output"),
    "per_mu": ("亩产", "Yield per mu"),
    "yoy": ("同比", "vs last season"),
    "vs_target": ("完成目标", "of target"),
    "target": ("目标", "Target"),
    "coverage": ("{r}/{n} 村上报，{o} 站离线", "{r}/{n} villages reporting, {o} stations offline"),
    "review_counts": ("已审核 {a} 条，待审核 {p} 条", "{a} records approved, {p} awaiting review"),
    "villages": ("村", "Villages"),
    "townships_compare": ("各乡镇粮食产量：本季、上季与目标（万斤）",
                          "Grain output by township: this season, last season, target (万斤)"),
    "this_season": ("本季", "This season"),
    "last_season": ("上季", "Last season"),
    "name": ("名称", "Name"),
    "stations": ("站点", "Stations"),
    "output": ("产量", "Output"),
    "area": ("面积", "Area"),
    "records": ("记录", "Records"),
    "soil_moisture_7d": ("土壤含水量（近7天）", "Soil moisture, last 7 days"),
    "air_temp_7d": ("气温（近7天）", "Air temperature, last 7 days"),
    "rain_7d": ("降雨量（近7天，按日）", "Rainfall, last 7 days (daily)"),
    "yield_by_village": ("各村产量与亩产", "Output and yield per mu by village"),
    "offline_stations": ("离线站点", "Offline stations"),
    "last_seen": ("最后上报", "Last seen"),
    "never": ("从未上报", "never"),
    "lagging": ("落后于目标的村", "Villages behind target"),
    "progress": ("完成率", "Progress"),
    "all_online": ("全部在线", "All online"),
    "station_latest": ("站点最新读数", "Stations, latest readings"),
    "history": ("历史曲线", "History"),
    "metric": ("指标", "Metric"),
    "range": ("时间范围", "Range"),
    "yield_records": ("产量记录", "Yield records"),
    "harvest_form": ("录入收获记录", "Enter a harvest record"),
    "date_time": ("收获时间", "Harvest time"),
    "crop": ("作物", "Crop"),
    "area_mu": ("面积（亩）", "Area (亩)"),
    "yield_jin": ("产量（斤）", "Yield (斤)"),
    "plot": ("地块", "Plot"),
    "optional": ("选填", "optional"),
    "submit": ("提交", "Submit"),
    "saved": ("已保存", "Saved"),
    "required": ("必填", "required"),
    "status": ("状态", "Status"),
    "online": ("在线", "online"),
    "offline": ("离线", "offline"),
    "battery": ("电池", "Battery"),
    "kind": ("类型", "Kind"),
    "kind_station": ("气象土壤站", "Soil/weather station"),
    "kind_yield_monitor": ("测产仪", "Yield monitor"),
    "kind_grain_scale": ("粮站地磅", "Grain scale"),
    "latest_values": ("最新数值", "Latest values"),
    "time": ("时间", "Time"),
    "value": ("数值", "Value"),
    "export_xlsx": ("导出Excel", "Export .xlsx"),
    "export_csv": ("导出CSV", "Export .csv"),
    "brief_pdf": ("上周墒情简报（PDF）", "Last week's soil moisture brief (PDF)"),
    "brief_xlsx": ("上周墒情简报（Excel）", "Last week's soil moisture brief (.xlsx)"),
    "total": ("合计", "Total"),
    "season": ("年度", "Season"),
    "unit_jin": ("斤", "斤"),
    "unit_mu": ("亩", "亩"),
    "unit_jin_per_mu": ("斤/亩", "斤/亩"),
    "wan_jin": ("万斤", "万斤"),
    "no_target": ("无目标", "no target"),
    "not_found": ("未找到", "Not found"),
    "area_groups": ("示范区与项目区：单产对比（本季）", "Demo zone and project areas: yield per mu this season"),
    "area_group": ("片区", "Area group"),
    "other_land": ("其他", "Other land"),
    "demo_gain": ("{g}单产比其他高 {p}", "{g}: yield per mu {p} vs other land"),
    "plots": ("地块", "Plots"),
    "plot_area": ("地块面积（亩）", "Plot area (亩)"),
    "harvested_area": ("收获面积（亩）", "Harvested (亩)"),
    # API error codes in the page's language (NY.errorText: T.err_<code>, {field} and {id} filled in);
    # the server's English message is shown only for a code missing here
    "err_bad_request": ("{field}填写有误", "{field}: not valid"),
    "err_bad_record": ("{field}缺失或格式不对", "{field}: missing or malformed"),
    "err_not_finite": ("{field}不是有效数字", "{field}: not a number"),
    "err_out_of_range": ("{field}超出允许范围", "{field}: outside the valid range"),
    "err_bad_timestamp": ("时间格式无效", "The time is not valid"),
    "err_time_in_future": ("收获时间不能晚于现在", "The harvest time cannot be in the future"),
    "err_time_too_old": ("收获时间不能早于一年前", "The harvest time cannot be over a year ago"),
    "err_unknown_crop": ("作物不在目录中", "The crop is not in the catalogue"),
    "err_unknown_plot": ("地块未登记", "The plot is not registered"),
    "err_plot_mismatch": ("地块不属于该村", "The plot lies in another village"),
    "err_implausible_yield": ("单产超出该作物的合理范围，请核对产量和面积",
                              "Yield per mu outside the crop's plausible range: check yield and area"),
    "err_duplicate": ("与已有记录 {id} 重复", "Duplicates the existing record {id}"),
    "err_forbidden": ("无权录入或修改该村的记录", "You may not enter or change this village's records"),
    "err_unauthorized": ("登录已过期，请重新登录", "Your session has expired: log in again"),
    "err_void": ("该记录已作废，不能修改或审核", "The record is void: it cannot be changed or reviewed"),
    "err_changed": ("该记录刚被他人修改，请刷新后再改", "Someone changed the record meanwhile: reload and retry"),
    "err_not_found": ("找不到该记录", "No such record"),
    # the village page's records table: correct, void, history (editors); statuses
    "status_submitted": ("待审核", "Submitted"), "status_approved": ("已审核", "Approved"),
    "status_returned": ("已退回", "Returned"), "status_void": ("已作废", "Void"),
    "rec_correct": ("更正", "Correct"), "rec_void": ("作废", "Void"), "rec_history": ("历史", "History"),
    "rec_more": ("显示更多（还有 {n} 条）", "Show more ({n} left)"),
    "rec_edit_title": ("更正记录 {id}", "Correct record {id}"),
    "rec_reason": ("更正或作废原因（必填）", "Reason for the correction or void (required)"),
    "rec_reason_needed": ("请填写原因", "Give a reason"),
    "rec_save": ("保存更正", "Save correction"), "rec_cancel": ("关闭", "Close"),
    "rec_nothing": ("没有修改任何内容", "Nothing was changed"),
    "rec_saved": ("已更正，版本 {r}", "Corrected: revision {r}"), "rec_voided": ("已作废", "Voided"),
    "rec_history_title": ("修改历史", "History"),
    "rec_rev": ("第 {r} 版 · {at} · {by}", "Revision {r} · {at} · {by}"),
    "rec_device": ("设备", "device"),
    # the harvest form (village page): its fields are 亩 and 斤 only
    "form_area": ("请填写大于 0 的面积（亩）", "Enter an area above 0 (亩)"),
    "form_yield": ("请填写产量（斤）", "Enter the yield (斤)"),
    "form_ts": ("请填写收获时间", "Enter the harvest time"),
    "form_crop": ("请选择作物", "Choose a crop"),
    "form_plot": ("地块编号最多 64 个字符，不含换行", "A plot id has at most 64 characters, no line breaks"),
    "form_unknown_plot": ("地块 {plot} 未登记，请从列表中选择", "Plot {plot} is not registered: pick one in the list"),
    "form_plot_mismatch": ("地块 {plot} 不属于本村", "Plot {plot} lies in another village"),
    "form_village": ("村代码无效，请刷新页面", "The village code is not valid: reload the page"),
    "form_bad_request": ("提交未被接受，请刷新页面后重试", "The entry was refused: reload the page and try again"),
    "form_implausible": ("单产 {v} 斤/亩，超出{crop}的合理范围 {lo}–{hi} 斤/亩，请核对产量和面积",
                         "Yield per mu {v} 斤/亩 is outside the plausible {lo}–{hi} 斤/亩 for {crop}: "
                         "check yield and area"),
    "form_per_mu": ("单产 {v} 斤/亩（{crop}合理范围 {lo}–{hi}）", "Yield per mu {v} 斤/亩 ({crop}: {lo}–{hi})"),
    "form_saved": ("已保存：{crop} {area} 亩，{yield} 斤，单产 {per} 斤/亩", "Saved: {crop} {area} 亩, {yield} 斤, "
                   "{per} 斤/亩"),
    "form_record": ("记录 {id}", "record {id}"),
    # 墒情 (moisture grades, GET /api/v1/moisture): the chips name the grade in the API's words
    "moisture_grade": ("今日墒情", "Soil moisture grade today"),
    "moisture_relative": ("相对含水量 {v}%", "Relative moisture {v}%"),
    "moisture_frozen": ("冻土", "Frozen"),
    "moisture_anomalous": ("数据异常", "Anomalous"),
    "moisture_ungraded": ("无墒情数据", "No moisture data"),
    "moisture_stations": ("站点数", "Stations"),
    "moisture_distribution": ("今日墒情等级分布（站点数）", "Stations per soil moisture grade today"),
}


def strings(lang: Lang) -> dict[str, str]:
    i = LANGS.index(lang)
    return {key: pair[i] for key, pair in STRINGS.items()}


def pick_lang(arg: str | None, cookie: str | None) -> Lang:
    """?lang= wins, then the cookie the switch set; Chinese otherwise (the users read Chinese)."""
    for value in (arg, cookie):
        if value == "en":
            return "en"
        if value == "zh":
            return "zh"
    return "zh"
