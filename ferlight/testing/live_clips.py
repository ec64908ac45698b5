"""Real-face video clips with ground truth, for the live benchmark and the live tests.

Faces come from two real sources:

- photographs that ship inside PyPI packages (scikit-image's astronaut, Eileen Collins, and
  matplotlib's Grace Hopper), cut out with head-and-shoulders context;
- FER2013 faces (48 x 48 grey, each with its emotion label), upscaled. FER2013 holds many
  profile and occluded faces that no frontal detector finds; only faces that one of OpenCV's
  frontal Haar cascades finds in a clean still (:func:`is_frontal`) are used, so that the clips
  measure what the live pipeline (cascade, scaling, near-face search, tracking) loses, not what
  no frontal cascade could find.
  The detection rate on all faces is measured apart (``bench/bench_live_crop.py``).

They are pasted on natural images that scikit-image and matplotlib ship, and moved, brought in
and out of view, and degraded (brightness, contrast, blur, noise, JPEG) as a camera would.
Each clip set (``tune``, ``heldout``) uses its own faces and backgrounds, so a setting tuned on
one is measured on faces and scenes it has never seen.

Ground truth, per frame and face: the face box, the share of it inside the frame (``visible``),
the source and the FER2013 label (None for photographs). A face wholly inside the frame must be
found; a face partly outside may be found or not (neither counts).
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ferlight.inference.video import VideoSink

SIZE = (640, 480)
FPS = 15.0
N_FRAMES = 90
SEEDS = (0, 1)  # each seed gives one clip of every kind
FER_PAD = 0.25  # FER2013 faces are padded by this share of their side on each side
SETS = ("tune", "heldout")
# Per set: the photograph, the background images and the FER2013 Usage its faces come from.
SET_SOURCES = {
    "tune": {"photo": "astronaut", "backgrounds": ("coffee", "chelsea", "brick", "grass", "clock", "Minduka_Present_Blue_Pack.png"), "usage": "PublicTest"},
    "heldout": {"photo": "hopper", "backgrounds": ("rocket", "hubble_deep_field", "gravel", "immunohistochemistry", "coins", "retina"), "usage": "PrivateTest"},
}
# Face box (x, y, w, h) in each photograph.
PHOTO_FACES = {"astronaut": (177, 66, 95, 95), "hopper": (155, 105, 222, 222)}
FRONTAL_CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt.xml", "haarcascade_frontalface_alt2.xml")


@dataclass
class FaceImage:
    """A BGR patch holding one face, the face's box in it, its label and where it comes from."""

    patch: np.ndarray
    box: tuple[int, int, int, int]
    label: int | None
    source: str
    alpha: np.ndarray | None = None  # H x W x 1 opacity in [0, 1]; None: wholly opaque


@dataclass
class FacePath:
    """How a face moves in a clip: the patch's top-left corner bounces between ``low`` and
    ``high`` (per axis) at ``velocity`` px per frame; it is shown in frames ``first..last``."""

    face: FaceImage
    start: tuple[float, float]
    velocity: tuple[float, float]
    low: tuple[float, float]
    high: tuple[float, float]
    first: int = 0
    last: int = N_FRAMES - 1

    def corner(self, frame: int) -> tuple[int, int]:
        return tuple(int(round(_bounce(s + v * frame, lo, hi))) for s, v, lo, hi in zip(self.start, self.velocity, self.low, self.high))


@dataclass
class ClipSpec:
    """Everything one clip is made of; :func:`render` turns it into frames and ground truth."""

    name: str
    background: np.ndarray
    faces: list[FacePath]
    n_frames: int = N_FRAMES
    contrast: float = 1.0
    brightness: float = 0.0
    brightness_ramp: float = 0.0  # added over the clip, linearly
    blur: float = 0.0  # Gaussian sigma, px
    noise: float = 0.0  # sensor noise sigma, grey levels
    jpeg: int | None = None  # JPEG quality of each frame


def _bounce(x: float, low: float, high: float) -> float:
    """``x`` reflected into [low, high] (a triangle wave)."""
    if high <= low:
        return (low + high) / 2
    span = high - low
    t = (x - low) % (2 * span)
    return low + (t if t <= span else 2 * span - t)


# ---- sources -------------------------------------------------------------------------------


def photo(name: str) -> np.ndarray:
    """A shipped photograph (BGR) by name."""
    if name == "hopper":
        import matplotlib.cbook

        return cv2.imread(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    import skimage.data

    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


def background(name: str, size: tuple[int, int] = SIZE) -> np.ndarray:
    """A natural image shipped by scikit-image (or matplotlib, by file name), BGR, cropped to the
    aspect of ``size`` and resized to it."""
    if name.endswith(".png"):
        import matplotlib.cbook

        image = cv2.imread(str(matplotlib.cbook.get_sample_data(name, asfileobj=False)), cv2.IMREAD_COLOR)
    else:
        import skimage.data

        image = np.asarray(getattr(skimage.data, name)())
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2BGR)
    width, height = size
    h, w = image.shape[:2]
    if w / h > width / height:
        cut = int(h * width / height)
        image = image[:, (w - cut) // 2 : (w - cut) // 2 + cut]
    else:
        cut = int(w * height / width)
        image = image[(h - cut) // 2 : (h - cut) // 2 + cut]
    return cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)


def photo_face(name: str, side: int, context: float, image: np.ndarray | None = None) -> FaceImage:
    """The face of photograph ``name`` with ``context`` x its side around it (head and shoulders,
    as far as the photo goes), scaled so that the face is ``side`` px."""
    image = photo(name) if image is None else image
    x, y, w, h = PHOTO_FACES[name]
    m = int(context * w)
    left, top = max(x - m, 0), max(y - m, 0)
    crop = image[top : y + h + int(1.6 * m), left : x + w + m]  # more below: neck and shoulders
    scale = side / w
    patch = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    box = (int(round((x - left) * scale)), int(round((y - top) * scale)), side, side)
    return FaceImage(patch, box, None, name)


def fer_face(pixels: np.ndarray, label: int, side: int, pad: float = FER_PAD) -> FaceImage:
    """A 48 x 48 FER2013 face upscaled to ``side`` px and padded by ``pad`` x ``side`` on each
    side with its edge pixels, the padding fading into the background: FER2013's tight crops
    otherwise meet the background at a hard square edge that no camera shows. The face box is the
    upscaled face."""
    grey = cv2.resize(pixels, (side, side), interpolation=cv2.INTER_CUBIC)
    m = int(round(pad * side))
    padded = cv2.copyMakeBorder(grey, m, m, m, m, cv2.BORDER_REPLICATE)
    ramp = np.minimum(np.arange(side + 2 * m), np.arange(side + 2 * m)[::-1]).astype(np.float32)
    fade = np.clip(ramp / max(m, 1), 0, 1)
    alpha = np.minimum(fade[:, None], fade[None, :])[..., None]
    return FaceImage(cv2.cvtColor(padded, cv2.COLOR_GRAY2BGR), (m, m, side, side), int(label), "fer2013", alpha)


_CASCADES: list[cv2.CascadeClassifier] = []


def is_frontal(pixels: np.ndarray) -> bool:
    """Whether any of OpenCV's frontal-face Haar cascades (``FRONTAL_CASCADES``, at OpenCV's
    defaults: 1.1, 5, no equalisation) finds the 48 x 48 face upscaled to 144 px on a plain grey
    canvas: the screen FER2013 faces pass to be used. Several cascades, so that the screen does
    not favour the one the live detector uses."""
    if not _CASCADES:
        _CASCADES.extend(cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / name)) for name in FRONTAL_CASCADES)
    canvas = np.full((288, 288), 128, np.uint8)
    canvas[72:216, 72:216] = cv2.resize(pixels, (144, 144), interpolation=cv2.INTER_CUBIC)
    for cascade in _CASCADES:
        for x, y, w, h in cascade.detectMultiScale(canvas, 1.1, 5, minSize=(72, 72)):
            if abs(x + w / 2 - 144) < 36 and abs(y + h / 2 - 144) < 36:
                return True
    return False


def frontal_fer_faces(images: np.ndarray, labels: np.ndarray, count: int, seed: int) -> list[tuple[np.ndarray, int]]:
    """``count`` faces drawn at random from ``images`` that pass :func:`is_frontal`."""
    chosen = []
    for i in np.random.default_rng(seed).permutation(len(images)):
        if is_frontal(images[i]):
            chosen.append((images[i], int(labels[i])))
            if len(chosen) == count:
                break
    return chosen


# ---- clips ---------------------------------------------------------------------------------

# The kinds of clip every set holds, one clip each: (name, number of faces, face side range px,
# speed range px/frame, overhang: how far past the frame edge a face may go, in face sides).
CLIP_KINDS = (
    ("one-still", 1, (60, 250), (0, 0), 0.0),
    ("one-slow", 1, (80, 200), (1, 4), 0.0),
    ("one-fast", 1, (60, 160), (8, 10), 0.0),
    ("two-second-enters", 2, (90, 170), (3, 5), 0.0),
    ("three", 3, (70, 150), (0, 6), 0.0),
    ("four-small", 4, (60, 110), (0, 4), 0.0),
    ("enter-leave", 1, (80, 180), (5, 10), 1.3),
    ("partly-out", 2, (80, 160), (2, 6), 0.5),
    ("no-face", 0, (0, 0), (0, 0), 0.0),
    ("two-small-blurred", 2, (60, 80), (1, 5), 0.0),
    ("one-large", 1, (200, 250), (2, 6), 0.0),
    ("two-dark-jpeg", 2, (80, 180), (0, 8), 0.0),
)


def _cells(n: int, size: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Regions (x0, y0, x1, y1) that keep ``n`` faces apart: columns for up to 3, a 2 x 2 grid for 4."""
    width, height = size
    if n == 4:
        return [(i * width // 2, j * height // 2, (i + 1) * width // 2, (j + 1) * height // 2) for j in range(2) for i in range(2)]
    return [(i * width // max(n, 1), 0, (i + 1) * width // max(n, 1), height) for i in range(max(n, 1))]


def _fit_face(make, side: int, cell: tuple[int, int, int, int]) -> FaceImage:
    """``make(side)``, shrunk until its patch fits in ``cell``."""
    while True:
        face = make(side)
        ph, pw = face.patch.shape[:2]
        if (pw <= cell[2] - cell[0] and ph <= cell[3] - cell[1]) or side <= 40:
            return face
        side = int(side * 0.9)


def random_clip(kind: tuple, set_name: str, rng: np.random.Generator, fer_faces: list, photo_image: np.ndarray, size=SIZE) -> ClipSpec:
    """One clip of ``kind`` (a :data:`CLIP_KINDS` row) from the set's sources, drawn with ``rng``."""
    name, n_faces, sides, speeds, overhang = kind
    sources = SET_SOURCES[set_name]
    width, height = size
    spec = ClipSpec(name, background(sources["backgrounds"][rng.integers(len(sources["backgrounds"]))], size), [])
    spec.contrast = float(rng.uniform(0.7, 1.2))
    spec.brightness = float(rng.uniform(-40, 30))
    spec.brightness_ramp = float(rng.choice([0, 0, rng.uniform(-40, 40)]))
    spec.blur = float(rng.choice([0, 0, 0.8, 1.5]))
    spec.noise = float(rng.choice([0, 2, 5]))
    spec.jpeg = [None, 80, 50][rng.integers(3)]
    if name == "two-small-blurred":
        spec.blur = 1.5
    if name == "two-dark-jpeg":
        spec.contrast, spec.brightness, spec.jpeg = 0.6, -50.0, 35
    for index, cell in enumerate(_cells(n_faces, size)[:n_faces]):
        side = int(rng.integers(sides[0], sides[1] + 1))
        use_photo = not fer_faces or rng.random() < 0.35
        if use_photo:
            context = float(rng.uniform(0.3, 0.7))
            face = _fit_face(lambda s: photo_face(sources["photo"], s, context, photo_image), side, cell)
            if rng.random() < 0.5:
                face = FaceImage(face.patch[:, ::-1].copy(), (face.patch.shape[1] - face.box[0] - face.box[2],) + face.box[1:], None, face.source)
        else:
            pixels, label = fer_faces.pop()
            face = _fit_face(lambda s: fer_face(pixels, label, s), side, cell)
        ph, pw = face.patch.shape[:2]
        fw = face.box[2]
        x0, y0, x1, y1 = cell
        # The patch may run past the frame edge (never into another face's cell) by `overhang` faces.
        low = (x0 - (overhang * fw if x0 == 0 else 0), y0 - (overhang * fw if y0 == 0 else 0))
        high = (x1 - pw + (overhang * fw if x1 == width else 0), y1 - ph + (overhang * fw if y1 == height else 0))
        speed = float(rng.uniform(*speeds))
        angle = float(rng.uniform(0, 2 * np.pi))
        start = tuple(float(rng.uniform(lo, max(lo, hi))) for lo, hi in zip(low, high))
        path = FacePath(face, start, (speed * np.cos(angle), speed * np.sin(angle)), low, high)
        if name == "enter-leave":  # start wholly outside, cross the frame, leave
            path.start = (low[0], float(rng.uniform(0, max(0, height - ph))))
            path.velocity = (speed, 0.0)
        if name == "two-second-enters" and index == 1:  # appears suddenly and stays still
            path.velocity, path.first = (0.0, 0.0), int(rng.integers(12, 40))
        if name == "two-second-enters":
            path.last = spec.n_frames - 16  # the last 15 frames have no face
        spec.faces.append(path)
    return spec


def render(spec: ClipSpec) -> tuple[list[np.ndarray], list[list[dict]]]:
    """The frames (BGR) of ``spec`` and, per frame, its faces' ground truth."""
    rng = np.random.default_rng(zlib.crc32(spec.name.encode()))
    height, width = spec.background.shape[:2]
    frames, truth = [], []
    for t in range(spec.n_frames):
        frame = spec.background.copy()
        faces = []
        for face_id, path in enumerate(spec.faces):
            if not path.first <= t <= path.last:
                continue
            x, y = path.corner(t)
            patch = path.face.patch
            ph, pw = patch.shape[:2]
            left, top, right, bottom = max(x, 0), max(y, 0), min(x + pw, width), min(y + ph, height)
            if right <= left or bottom <= top:
                continue
            part = patch[top - y : bottom - y, left - x : right - x]
            if path.face.alpha is not None:
                alpha = path.face.alpha[top - y : bottom - y, left - x : right - x]
                part = (alpha * part + (1 - alpha) * frame[top:bottom, left:right]).astype(np.uint8)
            frame[top:bottom, left:right] = part
            bx, by, bw, bh = path.face.box
            box = (x + bx, y + by, bw, bh)
            inside = max(0, min(box[0] + bw, width) - max(box[0], 0)) * max(0, min(box[1] + bh, height) - max(box[1], 0))
            if inside == 0:
                continue
            faces.append({"id": face_id, "box": list(box), "visible": round(inside / (bw * bh), 4), "label": path.face.label, "source": path.face.source})
        frames.append(_degrade(frame, spec, t / max(spec.n_frames - 1, 1), rng))
        truth.append(faces)
    return frames, truth


def _degrade(frame: np.ndarray, spec: ClipSpec, progress: float, rng: np.random.Generator) -> np.ndarray:
    """What a camera does to a frame: gain and offset, blur, noise, JPEG."""
    out = frame.astype(np.float32) * spec.contrast + spec.brightness + spec.brightness_ramp * progress
    if spec.blur:
        out = cv2.GaussianBlur(out, (0, 0), spec.blur)
    if spec.noise:
        out += rng.normal(0, spec.noise, out.shape).astype(np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if spec.jpeg:
        out = cv2.imdecode(cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg])[1], cv2.IMREAD_COLOR)
    return out


def write_video(path: str | os.PathLike, frames: list[np.ndarray], fps: float = FPS) -> None:
    """Write ``frames`` as the live command writes its video (mp4v for .mp4, MJPG for .avi)."""
    with VideoSink(path, fps) as sink:
        for frame in frames:
            sink.write(frame)


def write_clip(folder: Path, spec: ClipSpec, fps: float = FPS) -> Path:
    """Render ``spec`` to ``folder/NAME.mp4`` with its ground truth in ``NAME.truth.json``."""
    frames, truth = render(spec)
    video = folder / f"{spec.name}.mp4"
    write_video(video, frames, fps)
    height, width = frames[0].shape[:2]
    record = {"fps": fps, "width": width, "height": height, "frames": truth}
    (folder / f"{spec.name}.truth.json").write_text(json.dumps(record))
    return video


def make_clip_set(out: str | os.PathLike, set_name: str, fer=None, seeds: tuple[int, ...] = SEEDS) -> list[Path]:
    """Write the clips of ``set_name`` under ``out/set_name``: for each seed, one clip of every
    :data:`CLIP_KINDS` row, named ``KIND-SEED``.

    ``fer``: a :class:`ferlight.data.FERData` to draw faces from (its ``SET_SOURCES`` usage);
    without it the clips use the set's photograph alone.
    """
    sources = SET_SOURCES[set_name]
    folder = Path(out) / set_name
    folder.mkdir(parents=True, exist_ok=True)
    image = photo(sources["photo"])
    fer_faces = []
    if fer is not None:
        from ferlight.data.fer_data import USAGES

        rows = fer.usage == USAGES.index(sources["usage"])
        fer_faces = frontal_fer_faces(fer.images[rows], fer.labels[rows], 4 * len(CLIP_KINDS) * len(seeds), SETS.index(set_name))
    videos = []
    for seed in seeds:
        rng = np.random.default_rng([seed, SETS.index(set_name)])
        for kind in CLIP_KINDS:
            spec = random_clip(kind, set_name, rng, fer_faces, image)
            spec.name = f"{spec.name}-{seed}"
            videos.append(write_clip(folder, spec))
    return videos


# The "clean" clips: two photographed faces, side by side, drifting slowly over a plain wall, as
# a webcam sees two people. Not for tuning: a speed check beside the fer package, whose Haar
# cascade finds thousands of false faces on the other sets' busy backgrounds (each classified),
# which slows it down far more than a real scene would. (photograph, face side px) per clip.
CLEAN_CLIPS = (("hopper", 120), ("hopper", 160), ("astronaut", 130))


def plain_wall(size: tuple[int, int] = SIZE) -> np.ndarray:
    """A smooth, slightly warm grey gradient (BGR), like a lit wall."""
    width, height = size
    rows, cols = np.mgrid[0:height, 0:width]
    wall = 150 + 40 * cols / width - 20 * rows / height
    return np.clip(np.stack([wall, wall * 0.95, wall * 0.9], axis=-1), 0, 255).astype(np.uint8)


def make_clean_clips(out: str | os.PathLike, size: tuple[int, int] = SIZE) -> list[Path]:
    """Write the :data:`CLEAN_CLIPS` under ``out/clean`` as ``two-clean-INDEX``: each photograph's
    face and its mirror image, one in each half of the frame, moving 1-2 px a frame, with light
    sensor noise and JPEG at quality 80."""
    folder = Path(out) / "clean"
    folder.mkdir(parents=True, exist_ok=True)
    width, height = size
    videos = []
    for index, (name, side) in enumerate(CLEAN_CLIPS):
        face = photo_face(name, side, 0.6)
        mirror = FaceImage(face.patch[:, ::-1].copy(), (face.patch.shape[1] - face.box[0] - face.box[2],) + face.box[1:], None, face.source)
        ph, pw = face.patch.shape[:2]
        paths = [
            FacePath(face, (20, 40), (1.5, 0.8), (0, 0), (width // 2 - pw, height - ph)),
            FacePath(mirror, (width // 2 + 10, 60), (-1.2, 1.0), (width // 2, 0), (width - pw, height - ph)),
        ]
        videos.append(write_clip(folder, ClipSpec(f"two-clean-{index}", plain_wall(size), paths, noise=2.0, jpeg=80)))
    return videos


def read_truth(video: str | os.PathLike) -> dict:
    """The ground truth written beside ``video`` by :func:`write_clip`."""
    path = Path(video)
    return json.loads(path.with_name(f"{path.stem}.truth.json").read_text())
