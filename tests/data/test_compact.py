"""compact: the xz-compressed raw faces with their labels CSV beside them."""

from __future__ import annotations

import lzma

from ferlight.data import USAGES, load_fer2013


def test_compact_layout(tmp_path, data, assert_same):
    with lzma.open(tmp_path / "fer2013_images.u8.xz", "wb") as f:
        f.write(data.images.tobytes())
    rows = [f"{label},{USAGES[usage]}" for label, usage in zip(data.labels, data.usage)]
    (tmp_path / "fer2013_labels.csv").write_text("emotion,Usage\n" + "\n".join(rows) + "\n")
    assert_same(load_fer2013(tmp_path / "fer2013_images.u8.xz", cache_dir=tmp_path / "cache"), data)
