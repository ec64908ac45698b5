"""Still photos with ground truth, for the photo benchmark (``bench/bench_photos.py``) and its tests.

Each photo is 640 x 480, a natural image that scikit-image or matplotlib ships (a random crop of
it, flipped or not) with 0-3 faces pasted on it, saved as JPEG. Faces come from two sources, as
in :mod:`ferlight.testing.live_clips`:

- FER2013 faces (48 x 48 grey, each with its emotion label), upscaled and padded with their edge
  pixels fading into the background (:func:`~ferlight.testing.live_clips.fer_face`). The
  ``tune`` set draws them from PublicTest (the standard protocol's validation split, on which the
  shipped model's epoch was chosen), the ``heldout`` set from PrivateTest (never used for any
  choice), so a face is never in both; faces whose pixels also occur in the other split (FER2013
  holds exact duplicates) and the rows FER+ marks "not a face" (``fer2013new.csv`` beside the data,
  when there) are left out. Unlike the live clips, the faces are *not* screened by a frontal
  detector: profile and occluded FER2013 faces are in, as in the dataset. Whether one of OpenCV's
  frontal cascades finds the face on a clean canvas is recorded per face (``frontal``), so that a
  benchmark can tell the faces no frontal detector finds from the rest.
- The photographs that the packages ship (tune: scikit-image's astronaut, Eileen Collins;
  heldout: matplotlib's Grace Hopper), cut out with head-and-shoulders context. Their label is
  unknown (None): they count for detection only.

Backgrounds differ per set too (:data:`PHOTO_SOURCES`): ``tune`` and ``heldout`` as the live clips
(:data:`~ferlight.testing.live_clips.SET_SOURCES`), and a third set, ``busy``, on the tuning side:
``tune``'s faces and photograph on busy natural images that neither other set uses, because
``tune``'s backgrounds make almost no false faces and so cannot show what a setting costs there.
Two more sets train the face verifier and are no benchmark's: ``train`` (FER2013 Training faces on
tune's backgrounds and on images no benchmark set uses) and ``clutter`` (Training faces on drawn
clutter, :mod:`ferlight.testing.textures`).

Camera conditions, one per photo (:data:`CONDITIONS`, drawn in equal shares, the parameters at
random per photo and recorded in ``params``); every face of a photo has its photo's condition:

- ``plain``: nothing done;
- ``tilt``: every face rotated in the image plane by 5-20 degrees either way;
- ``dark`` / ``bright``: exposure, by a gamma of 1.8-2.6 / 0.4-0.55 on the whole photo;
- ``blur``: Gaussian blur, sigma 1.5-3 px; ``motion``: horizontal motion blur over 7-15 px;
- ``noise``: Gaussian sensor noise, sigma 8-14 grey levels per channel;
- ``jpeg``: saved at JPEG quality 35 (every other photo at 95);
- ``cut``: every face cut by a different edge of the photo, 30-85% of its box inside;
- ``no-face``: no face at all (only false detections can be made there).

Face sizes: the side of a face's box, uniform in 48-250 px (a placement that does not fit draws a
new size, so multi-face photos lean a little to smaller faces). A FER2013 face's box is its
whole 48 x 48 frame upscaled (the face in it can be two thirds of that); a photograph's is its
face (:data:`~ferlight.testing.live_clips.PHOTO_FACES`). A tilted face's box is the upright
square of its side about its centre, where a detector's box would be. Faces never overlap: no
face's patch (its box with padding or context) covers another face's box grown by 10%.

Ground truth: ``OUT/SET/truth.json``, one record per photo (:func:`make_photo_set`): its file,
condition, parameters, background, and per face its box ``[x, y, w, h]`` (may run past the photo
for cut faces), ``visible`` (the share of the box inside the photo; below 1 only for cut faces:
finding them is neither required nor false), ``size`` (px), ``tilt`` (degrees, counter-clockwise
as seen), ``condition``, ``label`` (FER2013's 0-6, or None), ``source`` (``fer2013`` or the
photograph's name), and for FER2013 faces (None for photographs) ``row`` (the row in FER2013's
CSV order), ``crc32`` (of its 48 x 48 pixels, to check a benchmark reads the same face) and
``frontal``.

Deterministic from ``seed``: the same arguments write the same bytes.
"""

from __future__ import annotations

import csv
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ferlight.testing.live_clips import (
    PHOTO_FACES,
    SET_SOURCES,
    FaceImage,
    fer_face,
    is_frontal,
    photo,
    photo_face,
)
from ferlight.testing.textures import TEXTURES, texture

# The photo sets: the live clips' two, and ``busy`` (tuning side: PublicTest faces, the astronaut)
# on busy images that neither of the others uses.
PHOTO_SOURCES = {
    **SET_SOURCES,
    "busy": {"photo": "astronaut", "backgrounds": ("china.jpg", "flower.jpg", "cell", "binary_blobs", "horse", "moon"), "usage": "PublicTest"},
    # Training photos for the face verifier (bench/train_face_verifier.py): Training faces on tune's
    # backgrounds and on images no benchmark set uses; busy's stay unseen, to choose its threshold on.
    "train": {
        "photo": "astronaut",
        "backgrounds": SET_SOURCES["tune"]["backgrounds"] + ("page", "text", "logo", "colorwheel", "shepp_logan_phantom", "checkerboard", "logo2.png"),
        "usage": "Training",
    },
    # More of the verifier's training photos: Training faces on drawn clutter (pebbles, grain), the
    # surfaces false faces come from, which no package's image and no benchmark set holds.
    "clutter": {"photo": "astronaut", "backgrounds": TEXTURES, "usage": "Training"},
}
PHOTO_SETS = tuple(PHOTO_SOURCES)
BENCHMARK_SETS = ("tune", "heldout", "busy")

SIZE = (640, 480)  # width, height
N_PHOTOS = 500  # per set
CONDITIONS = ("plain", "tilt", "dark", "bright", "blur", "motion", "noise", "jpeg", "cut", "no-face")
SIDES = (48, 250)  # face box side, px
SIZE_BANDS = ((48, 99), (100, 149), (150, 199), (200, 250))
MAX_FACES = 3
PHOTO_SHARE = 0.2  # share of faces that are the set's photograph
TILT = (5.0, 20.0)  # degrees, either way
DARK_GAMMA = (1.8, 2.6)
BRIGHT_GAMMA = (0.4, 0.55)
BLUR_SIGMA = (1.5, 3.0)
MOTION_LENGTH = (7, 15)
NOISE_SIGMA = (8.0, 14.0)
LOW_JPEG = 35
JPEG = 95  # every photo but the jpeg condition's
CUT_VISIBLE = (0.3, 0.85)
PHOTO_CONTEXT = (0.2, 0.5)  # head-and-shoulders context around a photograph's face, in face sides
KEEP_APART = 0.1  # a face's box grown by this share of its side on each side is no other patch's
TRUTH = "truth.json"
FORMAT = 1  # bump when the truth's layout changes


def band(size: float) -> str:
    """The :data:`SIZE_BANDS` label (``"48-99"``) of a face side; ``"<48"`` / ``">250"`` outside them."""
    if size < SIZE_BANDS[0][0]:
        return f"<{SIZE_BANDS[0][0]}"
    for low, high in SIZE_BANDS:
        if size <= high:
            return f"{low}-{high}"
    return f">{SIZE_BANDS[-1][1]}"


@dataclass
class FerFace:
    """A FER2013 face: its 48 x 48 pixels, label and row in FER2013's CSV order."""

    pixels: np.ndarray
    label: int
    row: int


@dataclass
class PlacedFace:
    """A face patch placed in a photo: ``corner`` is the patch's top-left corner in the photo."""

    face: FaceImage
    corner: tuple[int, int]
    size: int
    tilt: float = 0.0
    row: int | None = None
    pixels: np.ndarray | None = field(default=None, repr=False)  # FER2013's 48 x 48, for crc32 and frontal

    @property
    def box(self) -> tuple[int, int, int, int]:
        bx, by, bw, bh = self.face.box
        return (self.corner[0] + bx, self.corner[1] + by, bw, bh)

    @property
    def patch_rect(self) -> tuple[int, int, int, int]:
        h, w = self.face.patch.shape[:2]
        return (self.corner[0], self.corner[1], w, h)


@dataclass
class PhotoSpec:
    """Everything one photo is made of; :func:`render_photo` turns it into an image and its truth."""

    name: str
    background: np.ndarray
    background_name: str
    condition: str = "plain"
    faces: list[PlacedFace] = field(default_factory=list)
    params: dict = field(default_factory=dict)


# ---- faces ---------------------------------------------------------------------------------


def _feather(height: int, width: int, ramp: float) -> np.ndarray:
    """H x W x 1 opacity: 1 inside, fading to 0 over ``ramp`` px at every edge."""
    ys = np.minimum(np.arange(height), np.arange(height)[::-1]).astype(np.float32)
    xs = np.minimum(np.arange(width), np.arange(width)[::-1]).astype(np.float32)
    fade = lambda d: np.clip((d + 1) / max(ramp, 1.0), 0, 1)  # noqa: E731
    return np.minimum(fade(ys)[:, None], fade(xs)[None, :])[..., None]


def photograph_face(name: str, side: int, context: float, flip: bool, image: np.ndarray) -> FaceImage:
    """The photograph's face with head-and-shoulders context, its face ``side`` px, edges feathered."""
    face = photo_face(name, side, context, image)
    patch, (bx, by, bw, bh) = face.patch, face.box
    if flip:
        patch, bx = patch[:, ::-1].copy(), patch.shape[1] - bx - bw
    alpha = _feather(*patch.shape[:2], 0.06 * min(patch.shape[:2]))
    return FaceImage(patch, (bx, by, bw, bh), None, name, alpha)


def rotate_face(face: FaceImage, degrees: float) -> FaceImage:
    """``face`` rotated by ``degrees`` (counter-clockwise as seen) about its box's centre, on a
    canvas holding the whole rotated patch (outside it: opacity 0); the box is the upright square
    of the same side about the same centre."""
    patch = face.patch
    h, w = patch.shape[:2]
    alpha = face.alpha if face.alpha is not None else np.ones((h, w, 1), np.float32)
    bx, by, side, _ = face.box
    centre = (bx + side / 2, by + side / 2)
    matrix = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64) @ matrix.T
    left, top = np.floor(corners.min(0)).astype(int)
    right, bottom = np.ceil(corners.max(0)).astype(int)
    matrix[:, 2] -= (left, top)
    size = (int(right - left), int(bottom - top))
    rotated = cv2.warpAffine(patch, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    opacity = cv2.warpAffine(alpha[..., 0], matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    cx, cy = matrix @ np.array([centre[0], centre[1], 1.0])
    box = (int(round(cx - side / 2)), int(round(cy - side / 2)), side, side)
    return FaceImage(rotated, box, face.label, face.source, opacity[..., None])


# ---- photos --------------------------------------------------------------------------------


def background_image(name: str) -> np.ndarray:
    """A background at its own size, BGR (scikit-image by name; matplotlib's or scikit-learn's
    sample images by file name; :mod:`ferlight.testing.textures`' drawn clutter by its name)."""
    if name in TEXTURES:
        return texture(name)
    if name in ("china.jpg", "flower.jpg"):
        from sklearn.datasets import load_sample_image

        return cv2.cvtColor(load_sample_image(name), cv2.COLOR_RGB2BGR)
    if name.endswith(".png"):
        import matplotlib.cbook

        return cv2.imread(str(matplotlib.cbook.get_sample_data(name, asfileobj=False)), cv2.IMREAD_COLOR)
    import skimage.data

    image = np.asarray(getattr(skimage.data, name)())
    if image.dtype == bool:  # binary images: black and white
        image = image.astype(np.uint8) * 255
    elif image.dtype.kind == "f":  # float images: grey levels in [0, 1]
        image = np.clip(image * 255, 0, 255).astype(np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2BGR)


def random_background(image: np.ndarray, rng: np.random.Generator, size: tuple[int, int] = SIZE) -> np.ndarray:
    """A random crop of ``image`` (60-100% of the largest crop of ``size``'s aspect), flipped or
    not, resized to ``size``."""
    width, height = size
    h, w = image.shape[:2]
    cut_w, cut_h = (int(h * width / height), h) if w / h > width / height else (w, int(w * height / width))
    scale = float(rng.uniform(0.6, 1.0))
    cut_w, cut_h = max(int(cut_w * scale), 8), max(int(cut_h * scale), 6)
    x, y = int(rng.integers(0, w - cut_w + 1)), int(rng.integers(0, h - cut_h + 1))
    crop = image[y : y + cut_h, x : x + cut_w]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(np.ascontiguousarray(crop), size, interpolation=cv2.INTER_AREA if cut_w > width else cv2.INTER_CUBIC)


def overlaps(a, b) -> bool:
    """Whether two boxes ``(x, y, w, h)`` share any area."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def grown(box, share: float = KEEP_APART):
    """``box`` grown by ``share`` of its width on each side."""
    m = share * box[2]
    return (box[0] - m, box[1] - m, box[2] + 2 * m, box[3] + 2 * m)


def fits(candidate: PlacedFace, placed: list[PlacedFace]) -> bool:
    """Whether ``candidate`` keeps apart from every face in ``placed`` (neither patch covers the
    other's box grown by :data:`KEEP_APART`)."""
    return all(
        not overlaps(candidate.patch_rect, grown(other.box)) and not overlaps(other.patch_rect, grown(candidate.box))
        for other in placed
    )


def place(face: FaceImage, rng: np.random.Generator, edge: int | None = None, size: tuple[int, int] = SIZE) -> tuple[int, int]:
    """A patch corner that puts ``face``'s box wholly inside the photo or, with ``edge`` (0 left,
    1 right, 2 top, 3 bottom), across that edge with :data:`CUT_VISIBLE` of it inside."""
    width, height = size
    bx, by, side, _ = face.box
    x = int(rng.integers(0, width - side + 1))
    y = int(rng.integers(0, height - side + 1))
    if edge is not None:
        out = int(round((1 - rng.uniform(*CUT_VISIBLE)) * side))
        x = -out if edge == 0 else width - side + out if edge == 1 else x
        y = -out if edge == 2 else height - side + out if edge == 3 else y
    return (x - bx, y - by)


def visible_share(box, size: tuple[int, int] = SIZE) -> float:
    x, y, w, h = box
    inside = max(0, min(x + w, size[0]) - max(x, 0)) * max(0, min(y + h, size[1]) - max(y, 0))
    return round(inside / (w * h), 4)


def condition_params(condition: str, rng: np.random.Generator) -> dict:
    """The random parameters of one photo's condition."""
    if condition == "dark":
        return {"gamma": round(float(rng.uniform(*DARK_GAMMA)), 3)}
    if condition == "bright":
        return {"gamma": round(float(rng.uniform(*BRIGHT_GAMMA)), 3)}
    if condition == "blur":
        return {"sigma": round(float(rng.uniform(*BLUR_SIGMA)), 3)}
    if condition == "motion":
        return {"length": int(rng.integers(MOTION_LENGTH[0], MOTION_LENGTH[1] + 1))}
    if condition == "noise":
        return {"sigma": round(float(rng.uniform(*NOISE_SIGMA)), 3), "seed": int(rng.integers(2**31))}
    if condition == "jpeg":
        return {"quality": LOW_JPEG}
    return {}


def degrade(image: np.ndarray, condition: str, params: dict) -> np.ndarray:
    """What the camera does to the whole photo under ``condition`` (JPEG quality is applied on save)."""
    if condition in ("dark", "bright"):
        table = np.clip(255 * (np.arange(256) / 255) ** params["gamma"] + 0.5, 0, 255).astype(np.uint8)
        return cv2.LUT(image, table)
    if condition == "blur":
        return cv2.GaussianBlur(image, (0, 0), params["sigma"])
    if condition == "motion":
        kernel = np.full((1, params["length"]), 1 / params["length"], np.float32)
        return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)
    if condition == "noise":
        noise = np.random.default_rng(params["seed"]).normal(0, params["sigma"], image.shape)
        return np.clip(image + noise, 0, 255).astype(np.uint8)
    return image


def render_photo(spec: PhotoSpec) -> tuple[np.ndarray, dict]:
    """The photo (BGR, before JPEG) and its truth record."""
    image = spec.background.copy()
    height, width = image.shape[:2]
    faces = []
    for placed in spec.faces:
        x, y = placed.corner
        patch = placed.face.patch
        ph, pw = patch.shape[:2]
        left, top, right, bottom = max(x, 0), max(y, 0), min(x + pw, width), min(y + ph, height)
        if right > left and bottom > top:
            part = patch[top - y : bottom - y, left - x : right - x].astype(np.float32)
            if placed.face.alpha is not None:
                alpha = placed.face.alpha[top - y : bottom - y, left - x : right - x]
                part = alpha * part + (1 - alpha) * image[top:bottom, left:right]
            image[top:bottom, left:right] = np.clip(part + 0.5, 0, 255).astype(np.uint8)
        record = {
            "box": list(placed.box),
            "visible": visible_share(placed.box, (width, height)),
            "size": placed.size,
            "tilt": round(placed.tilt, 2),
            "condition": spec.condition,
            "label": placed.face.label,
            "source": placed.face.source,
            "row": None,
            "crc32": None,
            "frontal": None,
        }
        if placed.pixels is not None:
            record.update(row=placed.row, crc32=zlib.crc32(placed.pixels.tobytes()), frontal=bool(is_frontal(placed.pixels)))
        faces.append(record)
    image = degrade(image, spec.condition, spec.params)
    truth = {"image": spec.name, "condition": spec.condition, "params": spec.params, "background": spec.background_name, "faces": faces}
    return image, truth


def random_photo(
    name: str, condition: str, set_name: str, rng: np.random.Generator, fer_faces: list[FerFace], backgrounds: dict[str, np.ndarray],
    photograph: np.ndarray, size: tuple[int, int] = SIZE,
) -> PhotoSpec:
    """One photo under ``condition``, drawn with ``rng``; FER2013 faces are taken (popped) from
    ``fer_faces`` (without any, every face is the set's photograph)."""
    sources = PHOTO_SOURCES[set_name]
    background_name = sources["backgrounds"][int(rng.integers(len(sources["backgrounds"])))]
    spec = PhotoSpec(name, random_background(backgrounds[background_name], rng, size), background_name, condition)
    spec.params = condition_params(condition, rng)
    n_faces = 0 if condition == "no-face" else int(rng.integers(1, MAX_FACES + 1))
    edges = list(rng.permutation(4)) if condition == "cut" else []
    for index in range(n_faces):
        use_photo = not fer_faces or rng.random() < PHOTO_SHARE
        fer = None if use_photo else fer_faces[-1]
        context, flip = float(rng.uniform(*PHOTO_CONTEXT)), bool(rng.random() < 0.5)
        tilt = float(rng.uniform(*TILT) * rng.choice([-1, 1])) if condition == "tilt" else 0.0
        for _ in range(5):  # sizes
            side = int(rng.integers(SIDES[0], SIDES[1] + 1))
            if use_photo:
                face = photograph_face(sources["photo"], side, context, flip, photograph)
            else:
                face = fer_face(fer.pixels, fer.label, side)
            if tilt:
                face = rotate_face(face, tilt)
            candidates = (
                PlacedFace(face, place(face, rng, edges[index] if edges else None, size), side, tilt) for _ in range(50)
            )
            chosen = next((c for c in candidates if fits(c, spec.faces)), None)
            if chosen is not None:
                if fer is not None:
                    fer_faces.pop()
                    chosen.row, chosen.pixels = fer.row, fer.pixels
                spec.faces.append(chosen)
                break
    return spec


def conditions_for(n_photos: int, rng: np.random.Generator) -> list[str]:
    """:data:`CONDITIONS` in equal shares (as near as ``n_photos`` allows), in random order."""
    return [CONDITIONS[i] for i in rng.permutation(np.arange(n_photos) % len(CONDITIONS))]


# ---- FER2013 -------------------------------------------------------------------------------


def not_a_face(ferplus: str | os.PathLike | None, n_rows: int) -> np.ndarray:
    """Rows that FER+ (``fer2013new.csv``) marks as not a face (an empty image name); none
    without the file or when its rows are not FER2013's."""
    marked = np.zeros(n_rows, bool)
    if ferplus is None or not Path(ferplus).exists():
        return marked
    with open(ferplus, newline="") as f:
        rows = list(csv.reader(f))[1:]
    if len(rows) != n_rows:
        return marked
    return np.array([not row[1].strip() for row in rows])


def fer_pool(data, set_name: str, seed: int, ferplus: str | os.PathLike | None = None) -> list[FerFace]:
    """The set's FER2013 faces in random order (the last is drawn first): its Usage's rows,
    without FER+'s non-faces and without faces whose pixels occur in another set's Usage."""
    from ferlight.data.fer_data import USAGES

    own = PHOTO_SOURCES[set_name]["usage"]
    # No test split's face occurs in the other test split, nor in the Training set's photos.
    others = [USAGES.index(s["usage"]) for s in PHOTO_SOURCES.values() if s["usage"] not in (own, "Training")]
    usage = USAGES.index(own)
    other_pixels = {data.images[i].tobytes() for i in np.flatnonzero(np.isin(data.usage, others))}
    excluded = not_a_face(ferplus, len(data.images))
    rows = [i for i in np.flatnonzero(data.usage == usage) if not excluded[i] and data.images[i].tobytes() not in other_pixels]
    order = np.random.default_rng([seed, PHOTO_SETS.index(set_name), 1]).permutation(len(rows))
    return [FerFace(data.images[rows[i]], int(data.labels[rows[i]]), int(rows[i])) for i in order]


# ---- sets ----------------------------------------------------------------------------------


def make_photo_set(
    out: str | os.PathLike, set_name: str, fer_faces: list[FerFace] | None = None, n_photos: int = N_PHOTOS, seed: int = 0,
    meta: dict | None = None,
) -> Path:
    """Write ``n_photos`` photos of ``set_name`` as ``out/SET/NNNN-CONDITION.jpg`` and their truth as
    ``out/SET/truth.json``; returns the truth's path. ``fer_faces``: :func:`fer_pool`'s list (it is
    drawn from); without it every face is the set's photograph. ``meta``: recorded in the truth."""
    folder = Path(out) / set_name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.jpg"):
        old.unlink()
    sources = PHOTO_SOURCES[set_name]
    backgrounds = {name: background_image(name) for name in sources["backgrounds"]}
    photograph = photo(sources["photo"])
    pool = list(fer_faces or [])
    rng = np.random.default_rng([seed, PHOTO_SETS.index(set_name)])
    records = []
    for index, condition in enumerate(conditions_for(n_photos, rng)):
        name = f"{index:04d}-{condition}.jpg"
        spec = random_photo(name, condition, set_name, rng, pool, backgrounds, photograph)
        image, truth = render_photo(spec)
        quality = spec.params.get("quality", JPEG)
        cv2.imwrite(str(folder / name), image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        records.append(truth)
    truth = {
        "format": FORMAT,
        "set": set_name,
        "seed": seed,
        "width": SIZE[0],
        "height": SIZE[1],
        "usage": sources["usage"],
        "photograph": sources["photo"],
        "photograph_face": list(PHOTO_FACES[sources["photo"]]),
        "backgrounds": list(sources["backgrounds"]),
        "conditions": list(CONDITIONS),
        **(meta or {}),
        "photos": records,
    }
    path = folder / TRUTH
    path.write_text(json.dumps(truth, indent=None, separators=(",", ":")) + "\n")
    return path


def read_truth(folder: str | os.PathLike) -> dict:
    """The truth :func:`make_photo_set` wrote in a set's folder."""
    return json.loads((Path(folder) / TRUTH).read_text())
