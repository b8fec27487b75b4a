#!/usr/bin/env python3
"""Writes dashboards/*.json, the Grafana dashboards, from this file: dashboards as code with
Grafana's grafana-foundation-sdk (pinned in deploy/requirements.txt).

    python3 dashboards/generate.py              # rewrite dashboards/overview.json, bot.json
    python3 dashboards/generate.py --out DIR    # write them into DIR instead
    python3 dashboards/generate.py --check      # exit 1 and name the files that drifted

dashboards/*.json is what Grafana provisions and what deploy/generate.py copies into
deploy/base/generated/dashboards/; this script is their one source of truth. The Rust test
exporter/tests/it/dashboards.rs runs it into a temporary folder and fails when the committed
JSON differs.

Findings are handled by their `kind` label, never by a list of kinds: a new finding kind shows
in every panel, and its runbook link follows the anchor rule below.

Runbook anchors: every finding kind's runbook is `docs/troubleshooting.md#discordbot<kind
without a leading "bot_" and without underscores>` (the alert `DiscordBot<Kind>` is its
heading; GitHub lowercases it), e.g. `silent_session` -> `#discordbotsilentsession`,
`bot_offline` -> `#discordbotoffline`. The queries derive an `anchor` label
with label_replace, and each panel that lists findings links `${runbook_base}#${anchor}`;
`runbook_base` is a dashboard variable (a fork or an internal mirror sets its own).
exporter/tests/it/dashboards.rs checks the rule against every kind's runbook.
"""

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

from grafana_foundation_sdk.builders import (
    bargauge,
    common,
    dashboard,
    heatmap,
    prometheus,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.prometheus import PromQueryFormat, QueryEditorMode

HERE = Path(__file__).resolve().parent
DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
RUNBOOK_BASE = (
    "https://github.com/discord-gateway-exporter/discord-gateway-exporter/blob/main/"
    "docs/troubleshooting.md"
)
# Selector of the exporter's own series: which Prometheus `cluster` label and scrape `job`.
SCOPE = 'cluster=~"$cluster", job=~"$job"'
# `anchor` = "discordbot" + the kind without a leading "bot_" and without underscores (up to
# four words), for the runbook link.
ANCHOR = (
    '"anchor", "discordbot$1$2$3$4", "kind", '
    '"(?:bot_)?([a-z0-9]+)(?:_([a-z0-9]+))?(?:_([a-z0-9]+))?(?:_([a-z0-9]+))?"'
)
RUNBOOK_LINK = "${runbook_base}#${__data.fields.anchor}"


def scoped(expr):
    """Every selector of an exporter metric (`discord_gateway_*`) also matches $cluster and
    $job. Recording rules (`bot_shard:...`) aggregate those labels away and are left as is."""

    def add(m):
        name, labels = m.group(1), m.group(2)
        inner = labels[1:-1] if labels else ""
        return f"{name}{{{SCOPE}{', ' + inner if inner else ''}}}"

    return re.sub(r"(?<![:\w])(discord_gateway_[a-z_]+)(\{[^}]*\})?", add, expr)


# --- small builders ----------------------------------------------------------------------


def query(expr, legend="__auto", ref="A", instant=False, fmt="time_series"):
    q = (
        prometheus.Dataquery()
        .datasource(DS)
        .editor_mode(QueryEditorMode.CODE)
        .expr(scoped(expr))
        .legend_format(legend)
        .ref_id(ref)
        .format(PromQueryFormat(fmt))
    )
    return q.instant() if instant else q.range()


def steps(*pairs):
    """Absolute thresholds: ("green", None), ("red", 1), ..."""
    return (
        dashboard.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for c, v in pairs])
    )


def value_map(**texts):
    """A value mapping: {"0": ("down", "red"), ...} written as v0=("down", "red")."""
    opts = {}
    for i, (k, (text, color)) in enumerate(texts.items()):
        opts[k.lstrip("v")] = dm.ValueMappingResult(text=text, color=color, index=i)
    return dm.ValueMap(options=opts)


def color(mode):
    return dashboard.FieldColor().mode(dm.FieldColorModeId(mode))


def place(p, pid, x, y, w, h, title, description):
    return (
        p.id(pid)
        .title(title)
        .description(description)
        .datasource(DS)
        .grid_pos(dm.GridPos(h=h, w=w, x=x, y=y))
    )


def row(pid, y, title):
    return dashboard.Row(title).id(pid).grid_pos(dm.GridPos(h=1, w=24, x=0, y=y))


def stat_panel(pos, title, description, targets, thresholds, unit="short", no_value="0",
               decimals=None, color_mode="background", text_mode="value_and_name",
               mappings=None):
    p = place(stat.Panel(), *pos, title, description)
    p = (
        p.unit(unit)
        .thresholds(thresholds)
        .color_scheme(color("thresholds"))
        .mappings(mappings or [])
        .no_value(no_value)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
        .color_mode(cm.BigValueColorMode(color_mode))
        .graph_mode(cm.BigValueGraphMode.NONE)
        .justify_mode(cm.BigValueJustifyMode.AUTO)
        .orientation(cm.VizOrientation.AUTO)
        .text_mode(cm.BigValueTextMode(text_mode))
        .wide_layout(True)
        .show_percent_change(False)
    )
    if decimals is not None:
        p = p.decimals(decimals)
    for t in targets:
        p = p.with_target(t)
    return p


def dashed(p, regexp):
    """Series whose name matches `regexp` drawn as a dashed red reference line."""
    return p.override_by_regexp(
        regexp,
        [
            dm.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}),
            dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "red"}),
        ],
    )


def ts_panel(pos, title, description, targets, unit="short", bars=False, stacked=False,
             decimals=None, overlap_line=False, interval=None):
    p = place(timeseries.Panel(), *pos, title, description)
    p = (
        p.draw_style(cm.GraphDrawStyle.BARS if bars else cm.GraphDrawStyle.LINE)
        .line_width(1)
        .fill_opacity(70 if bars else 10)
        .gradient_mode(cm.GraphGradientMode.NONE)
        .show_points(cm.VisibilityMode.NEVER)
        .span_nulls(False)
        .bar_alignment(cm.BarAlignment.CENTER)
        .stacking(common.StackingConfig().mode(cm.StackingMode.NORMAL if stacked else cm.StackingMode.NONE).group("A"))
        .axis_placement(cm.AxisPlacement.AUTO)
        .axis_soft_min(0)
        .thresholds_style(
            common.GraphThresholdsStyleConfig().mode(
                cm.GraphThresholdsStyleMode.LINE_AND_AREA if overlap_line else cm.GraphThresholdsStyleMode.OFF
            )
        )
        .unit(unit)
        .color_scheme(color("palette-classic"))
        .legend(
            common.VizLegendOptions()
            .display_mode(cm.LegendDisplayMode.TABLE)
            .placement(cm.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(common.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING))
    )
    if decimals is not None:
        p = p.decimals(decimals)
    if overlap_line:
        # Two live sessions of one shard stack above 1.5: the red line marks an overlap.
        p = p.thresholds(steps(("transparent", None), ("red", 1.5)))
    if interval:
        p = p.interval(interval)
    for t in targets:
        p = p.with_target(t)
    return p


def timeline(pos, title, description, targets, off="clear", on="active"):
    p = place(statetimeline.Panel(), *pos, title, description)
    p = (
        p.fill_opacity(80)
        .line_width(0)
        .color_scheme(color("thresholds"))
        .thresholds(steps(("green", None), ("red", 1)))
        .mappings([value_map(v0=(off, "green" if off != "down" else "red"), v1=(on, "red" if on != "up" else "green"))])
        .merge_values(True)
        .show_value(cm.VisibilityMode.NEVER)
        .align_value("left")
        .row_height(0.9)
        .legend(
            common.VizLegendOptions()
            .display_mode(cm.LegendDisplayMode.LIST)
            .placement(cm.LegendPlacement.BOTTOM)
            .show_legend(False)
        )
        .tooltip(common.VizTooltipOptions().mode(cm.TooltipDisplayMode.SINGLE).sort(cm.SortOrder.NONE))
    )
    for t in targets:
        p = p.with_target(t)
    return p


def organize(rename, exclude=("Time",)):
    return [
        dm.DataTransformerConfig(id_val="merge", options={}),
        dm.DataTransformerConfig(
            id_val="organize",
            options={"excludeByName": {k: True for k in exclude}, "renameByName": rename},
        ),
    ]


def table_panel(pos, title, description, targets, rename, exclude=("Time",)):
    p = place(table.Panel(), *pos, title, description)
    p = (
        p.align(cm.FieldTextAlignment.AUTO)
        .cell_options(cm.TableAutoCellOptions())
        .show_header(True)
        .cell_height(cm.TableCellHeight.SM)
        .footer(common.TableFooterOptions().show(False).reducer(["sum"]))
        .sort_by([])
        .transformations(organize(rename, exclude))
    )
    for t in targets:
        p = p.with_target(t)
    return p


def cells(kind, mode=None):
    v = {"type": kind}
    if mode:
        v["mode"] = mode
    return dm.DynamicConfigValue(id_val="custom.cellOptions", value=v)


def thresholds_value(*pairs):
    return dm.DynamicConfigValue(
        id_val="thresholds",
        value={"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in pairs]},
    )


def unit(u):
    return dm.DynamicConfigValue(id_val="unit", value=u)


def link(title, url, blank=False):
    v = {"title": title, "url": url}
    if blank:
        v["targetBlank"] = True
    return dm.DynamicConfigValue(id_val="links", value=[v])


def overlap_buckets(pos, title, description, expr):
    p = place(bargauge.Panel(), *pos, title, description)
    return (
        p.unit("short")
        .decimals(0)
        .min(0)
        .color_scheme(color("continuous-GrYlRd"))
        .thresholds(steps(("green", None)))
        .display_mode(cm.BarGaugeDisplayMode.GRADIENT)
        .orientation(cm.VizOrientation.VERTICAL)
        .show_unfilled(True)
        .value_mode(cm.BarGaugeValueMode.COLOR)
        .name_placement(cm.BarGaugeNamePlacement.AUTO)
        .sizing(cm.BarGaugeSizing.AUTO)
        .min_viz_height(16)
        .min_viz_width(8)
        .max_viz_height(300)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
        .legend(
            common.VizLegendOptions()
            .show_legend(False)
            .display_mode(cm.LegendDisplayMode.LIST)
            .placement(cm.LegendPlacement.BOTTOM)
            .calcs([])
        )
        .with_target(query(expr, "{{le}}", instant=True, fmt="heatmap"))
    )


# --- what both dashboards share ----------------------------------------------------------


def variables(bot_multi):
    bots = (
        'label_values({__name__=~"discord_gateway_shard_live_sessions|discord_gateway_session_live|'
        'discord_gateway_finding_active|discord_gateway_identifies_total"}, bot)'
    )

    def qv(name, label, q, multi=True):
        v = (
            dashboard.QueryVariable(name)
            .label(label)
            .datasource(DS)
            .query({"qryType": 1, "query": q, "refId": "PrometheusVariableQueryEditor-VariableQuery"})
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dm.VariableSort.ALPHABETICAL_ASC)
            .multi(multi)
            .include_all(multi)
        )
        return v.all_value(".*") if multi else v

    return [
        dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        qv("cluster", "Cluster", "label_values(discord_gateway_exporter_build_info, cluster)"),
        qv("job", "Job", 'label_values(discord_gateway_exporter_build_info{cluster=~"$cluster"}, job)'),
        qv("bot", "Bot", bots, multi=bot_multi),
        qv("namespace", "Namespace", 'label_values(discord_gateway_session_live{bot=~"$bot"}, namespace)'),
        qv("pod", "Pod", 'label_values(discord_gateway_session_live{bot=~"$bot", namespace=~"$namespace"}, pod)'),
        dashboard.TextBoxVariable("runbook_base")
        .label("Runbook base URL")
        .description("Where docs/troubleshooting.md is read: each finding links to its section here.")
        .default_value(RUNBOOK_BASE),
    ]


def annotations():
    ready = (
        'max by (bot, namespace, pod, shard) ((discord_gateway_session_ready_timestamp_seconds{bot=~"$bot", '
        'namespace=~"$namespace"} unless discord_gateway_session_ready_timestamp_seconds{bot=~"$bot", '
        'namespace=~"$namespace"} offset 1m) or (changes(discord_gateway_session_ready_timestamp_seconds'
        '{bot=~"$bot", namespace=~"$namespace"}[1m]) > 0))'
    )
    raised = 'sum by (bot, kind) (increase(discord_gateway_findings_total{bot=~"$bot"}[2m])) > 0'
    built_in = (
        dashboard.AnnotationQuery()
        .name("Annotations & Alerts")
        .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .type("dashboard")
        .built_in(1)
    )

    def prom(name, color_, expr):
        return (
            dashboard.AnnotationQuery()
            .name(name)
            .datasource(DS)
            .enable(True)
            .hide(False)
            .icon_color(color_)
            .expr(scoped(expr))
        )

    return [
        built_in,
        prom("Sessions started (READY)", "blue", ready),
        prom("Findings raised", "red", raised),
    ]


# The Prometheus annotation's own fields, which the SDK's AnnotationQuery does not model.
ANNOTATION_EXTRA = {
    "Sessions started (READY)": {
        "step": "60s",
        "titleFormat": "READY {{bot}} {{pod}}",
        "textFormat": "New Gateway session of {{bot}} in {{namespace}}/{{pod}} (shard {{shard}})",
        "tagKeys": "bot,pod",
        "useValueForTime": False,
    },
    "Findings raised": {
        "step": "60s",
        "titleFormat": "{{kind}} {{bot}}",
        "textFormat": "The exporter raised a {{kind}} finding for {{bot}}",
        "tagKeys": "bot,kind",
        "useValueForTime": False,
    },
}


def links():
    return [
        dashboard.DashboardLink("Discord gateway dashboards")
        .type(dm.DashboardLinkType.DASHBOARDS)
        .tags(["discord-gateway-exporter"])
        .as_dropdown(True)
        .include_vars(True)
        .keep_time(True)
        .target_blank(False)
        .icon("external link")
        .tooltip("")
        .url(""),
        dashboard.DashboardLink("Troubleshooting guide")
        .type(dm.DashboardLinkType.LINK)
        .url("${runbook_base}")
        .icon("doc")
        .target_blank(True)
        .as_dropdown(False)
        .include_vars(False)
        .keep_time(False)
        .tags([])
        .tooltip("Runbooks for every alert"),
    ]


def base(uid, title, description, bot_multi):
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["discord-gateway-exporter", "discord"])
        .editable()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now")
        .timezone("")
        .refresh("30s")
        .fiscal_year_start_month(0)
        .live_now(False)
        .week_start("")
        .version(1)
        .variables(variables(bot_multi))
        .annotations(annotations())
        .links(links())
    )


def findings_table(pos, title, description, by_bot):
    """Every active finding (any kind), when it started and for how long, with a link to its
    runbook built from its kind."""
    sel = 'bot=~"$bot", namespace=~"$namespace", pod=~"$pod"'
    by = "kind, severity, bot, namespace, pod, shard" if by_bot else "kind, severity, namespace, pod, shard"
    since = f"discord_gateway_finding_since_timestamp_seconds{{{sel}}}"
    rename = {
        "kind": "Kind",
        "severity": "Severity",
        "bot": "Bot",
        "namespace": "Namespace",
        "pod": "Pod",
        "shard": "Shard",
        "Value #A": "Since",
        "Value #B": "Active for",
    }
    p = table_panel(
        pos,
        title,
        description,
        [
            query(f"max by ({by}, anchor) (label_replace({since}, {ANCHOR})) * 1000", ref="A", instant=True, fmt="table"),
            query(f"time() - max by ({by}, anchor) (label_replace({since}, {ANCHOR}))", ref="B", instant=True, fmt="table"),
        ],
        rename,
    )
    return (
        p.override_by_name("Kind", [link("Runbook for ${__value.raw}", RUNBOOK_LINK, blank=True)])
        .override_by_name("anchor", [dm.DynamicConfigValue(id_val="custom.hidden", value=True)])
        .override_by_name("Since", [unit("dateTimeAsIso")])
        .override_by_name("Active for", [unit("s")])
        .override_by_name(
            "Severity",
            [
                cells("color-text"),
                dm.DynamicConfigValue(
                    id_val="mappings",
                    value=[{"type": "value", "options": {
                        "critical": {"color": "red", "index": 0},
                        "warning": {"color": "orange", "index": 1},
                    }}],
                ),
            ],
        )
    )


def alert_list(pos):
    """Firing and pending alerts of this exporter's rules (data-source managed alerts of the
    selected Prometheus), each with its runbook_url annotation."""
    pid, x, y, w, h = pos
    return (
        dashboard.Panel()
        .type("alertlist")
        .id(pid)
        .title("Firing alerts")
        .description(
            "Alerts of alerts/*.rules.yml that fire or are pending in the selected Prometheus; "
            "each carries its runbook_url."
        )
        .datasource(DS)
        .grid_pos(dm.GridPos(h=h, w=w, x=x, y=y))
        .options({
            "viewMode": "list",
            "groupMode": "default",
            "groupBy": [],
            "maxItems": 20,
            "sortOrder": 1,
            "dashboardAlerts": False,
            "alertName": "",
            # Every rule source Grafana reads; the exporter's alerts by name.
            "alertInstanceLabelFilter": '{alertname=~"DiscordBot.*|DiscordGateway.*"}',
            "showInstances": True,
            "stateFilter": {"firing": True, "pending": True, "noData": False, "normal": False, "error": True},
        })
    )


def kube_panels(pid, y):
    """kube-state-metrics beside the exporter: the old pod still terminating during a rollout,
    and the bots' Deployments whose RollingUpdate starts the new pod before the old one stops
    (maxUnavailable 0, maxSurge 1 or more: what the default 25%/25% becomes at one replica)."""
    bots_ns = 'group by (namespace) (discord_gateway_session_live{bot=~"$bot", namespace=~"$namespace"})'
    bot_pods = 'group by (namespace, pod) (discord_gateway_session_live{bot=~"$bot", namespace=~"$namespace", pod=~"$pod"})'
    terminating = table_panel(
        (pid + 1, 0, y + 1, 12, 7),
        "Terminating bot pods (kube-state-metrics)",
        "Bot pods Kubernetes is deleting, how long since, and their phase: while the old pod "
        "still runs, its Gateway session may still be live next to the new pod's.",
        [
            query(
                f"time() - max by (namespace, pod) (kube_pod_deletion_timestamp{{namespace=~\"$namespace\"}}) "
                f"and on (namespace, pod) {bot_pods}",
                ref="A", instant=True, fmt="table",
            ),
            query(
                f"max by (namespace, pod, phase) (kube_pod_status_phase{{namespace=~\"$namespace\"}} == 1) "
                f"and on (namespace, pod) kube_pod_deletion_timestamp and on (namespace, pod) {bot_pods}",
                ref="B", instant=True, fmt="table",
            ),
        ],
        {"namespace": "Namespace", "pod": "Pod", "phase": "Phase", "Value #A": "Terminating for"},
        exclude=("Time", "Value #B"),
    ).override_by_name("Terminating for", [unit("s")])
    overlap = table_panel(
        (pid + 2, 12, y + 1, 12, 7),
        "Rollouts that will overlap (kube-state-metrics)",
        "Deployments in the bots' namespaces whose RollingUpdate starts a new pod before the "
        "old one is gone (maxUnavailable 0, maxSurge 1 or more): each rollout opens a second "
        "Gateway session. Recreate, or maxSurge 0 with maxUnavailable 1, hands over cleanly.",
        [
            query(
                "max by (namespace, deployment) (kube_deployment_spec_strategy_rollingupdate_max_surge) > 0 "
                "and on (namespace, deployment) "
                "max by (namespace, deployment) (kube_deployment_spec_strategy_rollingupdate_max_unavailable) == 0 "
                f"and on (namespace) {bots_ns}",
                ref="A", instant=True, fmt="table",
            ),
            query(
                "max by (namespace, deployment) (kube_deployment_spec_strategy_rollingupdate_max_unavailable) "
                f"and on (namespace) {bots_ns}",
                ref="B", instant=True, fmt="table",
            ),
        ],
        {"namespace": "Namespace", "deployment": "Deployment", "Value #A": "maxSurge", "Value #B": "maxUnavailable"},
    )
    return [row(pid, y, "Kubernetes (kube-state-metrics)"), terminating, overlap]


def nodes_panel(pos, by_bot):
    """The node-mode recording rules (alerts/discord-gateway-nodes.rules.yml): a bot's shard
    held live on two or more nodes, which no single node's exporter can see."""
    legend = "{{bot}} shard {{shard}}" if by_bot else "shard {{shard}}"
    return timeline(
        pos,
        "Sessions held on two or more nodes (node mode)",
        "From the node-mode recording rules: 1 while one bot and shard has live sessions on "
        "two or more nodes (exporters). Empty unless alerts/discord-gateway-nodes.rules.yml is "
        "loaded.",
        [query('max by (bot, shard) (bot_shard:discord_gateway_sessions_across_nodes:bool{bot=~"$bot"})', legend)],
        off="one node",
        on="several nodes",
    )


# --- the dashboards ------------------------------------------------------------------------

B = 'bot=~"$bot"'
BN = 'bot=~"$bot", namespace=~"$namespace"'
BNP = 'bot=~"$bot", namespace=~"$namespace", pod=~"$pod"'
LIVE_STEPS = (("red", None), ("green", 1), ("orange", 2))
ZERO_GOOD = (("green", None), ("red", 1))
ZERO_OK = (("green", None), ("orange", 1))
INFO = (("blue", None),)
OVERLAP_STEPS = (("green", None), ("orange", 30), ("red", 120))


def overview():
    d = base(
        "dge-overview",
        "Discord gateway sessions: overview",
        "Every Discord bot's Gateway sessions at a glance: live and silent sessions, overlaps at "
        "restarts, findings, Discord's session start count and the exporter's own health.",
        bot_multi=True,
    )
    # Everything below the findings row moves down by its height.
    dy = 9
    bots = table_panel(
        (2, 0, 1, 12, 8),
        "Bots",
        "One row per bot: live Gateway sessions (each pod once, over every exporter), silent "
        "sessions, active findings, seconds since the last event and Discord's remaining session "
        "starts. Click a bot for its own dashboard.",
        [
            query(f"sum by (bot) (max by (bot, namespace, pod, shard) (discord_gateway_session_live{{{B}}}))", ref="A", instant=True, fmt="table"),
            query(f"sum by (bot) (max by (bot, namespace, pod, shard) (discord_gateway_session_silent{{{B}}}))", ref="B", instant=True, fmt="table"),
            query(f"sum by (bot) (max by (kind, bot, namespace, pod, shard) (discord_gateway_finding_active{{{B}}}))", ref="C", instant=True, fmt="table"),
            query(f"time() - max by (bot) (discord_gateway_session_last_event_timestamp_seconds{{{B}}})", ref="D", instant=True, fmt="table"),
            query(f"min by (bot) (discord_gateway_session_start_limit_remaining{{{B}}})", ref="E", instant=True, fmt="table"),
        ],
        {
            "bot": "Bot",
            "Value #A": "Live sessions",
            "Value #B": "Silent sessions",
            "Value #C": "Active findings",
            "Value #D": "Since last event",
            "Value #E": "Session starts left",
        },
    )
    bots = (
        bots.override_by_name("Bot", [link(
            "Open ${__value.raw} in the bot dashboard",
            "/d/dge-bot/discord-bot?var-bot=${__value.raw}&${datasource:queryparam}&${__url_time_range}",
        )])
        .override_by_name("Since last event", [unit("s")])
        .override_by_name("Silent sessions", [cells("color-background", "basic"), thresholds_value(*ZERO_GOOD)])
        .override_by_name("Active findings", [cells("color-background", "basic"), thresholds_value(*ZERO_OK)])
        .override_by_name("Live sessions", [cells("color-background", "basic"), thresholds_value(*LIVE_STEPS)])
    )
    d = d.with_row(row(1, 0, "Every bot at a glance")).with_panel(bots)
    d = d.with_panel(stat_panel(
        (3, 12, 1, 4, 8), "Live sessions per bot and shard",
        "Gateway sessions live per bot and shard, each pod counted once over every exporter. 1 is "
        "healthy; 0 is offline; 2 or more is an overlap.",
        [query(f"sum by (bot, shard) (max by (bot, namespace, pod, shard) (discord_gateway_session_live{{{B}}}))", "{{bot}} shard {{shard}}")],
        steps(*LIVE_STEPS), decimals=0,
    ))
    d = d.with_panel(stat_panel(
        (4, 16, 1, 4, 8), "Silent sessions",
        "Live sessions that receive no events although the bot's usual rate says they should "
        "(connected but deaf).",
        [query(f"sum by (bot) (max by (bot, namespace, pod, shard) (discord_gateway_session_silent{{{B}}}))", "{{bot}}")],
        steps(*ZERO_GOOD), decimals=0,
    ))
    d = d.with_panel(stat_panel(
        (5, 20, 1, 4, 8), "Active findings",
        "Findings the exporter currently holds open, by kind. See docs/troubleshooting.md for each kind.",
        [query(f"sum by (kind) (max by (kind, bot, namespace, pod, shard) (discord_gateway_finding_active{{{B}}}))", "{{kind}}")],
        steps(*ZERO_OK), decimals=0,
    ))
    # Findings: which, since when, each with its runbook; and the alerts that fire.
    d = d.with_row(row(27, 9, "Findings and alerts"))
    d = d.with_panel(findings_table(
        (28, 0, 10, 16, 8), "Active findings: since when, and their runbooks",
        "Every finding open now, any kind: when it started (discord_gateway_finding_since_timestamp_seconds) "
        "and for how long. Click a kind for its runbook (the runbook_base variable says where "
        "docs/troubleshooting.md is read).",
        by_bot=True,
    ))
    d = d.with_panel(alert_list((29, 16, 10, 8, 8)))

    d = d.with_row(row(6, 9 + dy, "Sessions"))
    d = d.with_panel(ts_panel(
        (7, 0, 10 + dy, 12, 9), "Live sessions per bot and shard",
        "Bars: one bar per bot and shard. An overlap (a new pod connected while the old one still "
        "holds the shard) shows as a bar of 2 above the red line.",
        [query(f"sum by (bot, shard) (max by (bot, namespace, pod, shard) (discord_gateway_session_live{{{BN}}}))", "{{bot}} shard {{shard}}")],
        bars=True, decimals=0, overlap_line=True,
    ))
    d = d.with_panel(timeline(
        (8, 12, 10 + dy, 12, 9), "Silent, concurrent and duplicate findings",
        "When the exporter's detectors held each finding open, per bot.",
        [query(
            'max by (bot, kind) (discord_gateway_finding_active{kind=~"silent_session|concurrent_sessions|'
            'duplicate_delivery|lingering_session|quiet_session", bot=~"$bot", namespace=~"$namespace"})',
            "{{bot}} {{kind}}",
        )],
    ))
    d = d.with_panel(ts_panel(
        (9, 0, 19 + dy, 12, 8), "Events per pod",
        "Events delivered per second to each pod's session. A live session stuck at 0 next to a "
        "busy one is the silent-session signature.",
        [query(f"max by (bot, namespace, pod, shard) (rate(discord_gateway_session_events_total{{{BNP}}}[$__rate_interval]))", "{{bot}} {{namespace}}/{{pod}} shard {{shard}}")],
        unit="reqps",
    ))
    d = d.with_panel(dashed(ts_panel(
        (10, 12, 19 + dy, 12, 8), "Time since last event vs expected interval",
        "Seconds since each live session last received an event, against the event interval the "
        "exporter learned for the bot (dashed).",
        [
            query(
                f"time() - max by (bot, namespace, pod, shard) (discord_gateway_session_last_event_timestamp_seconds{{{BNP}}} "
                f"and on (bot, namespace, pod, shard) (discord_gateway_session_live{{{BNP}}} == 1))",
                "{{bot}} {{pod}} shard {{shard}}",
            ),
            query(f"max by (bot) (discord_gateway_expected_event_interval_seconds{{{B}}})", "expected interval {{bot}}", ref="B"),
        ],
        unit="s",
    ), "expected interval .*"))

    d = d.with_row(row(11, 27 + dy, "Restarts and overlaps"))
    d = d.with_panel(
        place(heatmap.Panel(), 12, 0, 28 + dy, 12, 8, "Session overlap at restarts",
              "How long an old and a new session of the same bot were both live, per restart. "
              "Seconds are a clean handover; minutes are a lingering session.")
        .interval("1m")
        .hide_from(common.HideSeriesConfig().legend(False).tooltip(False).viz(False))
        .scale_distribution(common.ScaleDistributionConfig().type(cm.ScaleDistribution.LINEAR))
        .calculate(False)
        .cell_gap(1)
        .color(heatmap.HeatmapColorOptions().mode("scheme").scheme("Oranges").exponent(0.5)
               .fill("dark-orange").scale("exponential").steps(64).reverse(False))
        .y_axis(heatmap.YAxisConfig().axis_placement(cm.AxisPlacement.LEFT).unit("s").reverse(False))
        .rows_frame(heatmap.RowsHeatmapOptions().layout(cm.HeatmapCellLayout.AUTO))
        .filter_values(heatmap.FilterValueRange().le(1e-09))
        .mode(cm.TooltipDisplayMode.SINGLE)
        .show_y_histogram()
        .show_color_scale(False)
        .show_legend()
        .exemplars_color("rgba(255,0,255,0.7)")
        .cell_values(heatmap.CellValues().unit("short"))
        .with_target(query(f"sum by (le) (increase(discord_gateway_session_overlap_seconds_bucket{{{B}}}[$__interval]))", "{{le}}", fmt="heatmap"))
    )
    d = d.with_panel(overlap_buckets(
        (13, 12, 28 + dy, 6, 8), "Overlaps in the selected range",
        "Number of restarts by how long the old and new sessions overlapped (upper bucket bound in seconds).",
        f"sum by (le) (increase(discord_gateway_session_overlap_seconds_bucket{{{B}}}[$__range]))",
    ))
    d = d.with_panel(stat_panel(
        (14, 18, 28 + dy, 6, 8), "Overlap p50 / p95",
        "Median and 95th percentile of the overlap at restarts in the selected range.",
        [
            query(f"histogram_quantile(0.5, sum by (bot, le) (increase(discord_gateway_session_overlap_seconds_bucket{{{B}}}[$__range])))", "p50 {{bot}}", instant=True),
            query(f"histogram_quantile(0.95, sum by (bot, le) (increase(discord_gateway_session_overlap_seconds_bucket{{{B}}}[$__range])))", "p95 {{bot}}", ref="B", instant=True),
        ],
        steps(*OVERLAP_STEPS), unit="s", no_value="no restarts",
    ))

    d = d.with_row(row(15, 36 + dy, "Discord's count"))
    d = d.with_panel(dashed(ts_panel(
        (16, 0, 37 + dy, 8, 8), "Session start limit remaining",
        "IDENTIFYs left in the 24h session start limit, as Discord reports it (GET /gateway/bot). "
        "Exhausting it terminates every session and resets the token.",
        [
            query(f"min by (bot) (discord_gateway_session_start_limit_remaining{{{B}}})", "{{bot}} remaining"),
            query(f"max by (bot) (discord_gateway_session_start_limit{{{B}}})", "limit {{bot}}", ref="B"),
        ],
    ), "limit .*"))
    d = d.with_panel(stat_panel(
        (17, 8, 37 + dy, 4, 8), "Start limit resets in",
        "Time until Discord refills the session start limit.",
        [query(f"min by (bot) (discord_gateway_session_start_limit_reset_after_seconds{{{B}}})", "{{bot}}")],
        steps(*INFO), unit="s", no_value="unknown", color_mode="value",
    ))
    d = d.with_panel(ts_panel(
        (18, 12, 37 + dy, 12, 8), "IDENTIFYs: seen in logs vs counted by Discord",
        "New sessions per interval as the bots' logs show them and as Discord counted them. "
        "Discord counting more is a session nobody can see (unattributed).",
        [
            query(
                f'sum by (bot, seen_by) (increase(discord_gateway_identifies_total{{bot=~"$bot", seen_by="logs"}}[$__interval])) '
                f'or max by (bot, seen_by) (increase(discord_gateway_identifies_total{{bot=~"$bot", seen_by="discord"}}[$__interval]))',
                "{{bot}} {{seen_by}}",
            ),
            query(f"sum by (bot) (increase(discord_gateway_unattributed_identifies_total{{{B}}}[$__interval]))", "{{bot}} unattributed", ref="B"),
        ],
        bars=True, decimals=0, interval="1m",
    ))
    d = d.with_panel(ts_panel(
        (19, 0, 45 + dy, 12, 8), "Gateway close codes",
        "Gateway closes by code. 1000/1001 are clean; 4004, 4010-4014 are fatal (token, shard, "
        "intents); none at all when a pod ends means its session lingers.",
        [query(f"sum by (bot, code) (increase(discord_gateway_close_codes_total{{{B}}}[$__interval]))", "{{bot}} {{code}}")],
        bars=True, decimals=0, interval="1m",
    ))
    d = d.with_panel(stat_panel(
        (20, 12, 45 + dy, 12, 8), "Shards: running / recommended",
        "Shards with a live session against the shard count Discord recommends, and the IDENTIFY "
        "concurrency Discord allows.",
        [
            query(f"count by (bot) (count by (bot, shard) (discord_gateway_session_live{{{B}}} == 1))", "{{bot}} running"),
            query(f"max by (bot) (discord_gateway_recommended_shards{{{B}}})", "{{bot}} recommended", ref="B"),
            query(f"max by (bot) (discord_gateway_session_start_limit_max_concurrency{{{B}}})", "{{bot}} max concurrency", ref="C"),
        ],
        steps(*INFO), decimals=0, color_mode="value",
    ))

    d = d.with_row(row(21, 53 + dy, "Exporter health"))
    d = d.with_panel(stat_panel(
        (22, 0, 54 + dy, 6, 7), "Exporters",
        "Is Prometheus able to scrape each discord-gateway-exporter (job discord-gateway-exporter)?",
        [query('up{job="discord-gateway-exporter"}', "{{instance}}")],
        steps(("red", None), ("green", 1)), no_value="not scraped",
        mappings=[value_map(v0=("down", "red"), v1=("up", "green"))],
    ))
    d = d.with_panel(timeline(
        (23, 6, 54 + dy, 9, 7), "Sources",
        "Each input of each exporter: Kubernetes pods, pod logs, log files, the Discord poller. "
        "A source disabled by configuration (an optional token that is absent) has no row.",
        [query("max by (instance, source) (discord_gateway_exporter_source_up)", "{{instance}} {{source}}")],
        off="down", on="up",
    ))
    d = d.with_panel(table_panel(
        (24, 15, 54 + dy, 9, 7), "Exporter versions",
        "Build of each running exporter: version, the git revision it was built from and its rustc.",
        [
            query("max by (instance, version) (discord_gateway_exporter_build_info)", instant=True, fmt="table"),
            query(
                "max by (instance, version, revision, rustc_version) (discord_gateway_exporter_build_info)",
                ref="B", instant=True, fmt="table",
            ),
        ],
        {"instance": "Exporter", "version": "Version", "revision": "Revision", "rustc_version": "rustc"},
        exclude=("Time", "Value #A", "Value #B"),
    ))
    d = d.with_panel(ts_panel(
        (25, 0, 61 + dy, 12, 8), "Log lines by outcome",
        "Lines read per second by source and outcome. Mostly `malformed` means the log format "
        "changed and sessions seen only there look silent.",
        [query("sum by (source, outcome) (rate(discord_gateway_exporter_log_lines_total[$__rate_interval]))", "{{source}} {{outcome}}")],
        unit="reqps", stacked=True,
    ))
    d = d.with_panel(ts_panel(
        (26, 12, 61 + dy, 12, 8), "Discord API requests by status",
        "GET /gateway/bot requests per second by status. 401/403 mean a revoked token (back off!), "
        "429 rate limiting.",
        [query(f"sum by (bot, status) (rate(discord_gateway_exporter_discord_requests_total{{{B}}}[$__rate_interval]))", "{{bot}} {{status}}")],
        unit="reqps", stacked=True,
    ))
    for p in kube_panels(30, 69 + dy):
        d = d.with_row(p) if isinstance(p, dashboard.Row) else d.with_panel(p)
    d = d.with_row(row(33, 77 + dy, "Node mode"))
    d = d.with_panel(nodes_panel((34, 0, 78 + dy, 24, 6), by_bot=True))
    return d


def bot():
    d = base(
        "dge-bot",
        "Discord gateway sessions: bot",
        "One bot's pods and Gateway sessions: which pod holds a live session, which one is "
        "silent, overlaps at restarts, findings and Discord's session start count.",
        bot_multi=False,
    )
    d = d.with_row(row(1, 0, "$bot"))
    for pid, x, title, desc, expr, legend, thresholds, extra in [
        (2, 0, "Live sessions", "Live Gateway sessions of the bot (each pod once). 1 per shard is healthy.",
         f"sum(max by (namespace, pod, shard) (discord_gateway_session_live{{{BNP}}}))", "live", LIVE_STEPS, {"decimals": 0}),
        (3, 4, "Silent sessions", "Live sessions that receive no events while they should.",
         f"sum(max by (namespace, pod, shard) (discord_gateway_session_silent{{{BNP}}}))", "silent", ZERO_GOOD, {"decimals": 0}),
        (4, 8, "Active findings", "Findings currently open for this bot.",
         f"sum(max by (kind, namespace, pod, shard) (discord_gateway_finding_active{{{BNP}}}))", "findings", ZERO_OK, {"decimals": 0}),
        (5, 12, "Expected event interval",
         "The interval between events the exporter learned from this bot's own history; silence is judged against it.",
         f"max(discord_gateway_expected_event_interval_seconds{{{B}}})", "expected", INFO,
         {"unit": "s", "no_value": "learning", "color_mode": "value"}),
        (6, 16, "Session starts left", "Remaining IDENTIFYs in Discord's 24h session start limit.",
         f"min(discord_gateway_session_start_limit_remaining{{{B}}})", "remaining",
         (("red", None), ("orange", 10), ("green", 100)), {"no_value": "unknown"}),
        (7, 20, "Start limit resets in", "Time until Discord refills the session start limit.",
         f"min(discord_gateway_session_start_limit_reset_after_seconds{{{B}}})", "reset", INFO,
         {"unit": "s", "no_value": "unknown", "color_mode": "value"}),
    ]:
        d = d.with_panel(stat_panel((pid, x, 1, 4, 4), title, desc, [query(expr, legend)], steps(*thresholds),
                                    text_mode="value", **extra))
    d = d.with_row(row(8, 5, "Pods and sessions"))
    d = d.with_panel(
        table_panel(
            (9, 0, 6, 24, 8), "Sessions",
            "Each pod's session per shard: live, silent, when it became READY, seconds since its last event, events received.",
            [
                query(f"max by (namespace, pod, shard) (discord_gateway_session_live{{{BNP}}})", ref="A", instant=True, fmt="table"),
                query(f"max by (namespace, pod, shard) (discord_gateway_session_silent{{{BNP}}})", ref="B", instant=True, fmt="table"),
                query(f"max by (namespace, pod, shard) (discord_gateway_session_ready_timestamp_seconds{{{BNP}}}) * 1000", ref="C", instant=True, fmt="table"),
                query(f"time() - max by (namespace, pod, shard) (discord_gateway_session_last_event_timestamp_seconds{{{BNP}}})", ref="D", instant=True, fmt="table"),
                query(f"max by (namespace, pod, shard) (discord_gateway_session_events_total{{{BNP}}})", ref="E", instant=True, fmt="table"),
            ],
            {"namespace": "Namespace", "pod": "Pod", "shard": "Shard", "Value #A": "Live", "Value #B": "Silent",
             "Value #C": "READY at", "Value #D": "Since last event", "Value #E": "Events"},
        )
        .override_by_name("READY at", [unit("dateTimeAsIso")])
        .override_by_name("Since last event", [unit("s")])
        .override_by_name("Live", [
            dm.DynamicConfigValue(id_val="mappings", value=[{"type": "value", "options": {
                "0": {"text": "no", "index": 0}, "1": {"text": "live", "color": "green", "index": 1}}}]),
            cells("color-text"),
        ])
        .override_by_name("Silent", [
            dm.DynamicConfigValue(id_val="mappings", value=[{"type": "value", "options": {
                "0": {"text": "no", "index": 0}, "1": {"text": "SILENT", "color": "red", "index": 1}}}]),
            cells("color-background", "basic"),
        ])
    )
    d = d.with_panel(ts_panel(
        (10, 0, 14, 12, 9), "Live sessions by pod",
        "Stacked bars, one colour per pod: during an overlap two pods stack to 2 (above the red line).",
        [query(f"max by (namespace, pod, shard) (discord_gateway_session_live{{{BNP}}})", "{{pod}} shard {{shard}}")],
        bars=True, stacked=True, decimals=0, overlap_line=True,
    ))
    d = d.with_panel(ts_panel(
        (11, 12, 14, 12, 9), "Events per pod",
        "Events per second each pod's session receives. A new pod flat at 0 while the old one keeps "
        "receiving is the silent-session signature.",
        [query(f"max by (namespace, pod, shard) (rate(discord_gateway_session_events_total{{{BNP}}}[$__rate_interval]))", "{{pod}} shard {{shard}}")],
        unit="reqps",
    ))
    d = d.with_panel(dashed(ts_panel(
        (12, 0, 23, 12, 8), "Time since last event vs expected interval",
        "Seconds since each live session's last event, against the learned interval (dashed).",
        [
            query(
                f"time() - max by (namespace, pod, shard) (discord_gateway_session_last_event_timestamp_seconds{{{BNP}}} "
                f"and on (bot, namespace, pod, shard) (discord_gateway_session_live{{{BNP}}} == 1))",
                "{{pod}} shard {{shard}}",
            ),
            query(f"max(discord_gateway_expected_event_interval_seconds{{{B}}})", "expected interval", ref="B"),
        ],
        unit="s",
    ), "expected interval"))
    d = d.with_panel(timeline(
        (13, 12, 23, 12, 8), "Findings", "When each finding was open, by kind and pod.",
        [query(f"max by (kind, pod, shard) (discord_gateway_finding_active{{{BNP}}})", "{{kind}} {{pod}}")],
    ))
    d = d.with_panel(table_panel(
        (14, 0, 31, 24, 6), "Active findings",
        "Findings open now. The runbook for each kind is in docs/troubleshooting.md; "
        "`discord-gateway-exporter` serves the explanation and evidence at /api/v1/findings.",
        [query(f"max by (kind, severity, namespace, pod, shard) (discord_gateway_finding_active{{{BNP}}}) == 1", instant=True, fmt="table")],
        {"kind": "Kind", "severity": "Severity", "namespace": "Namespace", "pod": "Pod", "shard": "Shard"},
        exclude=("Time", "Value"),
    ))
    # Everything below the findings' since table and the alert list moves down by their height.
    dy = 8
    d = d.with_panel(findings_table(
        (22, 0, 37, 16, 8), "Findings: since when, and their runbooks",
        "Each open finding of the bot, any kind: when it started and for how long. Click a kind "
        "for its runbook (the runbook_base variable says where docs/troubleshooting.md is read).",
        by_bot=False,
    ))
    d = d.with_panel(alert_list((23, 16, 37, 8, 8)))
    d = d.with_row(row(15, 37 + dy, "Restarts and Discord's count"))
    d = d.with_panel(overlap_buckets(
        (16, 0, 38 + dy, 8, 8), "Overlap at restarts",
        "Restarts in the selected range by how long old and new sessions overlapped (upper bucket bound, seconds).",
        f"sum by (le) (increase(discord_gateway_session_overlap_seconds_bucket{{{B}}}[$__range]))",
    ))
    d = d.with_panel(stat_panel(
        (17, 8, 38 + dy, 4, 8), "Overlap p50 / p95",
        "Median and 95th percentile overlap in the selected range.",
        [
            query(f"histogram_quantile(0.5, sum by (le) (increase(discord_gateway_session_overlap_seconds_bucket{{{B}}}[$__range])))", "p50", instant=True),
            query(f"histogram_quantile(0.95, sum by (le) (increase(discord_gateway_session_overlap_seconds_bucket{{{B}}}[$__range])))", "p95", ref="B", instant=True),
        ],
        steps(*OVERLAP_STEPS), unit="s", no_value="no restarts",
    ))
    d = d.with_panel(ts_panel(
        (18, 12, 38 + dy, 12, 8), "IDENTIFYs: logs vs Discord",
        "New sessions seen in the logs and counted by Discord; unattributed ones are sessions nobody can see.",
        [
            query(
                'sum by (seen_by) (increase(discord_gateway_identifies_total{bot=~"$bot", seen_by="logs"}[$__interval])) '
                'or max by (seen_by) (increase(discord_gateway_identifies_total{bot=~"$bot", seen_by="discord"}[$__interval]))',
                "{{seen_by}}",
            ),
            query(f"sum(increase(discord_gateway_unattributed_identifies_total{{{B}}}[$__interval]))", "unattributed", ref="B"),
        ],
        bars=True, decimals=0, interval="1m",
    ))
    d = d.with_panel(dashed(ts_panel(
        (19, 0, 46 + dy, 8, 8), "Session start limit", "Remaining IDENTIFYs against the limit (dashed).",
        [
            query(f"min(discord_gateway_session_start_limit_remaining{{{B}}})", "remaining"),
            query(f"max(discord_gateway_session_start_limit{{{B}}})", "limit", ref="B"),
        ],
    ), "limit"))
    d = d.with_panel(ts_panel(
        (20, 8, 46 + dy, 8, 8), "Gateway close codes", "Closes by code: 1000/1001 clean, 4004/4010-4014 fatal.",
        [query(f"sum by (code) (increase(discord_gateway_close_codes_total{{{B}}}[$__interval]))", "{{code}}")],
        bars=True, decimals=0, interval="1m",
    ))
    d = d.with_panel(ts_panel(
        (21, 16, 46 + dy, 8, 8), "Discord API requests", "GET /gateway/bot requests per second by status.",
        [query(f"sum by (status) (rate(discord_gateway_exporter_discord_requests_total{{{B}}}[$__rate_interval]))", "{{status}}")],
        unit="reqps", stacked=True,
    ))
    for p in kube_panels(24, 54 + dy):
        d = d.with_row(p) if isinstance(p, dashboard.Row) else d.with_panel(p)
    d = d.with_row(row(27, 62 + dy, "Node mode"))
    d = d.with_panel(nodes_panel((28, 0, 63 + dy, 24, 6), by_bot=False))
    return d


def render(builder):
    obj = json.loads(JSONEncoder(sort_keys=False).encode(builder.build()))
    obj["id"] = None
    for a in obj.get("annotations", {}).get("list", []):
        a.update(ANNOTATION_EXTRA.get(a.get("name"), {}))
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def outputs():
    return {"overview.json": render(overview()), "bot.json": render(bot())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE, help="folder to write into (default: dashboards/)")
    ap.add_argument("--check", action="store_true", help="compare with dashboards/*.json instead")
    args = ap.parse_args()
    files = outputs()
    if args.check:
        drifted = [n for n, text in files.items() if (HERE / n).read_text(encoding="utf-8") != text]
        for n in drifted:
            print(f"dashboards/{n} differs from dashboards/generate.py: run it", file=sys.stderr)
        sys.exit(1 if drifted else 0)
    args.out.mkdir(parents=True, exist_ok=True)
    for n, text in files.items():
        (args.out / n).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
