#!/usr/bin/env bash
# Prepare .whl/ for tools/gpu_check.sh: the wheels of everything vae_nb and `nbdev-test` import that the GPU machine
# lacks (it has python 3.12 with torch, torchvision, accelerate, matplotlib, pandas, scikit-learn, Pillow, PyYAML and
# their dependencies, and no network). Run here, with network; the versions are the ones installed in this venv (the
# ones the tests ran with). --no-deps: exactly this list, found by importing every vae_nb module, nbdev's test runner
# and a failing notebook cell, and listing the distributions of the modules loaded that the GPU machine has not.
# (fastai's declared spacy dependency is left out: only fastai.text imports it.)
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS="anyio asttokens astunparse beartype cloudpickle comm defusedxml execnb executing fastai fastcore fastdownload
fastprogress fasttransform ipython ipython-pygments-lexers ipywidgets itsdangerous jedi parso matplotlib-inline nbdev
plum-dispatch pure_eval Pygments python-fasthtml python-multipart rich markdown-it-py mdurl sniffio stack-data starlette
traitlets tabulate pexpect ptyprocess prompt_toolkit wcwidth"
pinned=$(python - $WHEELS <<'PY'
import importlib.metadata as md, sys
print(' '.join(f"{d}=={md.version(d)}" for d in sys.argv[1:]))
PY
)
mkdir -p .whl
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
    --platform manylinux2014_x86_64 --platform any -d .whl $pinned
ls .whl | wc -l
du -sh .whl
