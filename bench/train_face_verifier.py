"""Train the face verifier (:mod:`ferlight.inference.face_verifier`) on photos of the ``train`` and
``clutter`` sets and write its weights.

    python bench/make_photo_set.py --out .cache/photos --sets train --photos 3000   # once
    python bench/make_photo_set.py --out .cache/photos --sets clutter --photos 1000 # once
    python bench/make_photo_set.py --out .cache/photos --sets busy                  # validation
    python bench/train_face_verifier.py --photos .cache/photos [--out ferlight/weights/face_verifier.pt]

The examples are what MTCNN finds in the photos, searched far more loosely than ferlight searches
(:data:`MINE_THRESHOLDS`), so that the boxes it is nearly sure of, and the faces it doubts, are
both among them:

- a box that finds a face wholly in view (as the photo benchmark scores, ``bench_photos.match``) is
  a face, and so are :data:`JITTERS` copies of it moved and scaled a little;
- a box that finds no face is not a face (the benchmark counts it false): on the background, or
  on a part of a face (half of it, an eye), and so are :data:`RANDOM_BOXES` random squares per
  photo that overlap no face;
- a box that finds a face cut by the photo's edge is left out (the benchmark counts it neither way).

The ``train`` set's photos hold FER2013 Training faces only, on tune's backgrounds and on images no
benchmark set uses; ``clutter``'s, Training faces on drawn pebbles, leaves and grain
(:mod:`ferlight.testing.textures`). The epoch is chosen on the ``busy`` set's boxes (its backgrounds are unseen,
as the held-out set's are): the least validation loss. Deterministic on one machine from
``--seed``; 2 cores take a few minutes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from bench_photos import match
from ferlight.inference import mtcnn
from ferlight.inference.detection import even_exposure, to_grey
from ferlight.inference.face_verifier import WEIGHTS, FaceVerifierNet, standardise, verifier_crops
from ferlight.testing.photo_set import TRUTH, grown, overlaps, read_truth

# MTCNN for mining: P-Net, R-Net and O-Net thresholds, far below ferlight's (mtcnn.THRESHOLDS,
# STILL_PNET, RESCUE), and the smallest face searched (the still search's 36 px, a little less).
MINE_THRESHOLDS = (0.4, 0.05, 0.05)
MINE_MIN_FACE = 32
JITTERS = 2  # moved copies of each face's box: by up to 8% of its side, scaled by 0.9-1.1
RANDOM_BOXES = 3  # random non-face squares per photo, 32-250 px
KEEP_APART = 0.1  # a random square overlaps no face's box grown by this share of its side
TRAINING_SETS = ("train", "clutter")
EPOCHS = 12
BATCH = 256


def jittered(box: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """:data:`JITTERS` copies of a box ``(x, y, w, h)``, moved by up to 8% of its side and scaled
    by 0.9-1.1 (a detector's box wanders about that much from photo to photo)."""
    side, centre = max(box[2:]), box[:2] + box[2:] / 2
    copies = []
    for _ in range(JITTERS):
        scale, moved = rng.uniform(0.9, 1.1), centre + rng.uniform(-0.08, 0.08, 2) * side
        copies.append(np.r_[moved - box[2:] * scale / 2, box[2:] * scale])
    return copies


def mine(folder: Path, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The crops (N x 48 x 48 uint8) and labels (1 face, 0 not) of one photo set's folder."""
    truth = read_truth(folder)
    faces = mtcnn.MtcnnFaces(face_probability=MINE_THRESHOLDS[2])
    faces.thresholds = MINE_THRESHOLDS
    rng = np.random.default_rng(seed)
    crops, labels = [], []
    for photo in truth["photos"]:
        grey = even_exposure(to_grey(cv2.imread(str(folder / photo["image"]))))
        height, width = grey.shape
        found = faces(grey, MINE_MIN_FACE, None)
        boxes = np.column_stack([found[:, :2], found[:, 2:4] - found[:, :2]]) if len(found) else np.zeros((0, 4))
        true_boxes = [f["box"] for f in photo["faces"]]
        pairs = match(true_boxes, boxes)
        matched = {j: photo["faces"][i]["visible"] >= 1 for i, (j, _) in pairs.items()}
        chosen, chosen_labels = [], []
        for j, box in enumerate(boxes):
            if j in matched:
                if matched[j]:
                    chosen += [box, *jittered(box, rng)]
                    chosen_labels += [1] * (1 + JITTERS)
            else:
                chosen.append(box)
                chosen_labels.append(0)
        for _ in range(RANDOM_BOXES):
            side = int(rng.integers(32, 251))
            box = (int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1)), side, side)
            if not any(overlaps(box, grown(face, KEEP_APART)) for face in true_boxes):
                chosen.append(np.array(box, np.float64))
                chosen_labels.append(0)
        if chosen:
            crops.append(verifier_crops(grey, np.array(chosen)))
            labels += chosen_labels
    return np.concatenate(crops), np.array(labels, np.float32)


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and contrast scaled by 0.8-1.2, on a standardised batch N x 1 x H x W."""
    flip = torch.rand(len(x), generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return x * (0.8 + 0.4 * torch.rand(len(x), 1, 1, 1, generator=generator))


def train(train_x, train_y, val_x, val_y, seed: int, log=print) -> tuple[FaceVerifierNet, dict]:
    """The net at the epoch of least validation loss, and that epoch's figures."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net = FaceVerifierNet()
    optimiser = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = EPOCHS * -(-len(train_x) // BATCH)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=2e-3, total_steps=steps)
    loss_fn = nn.BCEWithLogitsLoss()
    x, y = standardise(train_x), torch.from_numpy(train_y)
    vx, vy = standardise(val_x), torch.from_numpy(val_y)
    best = {"loss": float("inf")}
    for epoch in range(1, EPOCHS + 1):
        net.train()
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), BATCH):
            index = order[start : start + BATCH]
            loss = loss_fn(net(augment(x[index], generator)), y[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        net.eval()
        with torch.no_grad():
            logits = torch.cat([net(vx[i : i + 1024]) for i in range(0, len(vx), 1024)])
        val_loss = float(loss_fn(logits, vy))
        p = torch.sigmoid(logits).numpy()
        figures = {"epoch": epoch, "loss": val_loss, "faces_kept_at_0.5": float((p[val_y == 1] >= 0.5).mean()),
                   "non_faces_dropped_at_0.5": float((p[val_y == 0] < 0.5).mean())}
        log(" ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()))
        if val_loss < best["loss"]:
            best = {**figures, "state": {k: v.clone() for k, v in net.state_dict().items()}}
    net.load_state_dict(best.pop("state"))
    return net.eval(), best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=Path(".cache/photos"), help="holds the training sets and busy")
    parser.add_argument("--sets", nargs="+", default=list(TRAINING_SETS), help="the training sets (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in (*args.sets, "busy"):
        if not (args.photos / name / TRUTH).is_file():
            print(f"no {name} set in {args.photos} (python bench/make_photo_set.py --out {args.photos} --sets {name})", file=sys.stderr)
            return 2
    start = time.perf_counter()
    mined = [mine(args.photos / name, args.seed + 2 * index) for index, name in enumerate(args.sets)]  # busy: seed + 1
    train_x, train_y = np.concatenate([x for x, _ in mined]), np.concatenate([y for _, y in mined])
    val_x, val_y = mine(args.photos / "busy", args.seed + 1)
    print(f"mined in {time.perf_counter() - start:.0f} s: train {int(train_y.sum())} faces, {int((1 - train_y).sum())} non-faces; "
          f"busy {int(val_y.sum())} and {int((1 - val_y).sum())}", file=sys.stderr, flush=True)
    net, best = train(train_x, train_y, val_x, val_y, args.seed, log=lambda line: print(line, file=sys.stderr, flush=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), args.out)
    print(f"{args.out}: epoch {best['epoch']} (least busy loss {best['loss']:.4f}), {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
