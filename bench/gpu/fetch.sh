#!/usr/bin/env bash
# Run HERE (a machine with PyPI): fill the two git-ignored folders a lent GPU machine needs and
# cannot fetch itself (see bench/gpu/README.md):
#   .whl/   Python 3.12 wheels of what its image lacks: MLflow (the client and SQLite store of
#           mlflow-skinny), Optuna, optuna-integration, jsonargparse and their dependencies
#           (20.7 MB; the image already has torch, lightning, torchmetrics, numpy, matplotlib ...)
#   .data/  the compact FER2013 (61 MB), from ../shared/data
# The two cannot travel in one call (64 MiB a call), hence the two calls of README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
WHEELS=(
  mlflow-skinny==3.17.2 optuna==5.0.0 optuna-integration==5.0.0 jsonargparse==4.53.0
  alembic==1.20.1 sqlalchemy==2.1.9 mako==1.4.3 colorlog==6.12.0
  cachetools==7.3.3 databricks-sdk==0.162.0 google-auth==2.63.0 pyasn1==0.6.5 pyasn1-modules==0.4.2
  cryptography==50.0.2 cffi==2.1.1 pycparser==3.12 fastapi==0.165.0 starlette==1.10.0 uvicorn==0.54.0
  gitpython==3.2.1 gitdb==4.0.12 smmap==5.0.3 importlib-metadata==9.1.0 python-dotenv==1.2.4 sqlparse==0.6.1
  opentelemetry-api==1.45.2 opentelemetry-sdk==1.45.2 opentelemetry-proto==1.45.2
  opentelemetry-semantic-conventions==0.66b2 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0
  typing-inspection==0.4.5
)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "${WHEELS[@]}"
mkdir -p .data
cp ../shared/data/fer2013_images.u8.xz ../shared/data/fer2013_labels.csv .data/
du -sh .whl .data
