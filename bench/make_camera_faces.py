"""FER2013 plus its Training faces as the photo pipeline crops them: camera-condition training data.

    python bench/make_camera_faces.py --data ../shared/data/fer2013.csv.gz --out .cache/fer2013_camera.csv.gz

FER2013 Training faces are pasted into photos under the photo benchmark's camera conditions (the
``train`` photo set of :mod:`ferlight.testing.photo_set`: tune's backgrounds and seven images no
benchmark set uses, no face that is also in PublicTest or PrivateTest; ``--photos`` of them,
written to ``--photo-dir``). Each photo is searched as ``python -m ferlight.live`` searches a still
image with every default, and each face found wholly in view (matched as ``bench/bench_photos.py``
scores) is cropped as the model gets it (:meth:`Recognizer.photo_crops`, then
:func:`~ferlight.inference.recognizer.model_inputs`: 48 x 48 grey). Those crops, with their faces'
labels, become extra Training rows after all of FER2013's own rows, in the Kaggle layout: the
standard protocol then trains on both and still chooses on PublicTest and tests on PrivateTest,
untouched. ``recipes/camera_finetune.yaml`` fine-tunes the shipped model on the result.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_photos import match  # noqa: E402

from ferlight.data import load_fer2013  # noqa: E402
from ferlight.data.fer_data import USAGES, FERData  # noqa: E402
from ferlight.data.kaggle_csv import write_fer2013_csv  # noqa: E402
from ferlight.inference.recognizer import Recognizer, model_inputs  # noqa: E402
from ferlight.testing.photo_set import fer_pool, make_photo_set, read_truth  # noqa: E402

SET = "train"


def camera_faces(recognizer: Recognizer, folder: Path, truth: dict) -> tuple[np.ndarray, np.ndarray]:
    """The model inputs (N x 48 x 48 uint8) of the FER2013 faces wholly in view that the
    recognizer's still search finds in the set's photos, and each one's FER2013 row."""
    inputs, rows = [], []
    for photo in truth["photos"]:
        image = cv2.imread(str(folder / photo["image"]))
        boxes = recognizer.detector.detect(image, still=True)
        faces = photo["faces"]
        found = {i: j for i, (j, _) in match([f["box"] for f in faces], boxes).items() if faces[i]["row"] is not None and faces[i]["visible"] >= 1}
        if found:
            crops = recognizer.photo_crops(image, np.asarray(boxes)[list(found.values())])
            inputs.append(model_inputs(crops))
            rows += [faces[i]["row"] for i in found]
    return np.concatenate(inputs), np.array(rows, np.int64)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="FER2013 (csv, csv.gz or .u8.xz)")
    parser.add_argument("--out", type=Path, required=True, help="the FER2013 csv(.gz) to write, with the extra Training rows")
    parser.add_argument("--photo-dir", type=Path, default=Path(".cache/camera_photos"), help="where the photos go (default: %(default)s)")
    parser.add_argument("--photos", type=int, default=12000, help="photos to make (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    data = load_fer2013(args.data)
    pool = fer_pool(data, SET, args.seed, Path(args.data).parent / "fer2013new.csv")
    truth_path = make_photo_set(args.photo_dir, SET, pool, args.photos, args.seed, {"data": Path(args.data).name})
    print(f"{args.photos} photos in {truth_path.parent}, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    recognizer = Recognizer.from_checkpoint()
    images, rows = camera_faces(recognizer, truth_path.parent, read_truth(truth_path.parent))
    usage = np.full(len(images), USAGES.index("Training"), np.int8)
    combined = FERData(np.concatenate([data.images, images]), np.concatenate([data.labels, data.labels[rows]]), np.concatenate([data.usage, usage]))
    write_fer2013_csv(combined, args.out)
    print(f"{args.out}: FER2013's {len(data.images)} rows and {len(images)} camera faces as Training rows "
          f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
