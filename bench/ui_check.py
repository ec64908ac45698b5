"""The MLflow UI checked in a real browser: `mlflow ui` on a loopback port, read by headless Chromium.

MLflow's UI is a React single-page app, so each page is read as the DOM that Chromium has rendered
(`--dump-dom`, after `--virtual-time-budget`: virtual time stands still while requests are pending, so
the budget only covers the app's own timers), with a screenshot from the same load. A page that lacks
what it should show, or whose load hangs, is loaded again with a doubled budget, twice at most,
before the check fails.
No Python dependency: only a Chromium binary (Debian's `chromium` package).

For one run it checks:
- the runs view (`#/experiments/<id>/runs`) lists the run (its name, a link to its page), its datasets
  and its model (`NAME vN` of each registered version, else the logged models' names);
- the run page lists the per-class metrics (`test/precision|recall|f1/<class>`), links to each
  registered model version and to the logged models;
- the artifact view of `confusion_matrix.png` shows it as an image (an <img> whose source the app
  made from the downloaded bytes), and the server hands out those bytes as a PNG.

As a script, on a store that already holds runs (by default the newest run of `ferlight`):
    python bench/ui_check.py [--tracking-uri sqlite:///mlflow.db] [--run-id ID] [--screenshots DIR]
"""

from __future__ import annotations

import argparse
import html
import json
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
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WINDOW = "1920,1200"  # wide enough for the runs table to render its Models column beside MLflow's side panel
PER_CLASS = re.compile(r"^test/(precision|recall|f1)/")


def chromium() -> str | None:
    """The Chromium binary on PATH, or None."""
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mlflow_ui(store_uri: str, *, cwd: str | Path | None = None, timeout: float = 180) -> Iterator[str]:
    """`mlflow ui` on ``store_uri`` at a free loopback port, up and healthy; its base URL. One worker and
    no job runner (MLflow 3's default starts four workers and a job runner with consumers, which would
    outlive a plain terminate); the whole process group is stopped on the way out."""
    cwd = Path(cwd or Path.cwd())
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    for attempt in range(3):  # another process may take the free port before the server binds it
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = tempfile.TemporaryFile(mode="w+")
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store_uri, "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"],
            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            if _healthy(base, server, timeout):
                yield base
                return
            log.seek(0)
            output = log.read()
            if "address already in use" not in output.lower() or attempt == 2:
                raise RuntimeError(f"mlflow ui did not come up on {base}:\n{output[-3000:]}")
        finally:
            _stop(server)
            log.close()


def _healthy(base: str, server: subprocess.Popen, timeout: float) -> bool:
    """Whether the server at ``base`` answers /health before it exits or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while server.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=5) as reply:
                if reply.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the process group (the CLI and its uvicorn child), SIGKILL if it lingers."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    else:  # the CLI is gone; a child may not be
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def render(url: str, *, screenshot: Path | None = None, budget_ms: int = 15000, timeout: float = 120) -> str:
    """The DOM that headless Chromium renders for ``url``; a screenshot of it too if asked.
    subprocess.TimeoutExpired if Chromium takes longer than ``timeout`` seconds (it has hung with a
    screenshot and a budget of a second or less, never with the default)."""
    browser = chromium()
    if browser is None:
        raise RuntimeError(f"no Chromium on PATH (looked for {', '.join(BROWSERS)})")
    with tempfile.TemporaryDirectory(prefix="ui-check-chromium-", ignore_cleanup_errors=True) as profile:
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                   "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
                   f"--window-size={WINDOW}", f"--virtual-time-budget={budget_ms}"]
        if screenshot is not None:
            command.append(f"--screenshot={Path(screenshot).resolve()}")
        out = subprocess.run([*command, "--dump-dom", url], capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0 or not out.stdout.strip():
        raise RuntimeError(f"chromium failed on {url} (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return out.stdout


def page_text(dom: str) -> str:
    """The text of a DOM dump: no styles or scripts, entities decoded, whitespace collapsed."""
    dom = re.sub(r"<(style|script)\b.*?</\1>", " ", dom, flags=re.S | re.I)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom))).strip()


def expect_page(url: str, *, texts=(), markup=(), name: str, shots: Path, tries: int = 3,
                budget_ms: int = 15000) -> tuple[str, int]:
    """Load ``url`` until its text holds every string of ``texts`` and its DOM every string of
    ``markup`` (a doubled budget each try; a load that hangs counts as a try); screenshot
    ``shots/NAME.png``. The DOM and how many loads it took, or AssertionError (the last DOM kept as
    ``shots/NAME.html``)."""
    shots.mkdir(parents=True, exist_ok=True)
    dom, shown = "", "nothing: every load timed out"
    for attempt in range(tries):
        try:
            dom = render(url, screenshot=shots / f"{name}.png", budget_ms=budget_ms << attempt)
        except subprocess.TimeoutExpired:
            missing = ["a load that ends"]
            continue
        shown = page_text(dom)
        missing = [t for t in texts if t not in shown] + [m for m in markup if m not in dom]
        if not missing:
            return dom, attempt + 1
    (shots / f"{name}.html").write_text(dom)
    raise AssertionError(f"{url} lacks {missing} after {tries} loads; it shows: {shown[:3000]}")


def check_ui(base: str, store_uri: str, run_id: str, shots: str | Path) -> dict:
    """Check the runs view, the run page and the confusion matrix of ``run_id`` in the UI at ``base``
    (serving ``store_uri``), screenshots in ``shots``. What was found, by page: a dict."""
    from mlflow import MlflowClient

    shots = Path(shots)
    client = MlflowClient(store_uri)
    run = client.get_run(run_id)
    experiment, name = run.info.experiment_id, run.info.run_name
    datasets = [d.dataset.name for d in run.inputs.dataset_inputs]
    metrics = sorted(k for k in run.data.metrics if PER_CLASS.match(k))
    registered = client.search_model_versions(f"run_id = '{run_id}'")
    versions = [f"{v.name} v{v.version}" for v in registered]
    version_links = [f'href="#/models/{urllib.parse.quote(v.name, safe="")}/versions/{v.version}"' for v in registered]
    models = client.search_logged_models(experiment_ids=[experiment], filter_string=f"source_run_id = '{run_id}'")
    model_links = [f'href="#/experiments/{experiment}/models/{m.model_id}"' for m in models]
    if not (datasets and metrics and models):
        raise AssertionError(f"run {run_id} has no datasets, per-class test metrics or logged model to look for")

    runs_view = f"{base}/#/experiments/{experiment}/runs"
    loads = {}
    _, loads["runs"] = expect_page(
        runs_view, name="runs", shots=shots, texts=[name, *datasets, *(versions or [m.name for m in models])],
        markup=[f'href="#/experiments/{experiment}/runs/{run_id}"', *version_links])

    run_page = f"{base}/#/experiments/{experiment}/runs/{run_id}"
    _, loads["run"] = expect_page(run_page, name="run", shots=shots, texts=[name, *metrics, *versions],
                                  markup=[*version_links, *model_links])

    artifact = "confusion_matrix.png"
    dom, loads["confusion_matrix"] = expect_page(f"{run_page}/artifacts/{artifact}", name="confusion_matrix",
                                                 shots=shots, texts=[artifact], markup=[f'alt="{artifact}"'])
    images = [tag for tag in re.findall(r"<img\b[^>]*>", dom) if f'alt="{artifact}"' in tag]
    if not any('src="blob:' in tag for tag in images):
        raise AssertionError(f"the artifact view shows no image made from {artifact}'s bytes: {images}")
    query = urllib.parse.urlencode({"path": artifact, "run_uuid": run_id})
    with urllib.request.urlopen(f"{base}/get-artifact?{query}", timeout=30) as reply:
        png = reply.read()
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise AssertionError(f"the server hands out {artifact} as {png[:16]!r}, not a PNG")

    return {
        "runs_view": runs_view, "run_page": run_page, "run_name": name, "datasets": datasets,
        "metrics": metrics, "registered": versions, "logged_models": [m.name for m in models],
        "confusion_matrix_bytes": len(png), "loads": loads,
        "screenshots": sorted(str(p) for p in shots.glob("*.png")),
    }


def newest_run(store_uri: str, experiment: str) -> str:
    """The id of the newest run of ``experiment`` in ``store_uri``."""
    from mlflow import MlflowClient

    client = MlflowClient(store_uri)
    found = client.get_experiment_by_name(experiment)
    runs = found and client.search_runs([found.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        raise SystemExit(f"no run in experiment {experiment!r} of {store_uri}")
    return runs[0].info.run_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db"),
                        help="the store `mlflow ui` serves (default: $MLFLOW_TRACKING_URI or ./mlflow.db)")
    parser.add_argument("--run-id", help="the run to look for (default: the newest of --experiment)")
    parser.add_argument("--experiment", default="ferlight")
    parser.add_argument("--screenshots", default=os.environ.get("FERLIGHT_UI_SCREENSHOTS", "ui-screenshots"))
    args = parser.parse_args(argv)
    if chromium() is None:
        print(f"no Chromium on PATH (looked for {', '.join(BROWSERS)}); on Debian: apt-get install chromium",
              file=sys.stderr)
        return 2
    run_id = args.run_id or newest_run(args.tracking_uri, args.experiment)
    with mlflow_ui(args.tracking_uri) as base:
        report = check_ui(base, args.tracking_uri, run_id, args.screenshots)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
