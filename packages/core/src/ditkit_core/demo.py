"""``ditkit demo``: every installed app's ``demo`` (samples + quick metrics from its shipped weights) and one report.

Each app runs ``ditkit <app> demo --out <out>/<app>`` in its own process (``--jobs`` at a time, one thread each), so a
failing app is shown as failed on the page instead of stopping the others. An overall progress bar counts finished
apps with an ETA; each app's own output goes to ``<out>/<app>/log.txt``. The page is ``<out>/index.html``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

# cheap-to-expensive order, so the page fills early and the slowest apps overlap
ORDER = ("toy2d", "molecules", "sits", "shapes", "policy", "audio_video", "tts")


FIGURES = "figures.json"


def compare_figures(manifest: str | Path, figures: str | Path) -> list[dict[str, object]]:
    """Each recorded figure of an app's shipped weights (``figures.json``: ``{metric name: {"value", "tol"}}``)
    against the same metric of a demo run (``demo.json``): rows ``{app, metric, expected, got, tol, ok}``; a metric
    missing from the run counts as a mismatch."""
    man = json.loads(Path(manifest).read_text())
    got = {m["name"]: m.get("model") for m in man.get("metrics", [])}
    rows = []
    for name, ref in json.loads(Path(figures).read_text()).items():
        value = got.get(name)
        ok = isinstance(value, (int, float)) and abs(float(value) - ref["value"]) <= ref["tol"]
        rows.append(
            {"app": man["app"], "metric": name, "expected": ref["value"], "got": value, "tol": ref["tol"], "ok": ok}
        )
    return rows


def record_figures(manifest: str | Path, figures: str | Path, tol: float) -> Path:
    """Write the metrics of a demo run as the shipped weights' reference figures (absolute tolerance ``tol``); rows
    marked ``"check": false`` (timings) are left out."""
    man = json.loads(Path(manifest).read_text())
    data = {
        m["name"]: {"value": m["model"], "tol": tol}
        for m in man.get("metrics", [])
        if isinstance(m.get("model"), (int, float)) and m.get("check", True)  # timings are not figures
    }
    Path(figures).write_text(json.dumps(data, indent=1) + "\n")
    return Path(figures)


def demo_apps() -> dict[str, object]:
    """Installed apps that declare a ``demo`` command, in demo order (entry points read, nothing heavy imported)."""
    apps = {}
    for ep in entry_points(group="ditkit.apps"):
        app = ep.load()
        if "demo" in getattr(app, "commands", {}):
            apps[ep.name] = app
    rank = {n: i for i, n in enumerate(ORDER)}
    return {n: apps[n] for n in sorted(apps, key=lambda n: (rank.get(n, len(ORDER)), n))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ditkit demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="outputs/demo", help="report folder (default: outputs/demo)")
    p.add_argument("--apps", nargs="+", help="apps to run (default: every installed app with a demo)")
    p.add_argument("--jobs", type=int, default=2, help="apps run at once (default: 2)")
    p.add_argument("--device", default="cpu", help="torch device for every app")
    p.add_argument(
        "--no-check",
        action="store_true",
        help="skip opening the page in headless Chromium (screenshot.png, media check)",
    )
    p.add_argument(
        "--check-figures",
        action="store_true",
        help="compare every app's demo metrics with its shipped weights' figures.json (exit 1 on a mismatch)",
    )
    p.add_argument(
        "--record-figures", type=float, metavar="TOL", help="write the metrics as figures.json with this tolerance"
    )
    args = p.parse_args(argv)
    from tqdm.auto import tqdm

    from ditkit_core.report import write_report

    known = demo_apps()
    apps = args.apps or list(known)
    unknown = sorted(set(apps) - set(known))
    if unknown:
        print(f"ditkit demo: no demo for {', '.join(unknown)}; apps with one: {', '.join(known)}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "PYTHONUNBUFFERED": "1"}
    start, times, failed = time.perf_counter(), {}, []
    pending, running = list(apps), {}
    bar = tqdm(total=len(apps), desc="demo", unit="app")
    while pending or running:
        while pending and len(running) < max(args.jobs, 1):
            name = pending.pop(0)
            d = out / name
            d.mkdir(parents=True, exist_ok=True)
            (d / "error.txt").unlink(missing_ok=True)
            log = open(d / "log.txt", "w")  # noqa: SIM115 (closed when the process ends)
            cmd = [sys.executable, "-m", "ditkit_core.cli", name, "demo", "--out", str(d), "--device", args.device]
            running[name] = (
                subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env),
                log,
                time.perf_counter(),
            )
            bar.set_postfix_str(", ".join(running))
        time.sleep(0.2)
        for name, (proc, log, t0) in list(running.items()):
            if proc.poll() is None:
                continue
            log.close()
            times[name] = time.perf_counter() - t0
            if proc.returncode != 0:
                failed.append(name)
                (out / name / "error.txt").write_text((out / name / "log.txt").read_text(errors="replace")[-6000:])
            del running[name]
            bar.update(1)
            bar.write(f"{name}: {'failed' if proc.returncode else 'done'} in {times[name]:.0f} s")
    bar.close()
    wall = time.perf_counter() - start
    (out / "timing.json").write_text(json.dumps({"wall_seconds": wall, "apps": times}, indent=1))
    page = write_report(out, apps)
    print(f"wrote {page} ({wall:.0f} s wall{'; failed: ' + ', '.join(failed) if failed else ''})")
    bad_page = False
    if not args.no_check:
        from ditkit_core.report import CHROMIUM, check_page

        if Path(CHROMIUM).exists():
            res = check_page(page, out / "screenshot.png")
            bad_page = bool(res["failed"] or res["console_errors"])
            print(
                f"chromium: {res['loaded']} of {res['total']} media files loaded; console errors: "
                f"{res['console_errors'] or 'none'}; screenshot {out / 'screenshot.png'}"
            )
        else:
            print(f"chromium: {CHROMIUM} not found (make setup installs it); page not checked")
    bad_figures = False
    for name in apps:
        shipped = getattr(known[name], "pretrained", None)
        manifest = out / name / "demo.json"
        if not shipped or not manifest.exists():
            continue
        if args.record_figures is not None:
            print(f"wrote {record_figures(manifest, Path(shipped) / FIGURES, args.record_figures)}")
        if args.check_figures and (Path(shipped) / FIGURES).exists():
            for row in compare_figures(manifest, Path(shipped) / FIGURES):
                bad_figures |= not row["ok"]
                print(json.dumps(row))
    return 1 if failed or bad_page or bad_figures else 0


if __name__ == "__main__":
    sys.exit(main())
