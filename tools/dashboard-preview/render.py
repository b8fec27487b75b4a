#!/usr/bin/env python3
"""Render a Grafana dashboard JSON of this repository to a PNG from real Prometheus data.

A developer tool for the README's illustration, not part of the product. This is an
approximation of Grafana, not Grafana: it reads the dashboard JSON (panel types, titles, grid positions,
targets, legends, units, thresholds, overrides, value mappings, table transformations),
runs every target's PromQL against a real Prometheus that scraped the exporter's demo, and
draws each panel with matplotlib in a dark, Grafana-like theme.

By default it starts, on loopback only:
  1. a Prometheus (temporary directory, scrape_interval 1s, job `discord-gateway-exporter`,
     alerts/*.rules.yml loaded so that the recording rules exist), and once it is ready
  2. `target/debug/discord-gateway-exporter demo --speed 1`,
waits --duration seconds (300) so that the demo's incident is in the data, renders, and stops both
processes by PID. See tools/dashboard-preview/README.md.

    python3 tools/dashboard-preview/render.py                          # docs/images/overview.png
    python3 tools/dashboard-preview/render.py --with-bot               # + docs/images/bot.png
    python3 tools/dashboard-preview/render.py --prometheus http://127.0.0.1:9090 \
        --start 1700000000 --end 1700000210                       # re-render existing data

Requires Python 3 and matplotlib (`pip install matplotlib`), `prometheus` on PATH.
"""

import argparse
import datetime as dt
import glob
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import LinearSegmentedColormap, PowerNorm, to_rgba  # noqa: E402
from matplotlib.patches import FancyBboxPatch, Rectangle  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# --------------------------------------------------------------------------------------
# Grafana dark theme
# --------------------------------------------------------------------------------------
BG = "#111217"
PANEL_BG = "#181b1f"
BORDER = "#2a2d33"
TEXT = "#ccccdc"
TEXT_DIM = "#8e8e98"
GRID = "#24272d"
NAMED = {
    "green": "#73bf69",
    "dark-green": "#37872d",
    "red": "#f2495c",
    "dark-red": "#c4162a",
    "orange": "#ff9830",
    "dark-orange": "#fa6400",
    "yellow": "#fade2a",
    "blue": "#5794f2",
    "purple": "#b877d9",
    "text": TEXT,
    "transparent": (0, 0, 0, 0),
}
# Grafana's "palette-classic".
PALETTE = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9",
           "#705da0", "#37872d", "#fade2a", "#447ebc", "#c15c17", "#890f02", "#0a437c",
           "#6d1f62", "#584477"]

GRID_ROW_PX = 30      # Grafana GRID_CELL_HEIGHT
GRID_MARGIN_PX = 8    # Grafana GRID_CELL_VMARGIN
HEADER_PX = 96
FOOTER_PX = 30
SIDE_PX = 12
DPI = 100


def color(c):
    if c is None:
        return NAMED["green"]
    if isinstance(c, str) and c in NAMED:
        return NAMED[c]
    if isinstance(c, str) and c.startswith("rgba"):
        r, g, b, a = [float(x) for x in re.findall(r"[\d.]+", c)]
        return (r / 255, g / 255, b / 255, a)
    return c


# --------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------
def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(url, timeout, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited with {proc.returncode} ({url})")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def stop(proc, name):
    if proc is None or proc.poll() is not None:
        return
    print(f"stopping {name} (pid {proc.pid})", file=sys.stderr)
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


# --------------------------------------------------------------------------------------
# Prometheus API
# --------------------------------------------------------------------------------------
class Prom:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def _get(self, path, **params):
        q = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{q}", timeout=30) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise RuntimeError(f"{params.get('query')}: {body}")
        return body["data"]

    def query(self, expr, t):
        data = self._get("/api/v1/query", query=expr, time=f"{t:.3f}")
        out = []
        for r in data["result"]:
            out.append((r["metric"], float(r["value"][1])))
        return out

    def query_range(self, expr, start, end, step):
        data = self._get("/api/v1/query_range", query=expr, start=f"{start:.3f}",
                         end=f"{end:.3f}", step=f"{step}")
        out = []
        for r in data["result"]:
            out.append((r["metric"], [(float(t), float(v)) for t, v in r["values"]]))
        return out


# --------------------------------------------------------------------------------------
# Dashboard JSON helpers
# --------------------------------------------------------------------------------------
def dur_s(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text)
    if not m:
        return None
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


VARS = {"bot": ".*", "namespace": ".*", "pod": ".*", "cluster": ".*", "job": ".*"}


def substitute(expr, interval="15s"):
    expr = re.sub(r"\$\{?(bot|namespace|pod|cluster|job)(?::[a-z]+)?\}?", lambda m: VARS[m.group(1)], expr)
    expr = expr.replace("$__rate_interval", "1m").replace("${__rate_interval}", "1m")
    expr = expr.replace("$__interval", interval).replace("${__interval}", interval)
    expr = expr.replace("$__range", "5m").replace("${__range}", "5m")
    return expr


def metric_str(m):
    labels = {k: v for k, v in m.items() if k != "__name__"}
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{m.get('__name__', '')}{{{inner}}}" if inner or "__name__" in m else "{}"


def legend(fmt, m):
    if not fmt or fmt == "__auto":
        return metric_str(m)
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda g: m.get(g.group(1), ""), fmt)


def threshold_color(value, thresholds):
    steps = (thresholds or {}).get("steps") or [{"color": "green", "value": None}]
    c = steps[0]["color"]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return color(c)
    for s in steps:
        if s.get("value") is None or value >= s["value"]:
            c = s["color"]
    return color(c)


def match_override(o, name):
    m = o.get("matcher", {})
    if m.get("id") == "byName":
        return m.get("options") == name
    if m.get("id") == "byRegexp":
        return re.fullmatch(m.get("options", ""), name) is not None
    return False


def field_props(panel, name):
    """Defaults of the panel with its overrides for field `name` applied."""
    fc = panel.get("fieldConfig", {})
    d = json.loads(json.dumps(fc.get("defaults", {})))
    for o in fc.get("overrides", []):
        if match_override(o, name):
            for p in o.get("properties", []):
                keys = p["id"].split(".")
                tgt = d
                for k in keys[:-1]:
                    tgt = tgt.setdefault(k, {})
                tgt[keys[-1]] = p.get("value")
    return d


def fmt_value(v, unit=None, decimals=None):
    if v is None:
        return "No data"
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if unit and unit.startswith("dateTime"):
        return f"{utc(v / 1000):%Y-%m-%d %H:%M:%S}"
    if unit == "s":
        a = abs(v)
        for lim, div, suf in ((60, 1, " s"), (3600, 60, " min"), (86400, 3600, " hour"),
                              (float("inf"), 86400, " day")):
            if a < lim:
                x = v / div
                break
        if suf == " s" and a < 1 and a > 0:
            return f"{v * 1000:.0f} ms"
        d = decimals if decimals is not None else (0 if x == int(x) or abs(x) >= 100 else 1)
        return f"{x:.{d}f}{suf}"
    suffix = ""
    if unit == "reqps":
        suffix = " req/s"
    a = abs(v)
    if a >= 1e6:
        s = f"{v / 1e6:.{1 if decimals is None else decimals}f} Mil"
    elif a >= 1e4:
        s = f"{v / 1e3:.{1 if decimals is None else decimals}f} K"
    else:
        if decimals is not None:
            d = decimals
        elif v == int(v):
            d = 0
        elif a >= 10:
            d = 1
        else:
            d = 2
        s = f"{v:.{d}f}"
    return s + suffix


# --------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------
class Canvas:
    def __init__(self, width_px, grid_rows, width_cols=24):
        self.w = width_px
        self.col_px = (width_px - 2 * SIDE_PX + GRID_MARGIN_PX) / width_cols
        self.h = HEADER_PX + grid_rows * (GRID_ROW_PX + GRID_MARGIN_PX) + FOOTER_PX
        self.fig = plt.figure(figsize=(self.w / DPI, self.h / DPI), dpi=DPI, facecolor=BG)

    def box(self, gp):
        """Pixel box (left, top, width, height) of a gridPos."""
        left = SIDE_PX + gp["x"] * self.col_px
        top = HEADER_PX + gp["y"] * (GRID_ROW_PX + GRID_MARGIN_PX)
        width = gp["w"] * self.col_px - GRID_MARGIN_PX
        height = gp["h"] * (GRID_ROW_PX + GRID_MARGIN_PX) - GRID_MARGIN_PX
        return left, top, width, height

    def axes(self, left, top, width, height, **kw):
        return self.fig.add_axes([left / self.w, 1 - (top + height) / self.h,
                                  width / self.w, height / self.h], **kw)

    def text(self, x_px, y_px, s, **kw):
        return self.fig.text(x_px / self.w, 1 - y_px / self.h, s, **kw)


def style_axes(ax):
    ax.set_facecolor(PANEL_BG)
    for s in ax.spines.values():
        s.set_visible(False)
    ax.tick_params(colors=TEXT_DIM, labelsize=7.5, length=0, pad=3)
    ax.grid(True, color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)


def draw_panel_frame(cv, panel):
    left, top, width, height = cv.box(panel["gridPos"])
    ax = cv.axes(left, top, width, height)
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    ax.add_patch(FancyBboxPatch((0.5, 0.5), width - 1, height - 1,
                                boxstyle="round,pad=0,rounding_size=3",
                                facecolor=PANEL_BG, edgecolor=BORDER, linewidth=1))
    cv.text(left + 8, top + 15, substitute(panel.get("title", "")), color=TEXT, fontsize=9.5,
            fontweight="bold", va="center", ha="left")
    # Content box below the 32 px title bar.
    return left + 8, top + 30, width - 16, height - 38


def no_data(cv, box):
    left, top, width, height = box
    cv.text(left + width / 2, top + height / 2, "No data", color=TEXT_DIM, fontsize=11,
            ha="center", va="center")


def time_axis(ax, start, end):
    ax.set_xlim(mdates.date2num(utc(start)), mdates.date2num(utc(end)))
    loc = mdates.AutoDateLocator(minticks=3, maxticks=7, tz=dt.timezone.utc)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz=dt.timezone.utc))


def utc(t):
    return dt.datetime.fromtimestamp(t, tz=dt.timezone.utc)


def series_calc(values, calc):
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return None
    return {"lastNotNull": vals[-1], "last": vals[-1], "max": max(vals), "min": min(vals),
            "mean": sum(vals) / len(vals)}.get(calc, vals[-1])


CALC_NAMES = {"lastNotNull": "Last *", "last": "Last", "max": "Max", "min": "Min",
              "mean": "Mean"}


def run_targets(prom, panel, ctx, instant=False):
    interval = panel.get("interval") or "15s"
    out = []
    for t in panel.get("targets", []):
        if t.get("hide") or not t.get("expr"):
            continue
        expr = substitute(t["expr"], interval)
        if instant:
            for m, v in prom.query(expr, ctx["end"]):
                out.append((t, m, v))
        else:
            step = ctx["step"]
            if "$__interval" in t["expr"] or "${__interval}" in t["expr"]:
                step = dur_s(interval)
            for m, vals in prom.query_range(expr, ctx["start"], ctx["end"], step):
                out.append((t, m, vals, step))
    return out


def draw_timeseries(cv, prom, panel, ctx):
    box = draw_panel_frame(cv, panel)
    res = run_targets(prom, panel, ctx)
    left, top, width, height = box
    if not res:
        no_data(cv, box)
        return
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    opts = panel.get("options", {})
    leg = opts.get("legend", {})
    calcs = leg.get("calcs", []) if leg.get("showLegend", True) else []
    series = []
    for i, (t, m, vals, step) in enumerate(res):
        name = legend(t.get("legendFormat"), m)
        series.append({"name": name, "vals": vals, "step": step, "i": i})
    series.sort(key=lambda s: s["name"])
    for i, s in enumerate(series):
        props = field_props(panel, s["name"])
        c = props.get("color", {})
        if c.get("mode") == "fixed":
            s["color"] = color(c.get("fixedColor"))
        else:
            s["color"] = PALETTE[i % len(PALETTE)]
        s["custom"] = props.get("custom", {})
    # Legend table below the plot.
    row_px = 15
    max_rows = max(1, int((height * 0.45) // row_px) - 1)
    shown = series[:max_rows]
    more = len(series) - len(shown)
    legend_px = 0
    if leg.get("showLegend", True):
        legend_px = (len(shown) + 1 + (1 if more else 0)) * row_px + 4
    plot_h = height - legend_px
    ax = cv.axes(left + 34, top, width - 40, plot_h - 16)
    style_axes(ax)
    custom = defaults.get("custom", {})
    stacking = custom.get("stacking", {}).get("mode", "none") == "normal"
    base = {}
    ymax = ymin = 0
    for s in series:
        cs = s["custom"]
        xs = [mdates.date2num(utc(t)) for t, _ in s["vals"]]
        ys = [v for _, v in s["vals"]]
        if stacking:
            ys = [v + base.get(t, 0) for (t, _), v in zip(s["vals"], ys)]
            lows = [base.get(t, 0) for t, _ in s["vals"]]
            for (t, _), v in zip(s["vals"], ys):
                base[t] = v
        else:
            lows = [0] * len(ys)
        ymax = max([ymax] + ys)
        ymin = min([ymin] + ys)
        ls = "-"
        lstyle = cs.get("lineStyle") or {}
        if lstyle.get("fill") == "dash":
            ls = (0, (5, 4))
        alpha = cs.get("fillOpacity", 0) / 100
        if lstyle.get("fill") == "dash":
            alpha = 0
        if cs.get("drawStyle") == "bars":
            # Grafana's time series bars: width factor 0.6 of the step, series overlap.
            slots = (ctx["end"] - ctx["start"]) / s["step"]
            slot_px = (width - 40) / max(slots, 1)
            edge = slot_px > 6
            # Below ~5 px per step the 0.6 gaps only make moire: draw the bars touching.
            w = s["step"] / 86400 * (0.6 if slot_px >= 5 else 1.0)
            hs = [y - lo for y, lo in zip(ys, lows)]
            ax.bar(xs, hs, bottom=lows, width=w, color=to_rgba(s["color"], alpha),
                   edgecolor=s["color"] if edge else "none", linewidth=1 if edge else 0)
        else:
            gap = s["step"] / 86400 * 1.5
            for sx, sy, sl in split_gaps(xs, ys, lows, gap):
                ax.plot(sx, sy, color=s["color"], linewidth=max(1.2, cs.get("lineWidth", 1)),
                        linestyle=ls)
                if alpha:
                    ax.fill_between(sx, sl, sy, color=s["color"], alpha=alpha * 0.9,
                                    linewidth=0)
    # Thresholds drawn as line (+area).
    tstyle = custom.get("thresholdsStyle", {}).get("mode", "off")
    if tstyle != "off":
        for st in defaults.get("thresholds", {}).get("steps", []):
            if st.get("value") is None or st.get("color") == "transparent":
                continue
            c = color(st["color"])
            ax.axhline(st["value"], color=c, linewidth=1, linestyle=(0, (4, 3)))
            if "area" in tstyle:
                ax.axhspan(st["value"], max(ymax, st["value"]) * 10 + 10, color=c, alpha=0.1,
                           linewidth=0)
    soft_min = custom.get("axisSoftMin")
    lo = min(0, ymin * 1.15)
    top_y = ymax * 1.15 if ymax > 0 else 1
    if tstyle != "off":
        for st in defaults.get("thresholds", {}).get("steps", []):
            if st.get("value") is not None and st.get("color") != "transparent":
                top_y = max(top_y, st["value"] * 1.3)
    ax.set_ylim(lo, top_y)
    unit = defaults.get("unit")
    decimals = defaults.get("decimals")
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(
        nbins=4, integer=decimals == 0, min_n_ticks=2))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(
        lambda v, _: fmt_value(v, unit, decimals if decimals is not None else None)))
    time_axis(ax, ctx["start"], ctx["end"])
    if not leg.get("showLegend", True):
        return
    # Legend table
    ly = top + plot_h + 2
    name_w = width - 16 - 70 * len(calcs)
    for j, c in enumerate(calcs):
        cv.text(left + name_w + 70 * (j + 1), ly + row_px / 2, CALC_NAMES.get(c, c),
                color="#6e9fff", fontsize=7.5, ha="right", va="center")
    for k, s in enumerate(shown):
        y = ly + (k + 1) * row_px + row_px / 2
        lsty = "-" if not (s["custom"].get("lineStyle") or {}).get("fill") == "dash" else "--"
        la = cv.axes(left + 2, y - 1.5, 12, 3)
        la.axis("off")
        la.plot([0, 1], [0.5, 0.5], color=s["color"], linewidth=3, linestyle=lsty)
        la.set_xlim(0, 1)
        la.set_ylim(0, 1)
        cv.text(left + 18, y, ellipsize(s["name"], name_w - 20), color=TEXT, fontsize=7.5,
                ha="left", va="center")
        for j, c in enumerate(calcs):
            v = series_calc([v for _, v in s["vals"]], c)
            cv.text(left + name_w + 70 * (j + 1), y, fmt_value(v, unit, decimals),
                    color=TEXT, fontsize=7.5, ha="right", va="center")
    if more:
        y = ly + (len(shown) + 1) * row_px + row_px / 2
        cv.text(left + 18, y, f"... {more} more series", color=TEXT_DIM, fontsize=7.5,
                ha="left", va="center")


def ellipsize(s, px, char_px=4.9):
    n = max(4, int(px / char_px))
    return s if len(s) <= n else s[: n - 1] + "…"


def split_gaps(xs, ys, lows, gap):
    segs, cur = [], ([], [], [])
    for x, y, lo in zip(xs, ys, lows):
        if cur[0] and x - cur[0][-1] > gap:
            segs.append(cur)
            cur = ([], [], [])
        cur[0].append(x)
        cur[1].append(y)
        cur[2].append(lo)
    if cur[0]:
        segs.append(cur)
    return segs


def mapped(value, mappings):
    for mp in mappings or []:
        if mp.get("type") == "value":
            key = fmt_value(value) if value is not None else None
            o = mp.get("options", {}).get(key)
            if o:
                return o.get("text", key), color(o.get("color")) if o.get("color") else None
    return None, None


def draw_state_timeline(cv, prom, panel, ctx):
    box = draw_panel_frame(cv, panel)
    res = run_targets(prom, panel, ctx)
    left, top, width, height = box
    if not res:
        no_data(cv, box)
        return
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    rows = sorted(((legend(t.get("legendFormat"), m), vals, step)
                   for t, m, vals, step in res), key=lambda r: r[0])
    label_px = min(230, max(len(r[0]) for r in rows) * 5.6 + 12)
    ax = cv.axes(left + label_px, top, width - label_px - 4, height - 16)
    style_axes(ax)
    ax.grid(False)
    n = len(rows)
    rh = panel.get("options", {}).get("rowHeight", 0.9)
    step_d = ctx["step"] / 86400
    for i, (name, vals, step) in enumerate(rows):
        y = n - 1 - i
        # Merge equal consecutive values into one bar; missing samples end a bar.
        run = None
        for t, v in vals + [(None, None)]:
            x = mdates.date2num(utc(t)) if t is not None else None
            if run and (v != run[1] or x is None or x - run[2] > step_d * 1.5):
                _, c = mapped(run[1], defaults.get("mappings"))
                c = c or threshold_color(run[1], defaults.get("thresholds"))
                ax.add_patch(Rectangle((run[0], y - rh / 2), run[2] + step_d - run[0], rh,
                                       facecolor=to_rgba(c, 0.8), edgecolor=PANEL_BG,
                                       linewidth=0.8))
                run = None
            if x is None:
                break
            if run is None:
                run = [x, v, x]
            else:
                run[2] = x
        cv.text(left + label_px - 6, top + (height - 16) * (i + 0.5) / n,
                ellipsize(name, label_px - 10), color=TEXT, fontsize=7.5, ha="right",
                va="center")
    ax.set_ylim(-0.5, n - 0.5)
    ax.set_yticks([])
    time_axis(ax, ctx["start"], ctx["end"])
    # Value mapping legend (Grafana shows mapped values in the legend when enabled; here it
    # is shown always, small, top right, so the colours can be read).
    labels = []
    for mp in defaults.get("mappings", []) or []:
        for k, o in sorted(mp.get("options", {}).items()):
            labels.append((o.get("text", k), color(o.get("color"))))
    x = left + width
    for text, c in reversed(labels):
        w = len(text) * 5.5 + 8
        x -= w + 14
        cv.fig.patches.append(Rectangle(((x) / cv.w, 1 - (top - 4) / cv.h), 8 / cv.w,
                                         8 / cv.h, facecolor=c, transform=cv.fig.transFigure,
                                         figure=cv.fig))
        cv.text(x + 11, top - 8, text, color=TEXT_DIM, fontsize=7.5, ha="left",
                va="center")


def stat_layout(n, width, height):
    best = None
    for cols in range(1, n + 1):
        rows = math.ceil(n / cols)
        tw, th = width / cols, height / rows
        score = min(tw / 3.2, th)
        if best is None or score > best[0]:
            best = (score, cols, rows)
    return best[1], best[2]


def draw_stat(cv, prom, panel, ctx):
    box = draw_panel_frame(cv, panel)
    res = run_targets(prom, panel, ctx, instant=True)
    left, top, width, height = box
    no_value = panel.get("fieldConfig", {}).get("defaults", {}).get("noValue")
    if not res and no_value is None:
        no_data(cv, box)
        return
    if not res:
        res = [({"legendFormat": ""}, {}, float(no_value) if re.fullmatch(r"-?[\d.]+", no_value)
                else float("nan"))]
    items = sorted(((legend(t.get("legendFormat"), m), v, t.get("refId", "")) for t, m, v in res),
                   key=lambda r: (r[0]))
    opts = panel.get("options", {})
    mode = opts.get("colorMode", "value")
    n = len(items)
    cols, rows = stat_layout(n, width, height)
    gap = 4
    tw = (width - gap * (cols - 1)) / cols
    th = (height - gap * (rows - 1)) / rows
    for k, (name, v, _) in enumerate(items):
        props = field_props(panel, name)
        unit, decimals = props.get("unit"), props.get("decimals")
        c = threshold_color(v, props.get("thresholds"))
        txt, mc = mapped(v, props.get("mappings"))
        if mc:
            c = mc
        r, col = divmod(k, cols)
        x0 = left + col * (tw + gap)
        y0 = top + r * (th + gap)
        if mode == "background":
            a = cv.axes(x0, y0, tw, th)
            a.axis("off")
            a.set_xlim(0, 1)
            a.set_ylim(0, 1)
            a.add_patch(FancyBboxPatch((0, 0), 1, 1, boxstyle="round,pad=0,rounding_size=0.02",
                                       facecolor=c, edgecolor="none", transform=a.transAxes))
            vc, nc = "white", (1, 1, 1, 0.92)
        else:
            vc, nc = c, TEXT
        value = txt or fmt_value(v, unit, decimals)
        vsize = max(9, min(th * 0.34, tw / max(4, len(value)) * 1.3) * 0.72)
        nsize = max(7, min(10.5, vsize * 0.42, tw / max(6, len(name)) * 1.35 * 0.72))
        if name not in ("", "{}") and (
                opts.get("textMode", "auto") == "auto" and n > 1 or
                opts.get("textMode") == "value_and_name"):
            cv.text(x0 + tw / 2, y0 + th * 0.28, name, color=nc, fontsize=nsize,
                    ha="center", va="center")
            cv.text(x0 + tw / 2, y0 + th * 0.62, value, color=vc, fontsize=vsize,
                    ha="center", va="center", fontweight="bold")
        else:
            cv.text(x0 + tw / 2, y0 + th / 2, value, color=vc, fontsize=vsize,
                    ha="center", va="center", fontweight="bold")


def table_frame(prom, panel, ctx):
    """Instant table queries with Grafana's merge + organize transformations."""
    res = run_targets(prom, panel, ctx, instant=True)
    refs = [t.get("refId") for t in panel.get("targets", []) if t.get("expr")]
    multi = len(refs) > 1
    label_cols, rows = [], {}
    for t, m, v in res:
        labels = {k: val for k, val in m.items() if k != "__name__"}
        for k in labels:
            if k not in label_cols:
                label_cols.append(k)
    for t, m, v in res:
        labels = {k: val for k, val in m.items() if k != "__name__"}
        key = tuple(labels.get(k, "") for k in label_cols)
        row = rows.setdefault(key, dict(zip(label_cols, key)))
        row["Value #" + t["refId"] if multi else "Value"] = v
    cols = ["Time"] + label_cols + ([f"Value #{r}" for r in refs] if multi else ["Value"])
    for tr in panel.get("transformations", []):
        if tr.get("id") == "organize":
            o = tr.get("options", {})
            ex = o.get("excludeByName", {})
            cols = [c for c in cols if not ex.get(c)]
            idx = o.get("indexByName") or {}
            if idx:
                cols.sort(key=lambda c: idx.get(c, 1000))
            ren = o.get("renameByName", {})
            new_rows = {}
            for k, r in rows.items():
                new_rows[k] = {ren.get(c, c): r.get(c) for c in cols}
            rows = new_rows
            cols = [ren.get(c, c) for c in cols]
    ordered = [rows[k] for k in sorted(rows)]
    return cols, ordered


def draw_table(cv, prom, panel, ctx):
    box = draw_panel_frame(cv, panel)
    left, top, width, height = box
    cols, rows = table_frame(prom, panel, ctx)
    if not rows:
        no_data(cv, box)
        return
    row_px = 26
    ax = cv.axes(left, top, width, height)
    ax.axis("off")
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    # Column widths: by the longest content.
    widths = []
    for c in cols:
        texts = [c] + [cell_text(panel, c, r.get(c)) for r in rows]
        widths.append(max(len(s) for s in texts) * 6.2 + 18)
    scale = width / sum(widths)
    widths = [w * scale for w in widths]
    x = 0
    for c, w in zip(cols, widths):
        ax.text(x + 8, row_px / 2, c, color="#6e9fff", fontsize=8, va="center", ha="left",
                fontweight="bold")
        x += w
    ax.plot([0, width], [row_px, row_px], color=BORDER, linewidth=1)
    for i, r in enumerate(rows):
        y = row_px * (i + 1)
        x = 0
        for c, w in zip(cols, widths):
            v = r.get(c)
            props = field_props(panel, c)
            cell = (props.get("custom", {}) or {}).get("cellOptions", {}) or {}
            fg = TEXT
            if isinstance(v, float):
                _, mc = mapped(v, props.get("mappings"))
                cc = mc or threshold_color(v, props.get("thresholds"))
                if cell.get("type") == "color-background":
                    ax.add_patch(Rectangle((x, y + 1), w - 1, row_px - 2, facecolor=cc,
                                           edgecolor="none"))
                    fg = "white"
                elif cell.get("type") == "color-text":
                    fg = cc
            ax.text(x + 8, y + row_px / 2, cell_text(panel, c, v), color=fg, fontsize=8,
                    va="center", ha="left")
            x += w
        ax.plot([0, width], [y + row_px, y + row_px], color=BORDER, linewidth=0.6)


def cell_text(panel, col, v):
    if v is None:
        return ""
    if isinstance(v, float):
        props = field_props(panel, col)
        text, _ = mapped(v, props.get("mappings"))
        if text is not None:
            return text
        return fmt_value(v, props.get("unit"), props.get("decimals"))
    return str(v)


def le_key(m):
    le = m.get("le", "+Inf")
    return float("inf") if le in ("+Inf", "Inf") else float(le)


def deaccumulate(series):
    """Grafana's 'heatmap' format: cumulative le buckets -> per-bucket counts."""
    series = sorted(series, key=lambda s: le_key(s[0]))
    out, prev = [], None
    for m, vals in series:
        if prev is None:
            out.append((m, vals))
        else:
            out.append((m, [(t, v - pv) for (t, v), (_, pv) in zip(vals, prev)]))
        prev = vals
    return out


def draw_heatmap(cv, prom, panel, ctx):
    box = draw_panel_frame(cv, panel)
    left, top, width, height = box
    res = run_targets(prom, panel, ctx)
    if not res:
        no_data(cv, box)
        return
    step = res[0][3]
    buckets = deaccumulate([(m, vals) for _, m, vals, _ in res])
    times = sorted({t for _, vals in buckets for t, _ in vals})
    opts = panel.get("options", {})
    ax = cv.axes(left + 44, top, width - 100, height - 16)
    style_axes(ax)
    ax.grid(False)
    import numpy as np
    grid = np.full((len(buckets), len(times)), np.nan)
    for i, (m, vals) in enumerate(buckets):
        for t, v in vals:
            grid[i, times.index(t)] = v
    floor = (opts.get("filterValues") or {}).get("le")
    if floor is not None:
        grid[grid <= floor] = np.nan
    xs = [mdates.date2num(utc(t - step)) for t in times] + [mdates.date2num(utc(times[-1]))]
    cmap = LinearSegmentedColormap.from_list("oranges", ["#3d2410", "#fa6400", "#ffd8a8"])
    vmax = np.nanmax(grid) if np.isfinite(np.nanmax(grid) if np.any(~np.isnan(grid)) else
                                          np.nan) else 1
    ax.pcolormesh(xs, range(len(buckets) + 1), grid, cmap=cmap,
                  norm=PowerNorm(0.5, vmin=0, vmax=max(vmax, 1)), edgecolors=PANEL_BG,
                  linewidth=1)
    unit = (opts.get("yAxis") or {}).get("unit")
    labels = [fmt_value(le_key(m), unit) if le_key(m) != float("inf") else "+Inf"
              for m, _ in buckets]
    ax.set_yticks([i + 0.5 for i in range(len(buckets))])
    ax.set_yticklabels(labels)
    ax.set_ylim(0, len(buckets))
    time_axis(ax, ctx["start"], ctx["end"])
    # Colour scale.
    ca = cv.axes(left + width - 44, top + 6, 8, height - 40)
    ca.imshow(np.linspace(1, 0, 64).reshape(-1, 1) ** 2, aspect="auto", cmap=cmap)
    ca.set_xticks([])
    ca.set_yticks([])
    for s in ca.spines.values():
        s.set_visible(False)
    cv.text(left + width - 32, top + 10, f"{vmax:.0f}" if vmax == vmax else "", color=TEXT_DIM,
            fontsize=7, va="center")
    cv.text(left + width - 32, top + height - 36, "0", color=TEXT_DIM, fontsize=7,
            va="center")


def draw_bargauge(cv, prom, panel, ctx):
    box = draw_panel_frame(cv, panel)
    left, top, width, height = box
    res = run_targets(prom, panel, ctx, instant=True)
    if not res:
        no_data(cv, box)
        return
    fmt = (panel.get("targets") or [{}])[0].get("format")
    items = [(m, v) for _, m, v in res]
    if fmt == "heatmap":
        dec = deaccumulate([(m, [(0, v)]) for m, v in items])
        items = [(m, vals[0][1]) for m, vals in dec]
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    t0 = (panel.get("targets") or [{}])[0]
    names = [legend(t0.get("legendFormat"), m) for m, _ in items]
    values = [v for _, v in items]
    vmax = defaults.get("max", max(values + [1]))
    vmin = defaults.get("min", 0)
    n = len(items)
    cmap = LinearSegmentedColormap.from_list("grylrd", ["#73bf69", "#fade2a", "#f2495c"])
    gap = 6
    bw = (width - gap * (n - 1)) / n
    bar_top, bar_h = top + 16, height - 34
    for i, (name, v) in enumerate(zip(names, values)):
        x = left + i * (bw + gap)
        frac = 0 if vmax == vmin else (v - vmin) / (vmax - vmin)
        a = cv.axes(x, bar_top, bw, bar_h)
        a.axis("off")
        a.set_xlim(0, 1)
        a.set_ylim(0, 1)
        a.add_patch(Rectangle((0, 0), 1, 1, facecolor="#22252b", edgecolor="none", zorder=0))
        if frac > 0:
            import numpy as np
            grad = np.linspace(0, frac, 64).reshape(-1, 1)
            a.imshow(grad, extent=(0, 1, 0, frac), origin="lower", aspect="auto", cmap=cmap,
                     vmin=0, vmax=1, zorder=1)
            a.set_xlim(0, 1)
            a.set_ylim(0, 1)
        vc = cmap(frac)
        cv.text(x + bw / 2, top + 6, fmt_value(v, defaults.get("unit"),
                                               defaults.get("decimals")),
                color=vc, fontsize=8.5, ha="center", va="center", fontweight="bold")
        cv.text(x + bw / 2, top + height - 9, name, color=TEXT, fontsize=7, ha="center",
                va="center")


def draw_row(cv, panel):
    left, top, width, _ = cv.box(panel["gridPos"])
    cv.text(left + 2, top + 16, "⌄  " + substitute(panel.get("title", "")), color=TEXT, fontsize=11,
            fontweight="bold", va="center", ha="left")


DRAW = {
    "timeseries": draw_timeseries,
    "graph": draw_timeseries,
    "state-timeline": draw_state_timeline,
    "stat": draw_stat,
    "table": draw_table,
    "heatmap": draw_heatmap,
    "bargauge": draw_bargauge,
}


def flatten(panels):
    out = []
    for p in panels:
        out.append(p)
        out.extend(p.get("panels", []) if p.get("type") == "row" else [])
    return out


def render(prom, dashboard_path, out_path, ctx, width):
    with open(dashboard_path) as f:
        dash = json.load(f)
    panels = flatten(dash["panels"])
    grid_rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    cv = Canvas(width, grid_rows)
    # Header: title, variables, time range.
    cv.text(SIDE_PX + 2, 24, "Dashboards  ›  " + dash.get("title", ""), color=TEXT,
            fontsize=14, va="center", ha="left")
    rng = f"{utc(ctx['start']):%Y-%m-%d %H:%M:%S} to {utc(ctx['end']):%H:%M:%S} UTC"
    cv.text(width - SIDE_PX, 24, "🕓 " + rng if False else rng, color=TEXT, fontsize=9,
            va="center", ha="right")
    x = SIDE_PX
    for v in dash.get("templating", {}).get("list", []):
        if v.get("hide") == 2:
            continue
        label = v.get("label") or v["name"]
        value = "Prometheus" if v.get("type") == "datasource" else (
            "All" if VARS.get(v["name"], ".*") == ".*" else VARS[v["name"]])
        lw = len(label) * 7.2 + 18
        vw = len(value) * 7.2 + 34
        a = cv.axes(x, 50, lw + vw, 26)
        a.axis("off")
        a.set_xlim(0, lw + vw)
        a.set_ylim(0, 26)
        a.add_patch(Rectangle((0, 0), lw, 26, facecolor="#22252b", edgecolor=BORDER))
        a.add_patch(Rectangle((lw, 0), vw, 26, facecolor=BG, edgecolor=BORDER))
        a.text(8, 13, label, color=TEXT, fontsize=8.5, va="center")
        a.text(lw + 8, 13, value + "  ⌄", color=TEXT, fontsize=8.5, va="center")
        x += lw + vw + 8
    cv.text(width - SIDE_PX, 63, ctx["note"], color=TEXT_DIM, fontsize=7.5, va="center",
            ha="right")
    for p in panels:
        kind = p.get("type")
        try:
            if kind == "row":
                draw_row(cv, p)
            elif kind in DRAW:
                DRAW[kind](cv, prom, p, ctx)
            else:
                box = draw_panel_frame(cv, p)
                no_data(cv, box)
        except Exception as e:  # keep the other panels
            print(f"panel {p.get('id')} {p.get('title')!r}: {e}", file=sys.stderr)
            raise
    cv.text(SIDE_PX, cv.h - FOOTER_PX / 2,
            f"Rendered by tools/dashboard-preview/render.py from {os.path.relpath(dashboard_path, REPO)}"
            " and real Prometheus data of the exporter's demo. Not a Grafana screenshot.",
            color=TEXT_DIM, fontsize=7.5, va="center", ha="left")
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    cv.fig.savefig(out_path, dpi=DPI, facecolor=BG)
    plt.close(cv.fig)
    print(f"wrote {os.path.relpath(out_path, REPO)} ({cv.w}x{cv.h} px)", file=sys.stderr)


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(REPO, "target/debug/discord-gateway-exporter"))
    ap.add_argument("--prometheus-bin", default=shutil.which("prometheus") or "prometheus")
    ap.add_argument("--speed", type=float, default=1.0,
                    help="demo --speed (default 1: see README.md for why not 20)")
    ap.add_argument("--duration", type=float, default=300.0,
                    help="seconds of demo to record before rendering (default 300 = the "
                         "dashboards' $__range of 5m)")
    ap.add_argument("--step", type=float, default=1.0, help="query_range step (default 1s)")
    ap.add_argument("--width", type=int, default=1600)
    ap.add_argument("--dashboard", default=os.path.join(REPO, "dashboards/overview.json"))
    ap.add_argument("--out", default=os.path.join(REPO, "docs/images/overview.png"))
    ap.add_argument("--with-bot", action="store_true",
                    help="also render dashboards/bot.json to docs/images/bot.png")
    ap.add_argument("--bot", default="AgentBroker", help="$bot of the bot dashboard")
    ap.add_argument("--prometheus", help="render from this Prometheus instead of starting one "
                    "(needs --start and --end)")
    ap.add_argument("--start", type=float)
    ap.add_argument("--end", type=float)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()

    jobs = [(args.dashboard, args.out)]
    if args.with_bot:
        jobs.append((os.path.join(REPO, "dashboards/bot.json"),
                     os.path.join(REPO, "docs/images/bot.png")))

    if args.prometheus:
        if args.start is None or args.end is None:
            ap.error("--prometheus needs --start and --end (unix seconds)")
        ctx = {"start": args.start, "end": args.end, "step": args.step,
               "note": "Data: Prometheus at " + args.prometheus}
        for d, o in jobs:
            render_one(Prom(args.prometheus), d, o, ctx, args)
        return

    if not os.access(args.binary, os.X_OK):
        sys.exit(f"{args.binary} not found: run `cargo build` first")
    tmp = tempfile.mkdtemp(prefix="dge-preview-")
    demo_port, prom_port = free_port(), free_port()
    rules = sorted(glob.glob(os.path.join(REPO, "alerts", "*.rules.yml")))
    with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n")
        f.write("rule_files:\n" + "".join(f"  - {json.dumps(r)}\n" for r in rules))
        f.write("scrape_configs:\n  - job_name: discord-gateway-exporter\n"
                "    honor_labels: true\n"
                f"    static_configs:\n      - targets: [\"127.0.0.1:{demo_port}\"]\n")
    prom_proc = demo_proc = None
    prom_log = open(os.path.join(tmp, "prometheus.log"), "w")
    demo_log = open(os.path.join(tmp, "demo.log"), "w")
    try:
        prom_proc = subprocess.Popen(
            [args.prometheus_bin, f"--config.file={tmp}/prometheus.yml",
             f"--storage.tsdb.path={tmp}/data", f"--web.listen-address=127.0.0.1:{prom_port}",
             "--web.console.templates=/nonexistent", "--web.console.libraries=/nonexistent"],
            stdout=prom_log, stderr=subprocess.STDOUT, cwd=tmp)
        prom_url = f"http://127.0.0.1:{prom_port}"
        wait_http(prom_url + "/-/ready", 60, prom_proc)
        print(f"prometheus pid {prom_proc.pid} on {prom_url}", file=sys.stderr)
        # Start the demo only now so that Prometheus sees the incident from its first second.
        demo_proc = subprocess.Popen(
            [args.binary, "demo", "--listen", f"127.0.0.1:{demo_port}", "--speed",
             f"{args.speed:g}"], stdout=demo_log, stderr=subprocess.STDOUT, cwd=tmp)
        start = time.time()
        wait_http(f"http://127.0.0.1:{demo_port}/metrics", 30, demo_proc)
        print(f"demo pid {demo_proc.pid} on 127.0.0.1:{demo_port}, speed {args.speed:g}; "
              f"recording {args.duration:.0f}s", file=sys.stderr)
        while time.time() - start < args.duration:
            if demo_proc.poll() is not None or prom_proc.poll() is not None:
                raise RuntimeError(f"a process exited early; logs in {tmp}")
            time.sleep(max(0, min(30, args.duration - (time.time() - start))))
            print(f"  {time.time() - start:5.0f}s / {args.duration:.0f}s", file=sys.stderr)
        time.sleep(2)  # one more scrape and rule evaluation
        end = time.time()
        print(f"recorded --start {start:.3f} --end {end:.3f}", file=sys.stderr)
        ctx = {"start": start, "end": end, "step": args.step,
               "note": f"Data: exporter demo (--speed {args.speed:g}, {args.duration:.0f} s), "
                       f"real Prometheus {prom_version(args.prometheus_bin)}, scrape 1s"}
        for d, o in jobs:
            render_one(Prom(prom_url), d, o, ctx, args)
    finally:
        stop(demo_proc, "demo")
        stop(prom_proc, "prometheus")
        prom_log.close()
        demo_log.close()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def render_one(prom, dashboard, out, ctx, args):
    # The bot dashboard is shown for one bot (--bot), the overview for all of them.
    VARS["bot"] = args.bot if os.path.basename(dashboard) == "bot.json" else ".*"
    render(prom, dashboard, out, ctx, args.width)


def prom_version(binary):
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
        m = re.search(r"version (\S+)", out)
        return m.group(1) if m else ""
    except OSError:
        return ""


if __name__ == "__main__":
    main()
