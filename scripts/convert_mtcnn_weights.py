"""Write ``ferlight/weights/mtcnn.pt`` from the MTCNN weights in the facenet-pytorch wheel.

    pip download facenet-pytorch==2.6.0 --no-deps -d /tmp/fnp && unzip -q /tmp/fnp/*.whl -d /tmp/fnp
    python scripts/convert_mtcnn_weights.py /tmp/fnp/facenet_pytorch/data

facenet-pytorch itself cannot be a dependency (it pins torch < 2.3); its three state dicts map
one to one, in order, onto :mod:`ferlight.inference.mtcnn`'s modules, less O-Net's landmark layer,
which ferlight does not use.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ferlight.inference.mtcnn import WEIGHTS, PNet, onet, rnet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="facenet_pytorch/data, holding pnet.pt, rnet.pt and onet.pt")
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args()
    converted = {}
    for name, module in (("pnet", PNet()), ("rnet", rnet()), ("onet", onet())):
        source = {k: v for k, v in torch.load(args.data / f"{name}.pt", weights_only=True).items() if not k.startswith("dense6_3")}
        target = module.state_dict()
        if [v.shape for v in source.values()] != [v.shape for v in target.values()]:
            raise SystemExit(f"error: {args.data / name}.pt does not match ferlight's {name}")
        converted[name] = {key: value.clone() for key, value in zip(target, source.values())}
        module.load_state_dict(converted[name])
    torch.save(converted, args.out)
    print(args.out)


if __name__ == "__main__":
    main()
