"""``mlflow models serve`` of a fit's logged model: the real scoring server answers faces with
``ferlight.evaluate``'s probabilities, finds the face in an encoded image, and answers bad input with
a JSON error that ends in ferlight's one-line message, never a traceback (docs/serving.md)."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import cv2
import mlflow
import numpy as np
import pandas as pd
import pytest

from ferlight.data import load_fer2013, split_protocol
from ferlight.evaluate import EvalConfig, run_evaluation
from ferlight.fit import main
from ferlight.inference.boxes import box_iou
from ferlight.testing.live_clips import PHOTO_FACES, photo

START_TIMEOUT = 240  # seconds for the server to answer /ping (it loads torch and the model on a shared CPU)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers_ping(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/ping", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def model_server(model_uri: str, tracking_uri: str, cwd: Path):
    """``mlflow models serve -m MODEL_URI --env-manager local`` on a free loopback port, its base URL
    once ``/ping`` answers; stopped (the CLI and its uvicorn child, one process group) on exit."""
    port = _free_port()
    log_path = cwd / "serve.log"
    # The CLI starts `uvicorn` found on PATH: this interpreter's, as an activated environment would.
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
               "--host", "127.0.0.1", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        server = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers_ping(base):
            if server.poll() is not None or time.monotonic() > deadline:
                state = "gave no /ping" if server.poll() is None else f"exited with {server.returncode}"
                pytest.fail(f"mlflow models serve {state} in {START_TIMEOUT} s; its output ends:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.5)
        yield base
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    finally:
        try:  # whatever is left of the group: the CLI if it hung, uvicorn if it outlived the CLI
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        server.wait(timeout=30)


def invoke(base: str, body: dict) -> tuple[int, dict]:
    """POST ``body`` as JSON to ``/invocations``: the HTTP status and the JSON answer."""
    request = urllib.request.Request(f"{base}/invocations", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, content_type, text = response.status, response.headers.get("Content-Type"), response.read()
    except urllib.error.HTTPError as err:
        status, content_type, text = err.code, err.headers.get("Content-Type"), err.read()
    assert content_type == "application/json", (status, content_type, text[:500])
    return status, json.loads(text)


def split(column: str, values: list) -> dict:
    """The documented request: one column, one value per row."""
    return {"dataframe_split": {"columns": [column], "data": [[value] for value in values]}}


def png_base64(image: np.ndarray) -> str:
    return base64.b64encode(cv2.imencode(".png", image)[1].tobytes()).decode()


def assert_clear_error(status: int, answer: dict, error_code: str, line: str | None = None) -> None:
    """A 4xx JSON error without a traceback. MLflow frames a model's own message as
    ``Failed to predict data '<the input's repr>'. \\nError: <message>``: ``line`` is that last line."""
    assert 400 <= status < 500, (status, answer)
    assert answer["error_code"] == error_code and "stack_trace" not in answer, answer
    message = answer["message"]
    assert "Traceback" not in message and 'File "' not in message, message
    if line is None:  # MLflow's own message about the request
        assert "\n" not in message, message
    else:
        assert message.startswith("Failed to predict data '") and message.endswith(f"\nError: {line}"), message


@pytest.mark.slow
def test_the_scoring_server_answers_faces_and_images_and_rejects_bad_input(workdir, tiny_csv):
    args = ["--data", str(tiny_csv), "--arch", "fervgg_small", "--epochs", "1", "--batch-size", "32",
            "--accelerator", "cpu", "--devices", "1", "--precision", "32-true", "--protocol", "standard"]
    assert main(args) == 0
    uri = f"sqlite:///{workdir}/mlflow.db"
    client = mlflow.MlflowClient(uri)
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    model_uri = f"runs:/{run.info.run_id}/model"

    expected = run_evaluation(EvalConfig(checkpoint=[model_uri], tracking_uri=uri, data=str(tiny_csv),
                                         protocol="standard", precision="32-true", cache_dir=str(workdir / "cache")))
    data = load_fer2013(str(tiny_csv), cache_dir=str(workdir / "cache"))
    faces = data.images[split_protocol(data, "standard")["test"]]
    names = list(data.class_names)
    png = cv2.imencode(".png", photo("astronaut"))[1].tobytes()
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:  # the same model in this process, for the image's expected answer
        in_process = mlflow.pyfunc.load_model(model_uri).predict(pd.DataFrame({"image": [png]}))
    finally:
        mlflow.set_tracking_uri(before)

    with model_server(model_uri, uri, workdir) as base:
        # Faces: the test split's 48 x 48 faces as 0-255 ints, one row each, in evaluate's order.
        status, answer = invoke(base, split("face", [face.tolist() for face in faces]))
        assert status == 200 and list(answer) == ["predictions"], (status, str(answer)[:500])
        rows = pd.DataFrame(answer["predictions"])
        assert list(rows.columns) == ["row", "x", "y", "width", "height", "label", *names]
        assert list(rows["row"]) == list(range(len(faces)))
        assert (rows[["x", "y", "width", "height"]].to_numpy() == [0, 0, 48, 48]).all()
        assert np.allclose(rows[names].to_numpy(), expected.probabilities, atol=1e-4)
        assert list(rows["label"]) == [names[k] for k in expected.probabilities.argmax(1)]

        # An encoded image: base64 PNG text, which the model decodes; it finds the astronaut's face.
        status, answer = invoke(base, split("image", [base64.b64encode(png).decode()]))
        assert status == 200, (status, answer)
        [face] = answer["predictions"]
        box = [face[key] for key in ("x", "y", "width", "height")]
        assert face["row"] == 0 and box_iou(np.array([box]), np.array([PHOTO_FACES["astronaut"]]))[0, 0] > 0.5, box
        assert box == in_process.loc[0, ["x", "y", "width", "height"]].tolist()
        assert np.allclose([face[n] for n in names], in_process.loc[0, names].to_numpy(dtype=float), atol=1e-4)
        assert face["label"] == in_process.loc[0, "label"] and sum(face[n] for n in names) == pytest.approx(1, abs=1e-4)

        # Faces and images mixed in one request, one per row.
        mixed = {"dataframe_split": {"columns": ["face", "image"],
                                     "data": [[faces[0].tolist(), None], [None, base64.b64encode(png).decode()]]}}
        status, answer = invoke(base, mixed)
        assert status == 200 and [p["row"] for p in answer["predictions"]] == [0, 1], (status, str(answer)[:500])
        assert [answer["predictions"][1][k] for k in ("x", "y", "width", "height")] == box

        # Bad input: 400 with a JSON error, never a traceback.
        no_face = png_base64(np.full((120, 120, 3), 90, np.uint8))
        assert_clear_error(*invoke(base, split("image", [no_face])), "INVALID_PARAMETER_VALUE",
                           "row 0: no face found in the image")
        assert_clear_error(*invoke(base, split("face", [[[1, 2], [3, 4]]])), "INVALID_PARAMETER_VALUE",
                           "row 0: a face must be 48 x 48 grey pixels, got shape (2, 2)")
        assert_clear_error(*invoke(base, split("image", [base64.b64encode(b"not an image").decode()])),
                           "INVALID_PARAMETER_VALUE", "row 0: image is not a PNG, JPEG or other image OpenCV reads")
        assert_clear_error(*invoke(base, split("face", [None])), "INVALID_PARAMETER_VALUE",
                           "no input: give each row a 'face' (48 x 48 grey) or an 'image' (PNG/JPEG bytes)")
        assert_clear_error(*invoke(base, split("image", ["not base64!"])), "INVALID_PARAMETER_VALUE",
                           "row 0: image is neither bytes nor base64 text")
        assert_clear_error(*invoke(base, {"faces": [[0]]}), "BAD_REQUEST")  # not the scoring protocol
    assert not _answers_ping(base)  # stopped
