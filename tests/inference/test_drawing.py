"""What the window and the annotated video show: boxes, labels, bars beside the box, the frame rate."""

import numpy as np

from ferlight.data import CLASS_NAMES
from ferlight.inference.drawing import annotate
from ferlight.inference.recognizer import Face
from ferlight.testing.synthetic_clip import smooth_background


def test_annotate_draws_bars_beside_the_box_and_the_frame_rate():
    frame = smooth_background(640, 480)
    probabilities = {name: (0.7 if name == "happy" else 0.05) for name in CLASS_NAMES}
    right_face = Face((560, 100, 70, 70), probabilities, "happy", 3)  # no room on its right
    left_face = Face((50, 100, 70, 70), probabilities, "happy", 4)

    def changed(image):
        return np.abs(image.astype(int) - frame.astype(int)).sum(axis=2) > 0

    drawn = changed(annotate(frame, [left_face, right_face], fps=30.0))
    assert drawn[100:180, 124:240].mean() > 0.5  # the bar panel right of the left face
    assert drawn[100:180, 436:554].mean() > 0.5  # ... and left of the right face
    assert drawn[5:25, 8:60].any()  # the frame rate
    assert not changed(annotate(frame, [], fps=None)).any()


def test_a_grey_frame_is_drawn_on_in_colour_and_left_as_it_was():
    grey = np.full((120, 320), 90, np.uint8)
    face = Face((10, 30, 40, 40), {"angry": 0.2, "happy": 0.8}, "happy")
    out = annotate(grey, [face])
    assert out.shape == (120, 320, 3) and (grey == 90).all()
    assert tuple(out[50, 10]) == (80, 175, 76)  # the box's left edge, in the colour of "happy" (the second class)
