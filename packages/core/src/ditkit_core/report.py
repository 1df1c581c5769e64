"""One HTML page a person can open: samples to look at or listen to, metrics next to their controls and goals, loss
curves. ``ditkit <app> demo`` writes a ``demo.json`` manifest per app; :func:`write_report` turns a folder of them into
``index.html`` (everything linked relatively, so the folder can be copied or served as is).

A demo function returns a plain dict (all keys optional but ``metrics`` / ``media``)::

    {
      "title": "Text-to-speech",
      "summary": "one paragraph: what was generated, from which weights",
      "media": [{"path": "sample_0.wav", "caption": "..."}],      # .png .gif .jpg .svg / .wav .mp3 / .mp4 .webm
      "metrics": [{"name": "probe CER", "model": 0.12, "controls": {"ground truth": 0.06}, "goal": "<= 1.5x GT",
                   "met": true}],                                   # "check": false: a timing, not a figure
      "log": "path/to/train_log.csv",                               # loss curve (step + *loss* columns)
      "notes": ["anything a reader should know"]
    }

Paths are absolute, relative to the working directory, or relative to the app's output folder;
:func:`write_manifest` checks that each exists.
"""

from __future__ import annotations

import csv
import html
import json
import math
import os
import platform
import shutil
from pathlib import Path
from typing import Any

MANIFEST = "demo.json"
IMAGE = {".png", ".gif", ".jpg", ".jpeg", ".svg", ".webp"}
AUDIO = {".wav", ".mp3", ".ogg", ".flac"}
VIDEO = {".mp4", ".webm"}


def _rel(path: str | os.PathLike, root: Path) -> str:
    p = Path(path)
    if not p.is_absolute() and not p.exists():  # relative to the working directory, else to the app folder
        p = root / p
    if not p.exists():
        raise FileNotFoundError(f"demo manifest: {p} does not exist")
    try:
        return p.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:  # outside the app folder (e.g. a shipped train_log.csv): copy it in
        dest = root / p.name
        shutil.copyfile(p, dest)
        return dest.name


def _number(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def write_manifest(result: dict[str, Any], out: str | os.PathLike, app: str, help: str = "") -> Path:
    """Check and write an app's demo result as ``<out>/demo.json`` (media and log paths made relative to ``out``).

    Raises:
        TypeError: ``result`` is not a dict. FileNotFoundError: a media or log file does not exist.
        ValueError: a media file of a type the page cannot show.
    """
    if not isinstance(result, dict):
        raise TypeError(f"ditkit {app} demo: the demo function returned {type(result).__name__}, not a dict")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    media = []
    for m in result.get("media", []):
        m = {"path": m} if isinstance(m, (str, os.PathLike)) else dict(m)
        suffix = Path(m["path"]).suffix.lower()
        if suffix not in IMAGE | AUDIO | VIDEO:
            raise ValueError(f"ditkit {app} demo: cannot show {m['path']} (suffix {suffix!r})")
        media.append({**m, "path": _rel(m["path"], root)})
    metrics = [
        {
            **row,
            "model": _number(row.get("model")),
            "controls": {k: _number(v) for k, v in row.get("controls", {}).items()},
        }
        for row in result.get("metrics", [])
    ]
    data = {
        "app": app,
        "title": result.get("title", app),
        "help": help,
        "summary": result.get("summary", ""),
        "media": media,
        "metrics": metrics,
        "log": _rel(result["log"], root) if result.get("log") else None,
        "notes": list(result.get("notes", [])),
        "seconds": result.get("seconds"),
    }
    path = root / MANIFEST
    path.write_text(json.dumps(data, indent=1))
    return path


def read_loss_log(path: str | os.PathLike) -> dict[str, tuple[list[float], list[float]]]:
    """``{column: (steps, values)}`` of the ``*loss*`` columns of a Lightning ``metrics.csv`` or ``train_log.csv``."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    series: dict[str, tuple[list[float], list[float]]] = {}
    for r in rows:
        for k, v in r.items():
            if k and "loss" in k and v not in (None, "") and r.get("step") not in (None, ""):
                xs, ys = series.setdefault(k, ([], []))
                xs.append(float(r["step"]))
                ys.append(float(v))
    return series


def plot_losses(log: str | os.PathLike, png: str | os.PathLike, title: str = "") -> Path | None:
    """Loss curves of a training log as a PNG (train losses smoothed by a running mean); None if it has no loss."""
    series = read_loss_log(log)
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for name, (xs, ys) in sorted(series.items()):
        y = np.asarray(ys)
        if name.startswith("train") and len(y) > 20:
            k = max(len(y) // 50, 1)
            y = np.convolve(y, np.ones(k) / k, mode="same")
        ax.plot(xs, y, label=name, lw=1.2, marker="o" if len(xs) < 30 else None, ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if all(min(ys) > 0 for _, ys in series.values()):
        ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    png = Path(png)
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def _media_html(m: dict[str, Any], prefix: str) -> str:
    src = html.escape(f"{prefix}/{m['path']}")
    cap = html.escape(m.get("caption", Path(m["path"]).name))
    suffix = Path(m["path"]).suffix.lower()
    if suffix in AUDIO:
        tag = f'<audio controls preload="metadata" src="{src}"></audio>'
    elif suffix in VIDEO:
        tag = f'<video controls muted loop preload="metadata" src="{src}"></video>'
    else:
        tag = f'<a href="{src}"><img src="{src}" alt="{cap}" loading="eager"></a>'
    return f'<figure class="media">{tag}<figcaption>{cap}</figcaption></figure>'


def _metrics_html(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    controls = list(dict.fromkeys(k for r in rows for k in r.get("controls", {})))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["metric", "model", *controls, "goal", ""])
    body = []
    for r in rows:
        met = r.get("met")
        mark = (
            '<td class="met">met</td>'
            if met is True
            else '<td class="miss">not met</td>'
            if met is False
            else "<td></td>"
        )
        cells = [html.escape(str(r.get("name", ""))), _fmt(r.get("model"))]
        cells += [_fmt(r.get("controls", {}).get(c)) for c in controls]
        cells.append(html.escape(str(r.get("goal", ""))))
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + mark + "</tr>")
    return f'<table class="metrics"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


STYLE = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} .sub{color:#666;margin-top:0}
section{border-top:1px solid #ddd;margin-top:2em;padding-top:.5em}
.gallery{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
figure.media{margin:0;max-width:380px} figure.media img,figure.media video{max-width:380px;max-height:320px;
border:1px solid #eee;image-rendering:auto} figcaption{font-size:.8em;color:#555}
table{border-collapse:collapse;font-size:.9em;margin:.6em 0} td,th{border:1px solid #ddd;padding:3px 8px;
text-align:right} td:first-child,th:first-child{text-align:left} .met{color:#187a2f;font-weight:600}
.miss{color:#b3261e;font-weight:600} .error{background:#fde8e8;padding:.5em;white-space:pre-wrap;font-size:.8em}
.notes{font-size:.85em;color:#444} #status{font-size:.85em;color:#555}
"""

CHECK_MEDIA = """
window.addEventListener('load', () => {
  const els = [...document.querySelectorAll('img, audio, video')];
  const ok = el => el.tagName === 'IMG' ? el.complete && el.naturalWidth > 0 : el.readyState >= 1;
  const done = () => {
    const n = els.filter(ok).length;
    document.getElementById('status').textContent = `${n} of ${els.length} media files loaded`;
    document.body.dataset.mediaLoaded = n; document.body.dataset.mediaTotal = els.length;
  };
  els.forEach(el => { el.addEventListener('loadedmetadata', done); el.addEventListener('error', done); });
  done();
});
"""


def write_report(root: str | os.PathLike, apps: list[str] | None = None, title: str = "ditkit demo") -> Path:
    """``<root>/index.html`` from the ``<root>/<app>/demo.json`` manifests (and ``<root>/<app>/error.txt`` for an app
    whose demo failed); loss curves are drawn to ``<root>/<app>/loss.png``. Returns the page's path."""
    root = Path(root)
    names = apps or sorted(p.parent.name for p in root.glob(f"*/{MANIFEST}"))
    names = list(dict.fromkeys([*names, *sorted(p.parent.name for p in root.glob("*/error.txt"))]))
    summary = json.loads((root / "timing.json").read_text()) if (root / "timing.json").exists() else {}
    toc, sections, rows = [], [], []
    for name in names:
        d = root / name
        toc.append(f'<a href="#{html.escape(name)}">{html.escape(name)}</a>')
        if not (d / MANIFEST).exists():
            err = (d / "error.txt").read_text(errors="replace")[-4000:] if (d / "error.txt").exists() else "no output"
            sections.append(
                f'<section id="{html.escape(name)}"><h2>{html.escape(name)}</h2><p class="miss">the demo failed</p>'
                f'<div class="error">{html.escape(err)}</div></section>'
            )
            rows.append(f"<tr><td>{html.escape(name)}</td><td colspan=3 class=miss>failed</td></tr>")
            continue
        m = json.loads((d / MANIFEST).read_text())
        parts = [f'<section id="{html.escape(name)}"><h2>{html.escape(m["title"])}</h2>']
        if m.get("help"):
            parts.append(f'<p class="sub">{html.escape(m["help"])}</p>')
        if m.get("summary"):
            parts.append(f"<p>{html.escape(m['summary'])}</p>")
        parts.append(_metrics_html(m.get("metrics", [])))
        media = list(m.get("media", []))
        if m.get("log") and plot_losses(d / m["log"], d / "loss.png", title=f"{name}: training loss"):
            media.append({"path": "loss.png", "caption": "training loss (from the run's log)"})
        parts.append('<div class="gallery">' + "".join(_media_html(x, name) for x in media) + "</div>")
        if m.get("notes"):
            parts.append('<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in m["notes"]) + "</ul>")
        parts.append("</section>")
        sections.append("".join(parts))
        goals = [r for r in m.get("metrics", []) if r.get("met") is not None]
        met = sum(r["met"] is True for r in goals)
        secs = summary.get("apps", {}).get(name)
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td>{len(m.get('media', []))}</td><td>{met} of {len(goals)}</td>"
            f"<td>{'' if secs is None else f'{secs:.0f} s'}</td></tr>"
        )
    import torch

    host = f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}"
    wall = f", {summary['wall_seconds']:.0f} s wall" if "wall_seconds" in summary else ""
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<link rel="icon" href="data:,"><style>{STYLE}</style></head>
<body><h1>{html.escape(title)}</h1>
<p class="sub">Every domain sampled and evaluated from its shipped weights ({html.escape(host)}{wall}).
<span id="status"></span></p>
<nav>{" · ".join(toc)}</nav>
<table class="overview"><thead><tr><th>app</th><th>media</th><th>goals met</th><th>time</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
{"".join(sections)}
<script>{CHECK_MEDIA}</script>
</body></html>
"""
    out = root / "index.html"
    out.write_text(page, encoding="utf-8")
    return out


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
)


def check_page(
    page: str | os.PathLike, screenshot: str | os.PathLike | None = None, timeout_s: float = 30.0
) -> dict[str, Any]:
    """Open a report in headless Chromium (Playwright driving the system's ``chromium``); wait until every image,
    audio and video element has loaded (or failed) and return ``{"loaded", "total", "failed", "console_errors"}``.

    ``failed`` lists the media elements that did not load (their ``src``); ``console_errors`` the page's console
    errors and uncaught exceptions. A full-page PNG goes to ``screenshot`` when given.
    """
    from playwright.sync_api import sync_playwright

    url = Path(page).resolve().as_uri()
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_FLAGS))
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 900})
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.goto(url, wait_until="load")
            settled = """() => [...document.querySelectorAll('img, audio, video')].every(el =>
                el.tagName === 'IMG' ? el.complete : (el.readyState >= 1 || el.error !== null))"""
            tab.wait_for_function(settled, timeout=timeout_s * 1000)
            failed = tab.evaluate(
                """() => [...document.querySelectorAll('img, audio, video')].filter(el =>
                    el.tagName === 'IMG' ? !(el.naturalWidth > 0) : (el.error !== null || el.readyState < 1))
                    .map(el => el.getAttribute('src'))"""
            )
            total = tab.evaluate("() => document.querySelectorAll('img, audio, video').length")
            if screenshot is not None:
                Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                tab.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return {"loaded": total - len(failed), "total": total, "failed": failed, "console_errors": errors}


__all__ = ["MANIFEST", "check_page", "plot_losses", "read_loss_log", "write_manifest", "write_report"]
