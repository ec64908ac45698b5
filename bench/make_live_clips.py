"""Write the live benchmark's real-face clips with their ground truth.

    python bench/make_live_clips.py --out .cache/live_clips [--data ../shared/data/fer2013.csv.gz]
    python bench/make_live_clips.py --out .cache/live_clips [--data ...] --seeds 2 3

Two sets, ``tune`` (the clips settings are chosen on) and ``heldout`` (only measured), each with,
per seed, one clip of every kind in :data:`ferlight.testing.live_clips.CLIP_KINDS` (24 clips a
set per call): 640 x 480, 90 frames at 15 fps, MPEG-4 (mp4v), with ``NAME.truth.json`` beside
each. Faces: the photographs that scikit-image and matplotlib ship and, with ``--data``, FER2013
faces (tune: PublicTest, heldout: PrivateTest). Deterministic: the two calls above write the
benchmark's 48 clips a set (bench/RESULTS.md); each call draws its FER2013 faces from the same
pool of 96 per set, so seeds 2 and 3 bring new clips, not new faces. Every call also writes the
three ``clean`` clips (:func:`ferlight.testing.live_clips.make_clean_clips`: two photographed
faces on a plain wall), a speed check beside ``fer`` that no setting is tuned on.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ferlight.data import load_fer2013
from ferlight.testing.live_clips import SEEDS, SETS, make_clean_clips, make_clip_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(".cache/live_clips"))
    parser.add_argument("--data", help="FER2013 (csv, csv.gz or .u8.xz) for FER2013 faces; default: photographs only")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="one clip of every kind per seed (default: %(default)s)")
    args = parser.parse_args()
    fer = load_fer2013(args.data) if args.data else None
    for set_name in SETS:
        for video in make_clip_set(args.out, set_name, fer, tuple(args.seeds)):
            print(video)
    for video in make_clean_clips(args.out):
        print(video)


if __name__ == "__main__":
    main()
