#!/usr/bin/env bash
# The GPU check of vae_nb: what only a CUDA machine can show, in one script, each step logged and timed.
#   1. every latent family (vae_nb.core.models.bottleneck_names(): families added later are included) trained one epoch
#      on full MNIST (the quick preset) as one sweep (`vae-nb train -m`: one process, each family's status in its
#      sweep.json, a failing family reported without stopping the others, and the sweep's compare table), then
#      `vae-nb evaluate` of one run and `vae-nb compare` of all of them;
#   2. the notebooks' `#| gpu` cells (`nbdev-test --flags gpu` on the notebooks that have them, only those);
#   3. `vae-nb bench --device cuda`, and one epoch of the quick preset in fp32 and in bf16 (seconds of each);
#   4. the nll_dynamic_mnist preset trained to the end and scored with k = 5000 on all 10 000 test images;
#   5. only when asked for (--steps repro: hours, even on a GPU), the published rows at the papers' budgets, each a
#      sweep of many jobs at once on the one card (the local launcher, --jobs $REPRO_JOBS, default 8), scored on all
#      10 000 test images as they finish: S-VAE Table 1 (N-VAE latent d and S-VAE on S^d for d = 2, 5, 10, 20, 40, the
#      nvae_mnist and svae_mnist presets, the S-VAE with the official code's floor kappa >= 1, 500 epochs as Pythae's svae.py; NLL k = 500), the VampPrior (vamp_mnist, 2,000 epochs) and
#      IWAE k = 5 and 50 (iwae_mnist, 3,280 epochs; NLL k = 5000), and the dSprites objectives (all six of disentanglement_lib's: beta, beta-TC, Factor, AnnealedVAE (capacity), DIP-I, DIP-II) at disentanglement_lib's
#      budget (26 epochs of the whole grid = about 300,000 steps of batch 64), scored with --disentanglement.
# Everything goes under $OUT (default: a new temporary folder): logs/<step>.log, runs/, and summary.json
# (each step's command, exit status and seconds, rewritten after every step, so a run cut short keeps what it did).
#
# Usage:  tools/gpu_check.sh                      # on the GPU machine (device cuda, full sizes)
#         tools/gpu_check.sh --device cpu --quick # here (and in CI): digits 0 and 1, max_train 300, k 5; no gpu cells, no bench,
#                                                 # no separate compare or precision runs (the sweep's table and its fp32 runs stand for them)
#         tools/gpu_check.sh --steps families,nll # some steps only (families, evaluate, compare, gpu_cells, bench, precision, nll, repro)
#         tools/gpu_check.sh --steps repro        # the reproductions (with --quick: one short epoch each, to rehearse)
#
# What the GPU machine must be given (it has python 3.12 with torch (CUDA), torchvision, accelerate, matplotlib, pandas,
# scikit-learn, Pillow and PyYAML, and no network):
#   .whl/      the wheels of everything else vae_nb and nbdev-test import: fastai, fastcore, fastprogress, fasttransform,
#              plum-dispatch, medmnist, tabulate, ipywidgets, nbdev, execnb, IPython and theirs (the exact list and the
#              command that downloads them for cp312 manylinux: tools/gpu_wheels.sh, run here). This script installs
#              them with `pip install --no-index --no-deps --target .whl/site .whl/*.whl` and puts .whl/site on PYTHONPATH.
#   data/      MNIST in torchvision's layout (data/MNIST/raw/*-ubyte*), an ignored folder: `cp -r $VAE_NB_DATA/MNIST data/`.
#              VAE_NB_DATA defaults to it when it exists (the cache of decoded arrays is written next to it).
#   the checkout itself, on PYTHONPATH (no install).
# Device run, carrying both: run(command="OUT=$OUT bash tools/gpu_check.sh", carry=[".whl", "data"]).
set -uo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
DEVICE=cuda QUICK=0 STEPS=families,evaluate,compare,gpu_cells,bench,precision,nll
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --steps) STEPS="$2"; shift 2 ;;
    *) echo "gpu_check.sh: unknown argument $1 (--device cpu|cuda, --quick, --steps a,b)" >&2; exit 2 ;;
  esac
done
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT/logs" "$OUT/runs"
export MPLBACKEND=Agg PYTHONUNBUFFERED=1
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
if ls .whl/*.whl >/dev/null 2>&1; then
  if [ -d .whl/site ] || python -m pip install -q --no-index --no-deps --target .whl/site .whl/*.whl; then
    export PYTHONPATH="$repo:$repo/.whl/site${PYTHONPATH#$repo}" PATH="$repo/.whl/site/bin:$PATH"
  else
    rm -rf .whl/site; echo "gpu_check.sh: the wheels in .whl/ do not install here (they are for python 3.12): using this environment's packages" >&2
  fi
fi
[ -z "${VAE_NB_DATA:-}" ] && [ -d data/MNIST ] && export VAE_NB_DATA="$repo/data"
VAE_NB=(python -c 'import sys; from vae_nb.tools.cli import main; sys.exit(main(sys.argv[1:]))')   # the vae-nb script, without an install

if [ "$QUICK" = 1 ]; then
  SIZE=(max_train=300 valid_pct=0.05 'classes=[0,1]') K=5 IWN=50 NLL=(epochs=1 max_train=300 'classes=[0,1]') NLL_K=5 NLL_N=100
  REPRO=(epochs=1 max_train=300) REPRO_DS=(epochs=1 dataset_kwargs.n=640) SVAE_EPOCHS=1 VAMP_EPOCHS=1 IWAE_EPOCHS=1 REPRO_K=5 REPRO_KLONG=5 REPRO_N=100 DIS=(--dis-scale 0.002)
  STEPS="${STEPS//bench/}"                                         # full epochs of all of MNIST, three pipelines: not quick
else
  SIZE=(max_train=null) K=1000 IWN=1000 NLL=() NLL_K=5000 NLL_N=0
  REPRO=() REPRO_DS=() SVAE_EPOCHS=500 VAMP_EPOCHS=2000 IWAE_EPOCHS=3280 REPRO_K=500 REPRO_KLONG=5000 REPRO_N=0 DIS=()
fi
echo '[]' > "$OUT/summary.json"
failed=0
step() {   # step NAME COMMAND...: run it, log it, add {name, command, rc, seconds} to summary.json
  local name="$1"; shift
  case ",machine,$STEPS," in *",${name%%:*},"*) ;; *) return 0 ;; esac
  local t0=$SECONDS log="$OUT/logs/${name//[:\/]/_}.log"
  echo "=== $name"
  "$@" > "$log" 2>&1; local rc=$?
  [ $rc = 0 ] || { failed=$((failed + 1)); echo "    FAILED (rc $rc): tail of $log"; tail -n 5 "$log"; }
  python - "$OUT/summary.json" "$name" "$rc" "$((SECONDS - t0))" "$*" <<'EOF'
import json, sys
path, name, rc, secs, cmd = sys.argv[1:]
s = json.load(open(path)); s.append(dict(step=name, rc=int(rc), seconds=int(secs), command=cmd))
json.dump(s, open(path, 'w'), indent=1)
EOF
}

step machine python -c "import torch, vae_nb.tools.benchmarks as b; print(b.machine()); print('cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
families=$(python -W ignore -c 'from vae_nb.core.models import bottleneck_names; print(",".join(bottleneck_names()))')
step families "${VAE_NB[@]}" train -m quick "bottleneck=$families" epochs=1 "${SIZE[@]}" viz_every=0 quiet=true "device=$DEVICE" "out=$OUT/runs"
step evaluate "${VAE_NB[@]}" evaluate "$OUT/runs/bottleneck=gaussian" --k "$K" --iw-n "$IWN"
[ "$QUICK" = 1 ] || step compare "${VAE_NB[@]}" compare "$OUT"/runs/bottleneck=* --out "$OUT/comparison" --k "$K" --iw-n "$IWN"
if [ "$DEVICE" = cuda ]; then
  gpu_nbs=$(grep -l '"#| gpu' nbs/*/*.ipynb | tr '\n' ' ')
  for nb in $gpu_nbs; do step "gpu_cells:$(basename "$nb" .ipynb)" nbdev-test "$nb" --flags gpu; done
else echo "=== gpu_cells: skipped (they need CUDA)"; fi
step bench "${VAE_NB[@]}" bench --device "$DEVICE" --rounds 3 --epochs 2
for p in 32 bf16; do
  [ "$DEVICE" = cpu ] && continue                                  # bf16 autocast is for GPUs with tensor cores; fp32 ran above
  step "precision:$p" "${VAE_NB[@]}" train quick epochs=1 "${SIZE[@]}" viz_every=0 quiet=true "precision=$p" "device=$DEVICE" "out=$OUT/runs_precision/$p"
done
step nll "${VAE_NB[@]}" train nll_dynamic_mnist "${NLL[@]}" quiet=true "device=$DEVICE" "out=$OUT/runs_nll/nll_dynamic_mnist"
step nll:score "${VAE_NB[@]}" evaluate "$OUT/runs_nll/nll_dynamic_mnist" --k "$NLL_K" --iw-n "$NLL_N" --which last
REPRO_JOBS="${REPRO_JOBS:-8}" R="$OUT/repro"
SWEEP=(train -m --launcher local --jobs "$REPRO_JOBS")
score() {   # score K FOLDER...: evaluate every run folder among FOLDER... (a sweep's folders) with NLL k = K on REPRO_N test images
  local k="$1"; shift
  for run in "$@"; do [ -f "$run/metrics.json" ] || continue; "${VAE_NB[@]}" evaluate "$run" --k "$k" --iw-n "$REPRO_N" --which last || return 1; done
}
score_disentanglement() {   # score_disentanglement FOLDER...: the disentanglement scores of every run folder among FOLDER...
  for run in "$@"; do [ -f "$run/metrics.json" ] || continue; "${VAE_NB[@]}" evaluate "$run" --disentanglement "${DIS[@]}" --k 5 --iw-n 20 --which last || return 1; done
}
step repro:nvae "${VAE_NB[@]}" "${SWEEP[@]}" nvae_mnist latent_dim=2,5,10,20,40 "epochs=$SVAE_EPOCHS" "${REPRO[@]}" quiet=true "device=$DEVICE" "out=$R/nvae"
step repro:svae "${VAE_NB[@]}" "${SWEEP[@]}" svae_mnist latent_dim=3,6,11,21,41 "epochs=$SVAE_EPOCHS" "${REPRO[@]}" quiet=true "device=$DEVICE" "out=$R/svae"
step repro:vamp "${VAE_NB[@]}" "${SWEEP[@]}" vamp_mnist seed=0,1 "epochs=$VAMP_EPOCHS" "${REPRO[@]}" quiet=true "device=$DEVICE" "out=$R/vamp"
step repro:vamp_normal "${VAE_NB[@]}" "${SWEEP[@]}" vamp_mnist prior=null bottleneck_kwargs=null seed=0,1 "epochs=$VAMP_EPOCHS" "${REPRO[@]}" quiet=true "device=$DEVICE" "out=$R/vamp_normal"
step repro:iwae "${VAE_NB[@]}" "${SWEEP[@]}" iwae_mnist iw_k=1,5,50 "epochs=$IWAE_EPOCHS" "${REPRO[@]}" quiet=true "device=$DEVICE" "out=$R/iwae"
for p in dsprites_beta beta_tc_dsprites factor_dsprites capacity_dsprites dip_i_dsprites dip_ii_dsprites; do
  step "repro:$p" "${VAE_NB[@]}" "${SWEEP[@]}" "$p" seed=0,1 "${REPRO_DS[@]}" quiet=true "device=$DEVICE" "out=$R/$p"
done
step repro:score_svae score "$REPRO_K" "$R"/nvae/* "$R"/svae/*
step repro:score_nll score "$REPRO_KLONG" "$R"/vamp/* "$R"/vamp_normal/* "$R"/iwae/*
step repro:score_dsprites score_disentanglement "$R"/*dsprites/*
echo "=== $failed step(s) failed; logs and summary.json in $OUT"
[ "$failed" = 0 ]
