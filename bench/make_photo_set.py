"""Write the photo benchmark's still photos with their ground truth.

    python bench/make_photo_set.py --out .cache/photos [--data ../shared/data/fer2013_images.u8.xz] [--photos 500] [--seed 0]

The benchmark's three sets (``--sets train clutter`` writes the face verifier's training photos instead),
``tune`` (FER2013 PublicTest faces, the astronaut photograph; settings are chosen on it),
``busy`` (the same sources on busy backgrounds that neither other set uses; settings are chosen on it too)
and ``heldout`` (PrivateTest faces, Grace Hopper; only measured), each ``--photos`` 640 x 480
JPEG photos with 0-3 faces under one camera condition each, and ``truth.json``
(:mod:`ferlight.testing.photo_set` says what is drawn and recorded). Deterministic from ``--seed``;
``--out`` should be a folder git ignores (``.cache/`` is). FER+'s ``fer2013new.csv`` beside
``--data``, when there, leaves out FER2013's non-faces. ``--data none``: photographs only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ferlight.testing.photo_set import BENCHMARK_SETS, N_PHOTOS, PHOTO_SETS, fer_pool, make_photo_set, read_truth

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013_images.u8.xz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(".cache/photos"))
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="FER2013 (csv, csv.gz or .u8.xz); 'none': photographs only (default: %(default)s)")
    parser.add_argument("--ferplus", help="FER+'s fer2013new.csv (default: beside --data)")
    parser.add_argument("--photos", type=int, default=N_PHOTOS, help="photos per set (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sets", nargs="+", choices=PHOTO_SETS, default=list(BENCHMARK_SETS), help="default: the benchmark's three; train, clutter: the face verifier's photos"
    )
    args = parser.parse_args(argv)
    if args.photos < 1:
        parser.error(f"--photos must be at least 1, got {args.photos}")
    start = time.perf_counter()
    data = None
    if args.data != "none":
        from ferlight.data import load_fer2013

        data = load_fer2013(args.data)
    ferplus = args.ferplus or (Path(args.data).parent / "fer2013new.csv" if data is not None else None)
    for set_name in args.sets:
        pool = fer_pool(data, set_name, args.seed, ferplus) if data is not None else []
        meta = {"data": Path(args.data).name if data is not None else None, "ferplus": Path(ferplus).name if ferplus and Path(ferplus).exists() else None,
                "pool": len(pool)}
        path = make_photo_set(args.out, set_name, pool, args.photos, args.seed, meta)
        photos = read_truth(path.parent)["photos"]
        faces = [f for p in photos for f in p["faces"]]
        labelled = sum(f["label"] is not None and f["visible"] >= 1 for f in faces)
        print(f"{path.parent}: {len(photos)} photos, {len(faces)} faces ({labelled} labelled wholly in view, "
              f"{sum(f['visible'] < 1 for f in faces)} cut by the edge, {sum(f['label'] is None for f in faces)} photographs), "
              f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
