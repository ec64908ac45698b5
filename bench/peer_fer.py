"""The peer: the ``fer`` PyPI package (Haar cascade + a small CNN) on the benchmark's clips.

    python bench/peer_fer.py --clips DIR --out OUTDIR [--venv .venv-fer] [--threads N]
    python bench/peer_fer.py --photos DIR --out OUTDIR [--venv .venv-fer] [--threads N]

fer runs in a virtual environment of its own (``--venv``, created on first use: 1.7 GB, 1.5
minutes here; fer is never a dependency of ferlight) by ``bench/peer_fer_worker.py``, which
imports nothing from ferlight. For every ``DIR/<set>/<clip>.mp4`` it writes ``OUTDIR/<set>/<clip>.jsonl`` (one line per
input frame, ferlight.live's JSONL schema; track_id and timestamp null) and
``OUTDIR/<set>/<clip>.timing.json`` (frames, seconds of decode + detect + classify, fps, threads,
versions). With ``--photos``, for every folder ``DIR/<set>`` of images (``bench/bench_photos.py``'s
photo sets) it writes ``OUTDIR/<set>/photos.jsonl`` (one line per image, with its file name) and
``OUTDIR/<set>/photos.timing.json`` (images, seconds of reading + detect + classify, images/s).
``OUTDIR/peer_fer_run.json`` records the machine (CPU model, load average before and
after: the machine may be shared), the versions and the venv. fer's emotion model is tiny: its
time is almost all the Haar cascade on the full frame (min face 50 px).

The venv holds fer (pinned) with the dependencies that ``FER(mtcnn=False)`` imports; fer's wheel
is installed with ``--no-deps`` because its declared dependencies pull PyTorch (facenet-pytorch,
used only with ``mtcnn=True``), moviepy and ffmpeg-python (fer's Video class), which the
per-frame path never loads. TensorFlow is ``tensorflow-cpu`` (a 260 MB wheel instead of 545 MB;
the same CPU kernels). fer still imports ``pkg_resources``, hence ``setuptools<81``. fer 25.x no
longer exports ``FER`` from its package (``from fer import FER`` fails); the worker falls back to
``fer.fer.FER``. OpenCV is pinned to the version in ferlight's own venv, so both sides run the
same Haar cascade code.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORKER = HERE / "peer_fer_worker.py"
sys.path.insert(0, str(HERE))

from peer_fer_worker import EXIT_ERROR, ClipError, available_cores, find_clips, find_photos  # noqa: E402

FER = "fer==25.10.3"
# What FER(mtcnn=False).detect_emotions imports (fer/fer.py, fer/utils.py), pinned to a set that works.
REQUIREMENTS = [
    "setuptools<81",  # fer imports pkg_resources, which setuptools 81 removed
    "tensorflow-cpu==2.21.0",
    "opencv-contrib-python==4.14.0.94",  # the OpenCV of ferlight's own venv: the same Haar cascade code
    "requests",
    "Pillow",
]
MARKER = "peer_fer_install.json"  # written into the venv once the install succeeded


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def folder_mb(path: Path) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return round(total / 2**20, 1)


def ensure_venv(venv: Path) -> dict:
    """Create ``venv`` with fer and its runtime dependencies unless it already holds this install."""
    marker = venv / MARKER
    wanted = {"fer": FER, "requirements": REQUIREMENTS}
    if marker.exists():
        installed = json.loads(marker.read_text())
        if {k: installed.get(k) for k in wanted} == wanted:
            return installed
    print(f"creating {venv} with {FER} and {' '.join(REQUIREMENTS)} (1.7 GB; 1.5 minutes here)", flush=True)
    start = time.perf_counter()
    python = venv_python(venv)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *REQUIREMENTS], check=True)
    subprocess.run([*pip, "--no-deps", FER], check=True)
    info = {**wanted, "install_seconds": round(time.perf_counter() - start, 1), "size_mb": folder_mb(venv)}
    marker.write_text(json.dumps(info, indent=1) + "\n")
    print(f"{venv}: installed in {info['install_seconds']:.0f} s, {info['size_mb']:.0f} MB", flush=True)
    return info


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def worker_env() -> dict:
    """The environment for fer's python: nothing of ferlight's on its path, TensorFlow's C++ logs quiet."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg quiet, as in ferlight.live: errors are ours, one line
    return env


def summary(out: Path) -> list[str]:
    """One Markdown row per set: clips, frames, frames with faces, fps (all frames / all seconds);
    for photo folders: photos, photos with faces, images/s."""
    clips, photos = [], []
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        timings = [json.loads(p.read_text()) for p in sorted(folder.glob("*.timing.json"))]
        if not timings:
            continue
        frames = sum(t["frames"] for t in timings)
        seconds = sum(t["seconds"] for t in timings)
        with_faces = sum(t.get("frames_with_faces", 0) for t in timings)
        if all("images" in t for t in timings):
            photos.append(f"| {folder.name} | {frames} | {with_faces} | {frames / seconds:.1f} |")
        else:
            clips.append(f"| {folder.name} | {len(timings)} | {frames} | {with_faces} | {frames / seconds:.1f} |")
    rows = ["| set | clips | frames | frames with faces | fps |", "|---|---:|---:|---:|---:|", *clips] if clips else []
    return rows + (["| set | photos | photos with faces | images/s |", "|---|---:|---:|---:|", *photos] if photos else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--clips", help="folder of <set>/<clip>.mp4 (e.g. tune/, heldout/)")
    source.add_argument("--photos", help="folder of <set>/<name>.jpg (bench/make_photo_set.py's sets)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--venv", default=str(REPO / ".venv-fer"), help="fer's virtual environment (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=available_cores(), help="TensorFlow threads (default: the cores available, %(default)s)")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    try:
        clips = find_photos(args.photos) if args.photos else find_clips(args.clips)  # before a 1.7 GB install
    except ClipError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    venv = Path(args.venv).resolve()
    try:
        install = ensure_venv(venv)
    except subprocess.CalledProcessError as e:
        print(f"error: installing fer into {venv} failed ({e})", file=sys.stderr)
        return EXIT_ERROR
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    source = ["--photos", str(Path(args.photos).resolve())] if args.photos else ["--clips", str(Path(args.clips).resolve())]
    command = [str(venv_python(venv)), str(WORKER), *source, "--out", str(out.resolve()), "--threads", str(args.threads)]
    what = f"{sum(len(paths) for _, paths in clips)} photos" if args.photos else f"{len(clips)} clips"
    print(f"fer on {what}, {args.threads} TensorFlow threads", flush=True)
    load_before = os.getloadavg()
    start = time.perf_counter()
    status = subprocess.run(command, env=worker_env()).returncode
    if status != 0:
        return status
    versions = next(json.loads(p.read_text())["versions"] for p in out.glob("*/*.timing.json"))
    run = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]) if argv is None else None,
        "cpu": cpu_model(),
        "cores": available_cores(),
        "tf_threads": args.threads,
        "loadavg_1min": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        "clips": 0 if args.photos else len(clips),
        "photos": sum(len(paths) for _, paths in clips) if args.photos else 0,
        "seconds_total": round(time.perf_counter() - start, 1),
        "versions": versions,
        "venv": {"path": str(venv), **install},
    }
    (out / "peer_fer_run.json").write_text(json.dumps(run, indent=1) + "\n")
    print(f"fer {versions['fer']}, TensorFlow {versions['tensorflow']}, OpenCV {versions['opencv']}; {run['cpu']}")
    print("\n".join(summary(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
