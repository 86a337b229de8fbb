#!/usr/bin/env bash
# Rebuilds adapters/demo/ (base model + LSLo bundle) from data that ships with pip packages.
# Every stage is seeded; run from the repository root with the project installed (make install):
#     bash adapters/demo/build.sh
# Intermediate results go to $WORK (default runs/demo); stage times to $WORK/timings.tsv.
# FROM=<stage> skips the stages before it (their outputs must already be in $WORK), e.g. FROM=lslo.
set -euo pipefail
WORK=${WORK:-runs/demo}
PY=${PYTHON:-.venv/bin/python}
THREADS=${THREADS:-2}   # thread count changes float summation order: keep it fixed to reproduce exactly
LANGS=en,fr,de,it,zh,nl,ja,ko,af,hy,sw,cy
TIERS="H:en,fr,de,it;M:zh,nl,ja,ko;V:af,hy,sw,cy"
FROM=${FROM:-corpus}
STAGES=" corpus init-base pretrain lslo ft-all eval-pretrain eval-ft-all eval-lslo held-out export eval-shipped lslo-validated gate eval-ood "
[[ "$STAGES" == *" $FROM "* ]] || { echo "FROM=$FROM is not a stage; stages:$STAGES" >&2; exit 2; }
RUNNING=0
mkdir -p "$WORK"
[ "$FROM" = corpus ] && : > "$WORK/timings.tsv"

stage() {  # stage NAME COMMAND...
  local name=$1; shift
  [ "$name" = "$FROM" ] && RUNNING=1
  if [ "$RUNNING" = 0 ]; then echo "== $name: skipped (FROM=$FROM)"; return; fi
  local start; start=$(date +%s)
  echo "== $name: $*"
  "$@"
  echo -e "$name\t$(( $(date +%s) - start ))" >> "$WORK/timings.tsv"
}

# 1. Corpus: Django UI strings + CLDR names, 12 languages. dev (400) and devtest (200) hold segments present
#    in all 12; train holds the rest, keeping 100 % of High, 35 % of Medium and 6 % of Very-low lines, so
#    that the base model really knows the tiers unequally.
stage corpus "$PY" -m training corpus --out "$WORK/data" --languages $LANGS --tiers "$TIERS" \
  --train-share "H:1,M:0.35,V:0.06" --dev 400 --devtest 200 --seed 0
# 2. Tokenizer (SentencePiece on train+dev) and a random 'tiny' M2M100 (d_model 256, 3+3 layers).
stage init-base "$PY" -m training init-base --data "$WORK/data" --languages $LANGS --preset tiny \
  --vocab-size 4000 --out "$WORK/base-init" --seed 0
# 3. Pretrain the base on the train split (this plays M2M-124's pre-training).
stage pretrain "$PY" -m training pretrain --base "$WORK/base-init" --data "$WORK/data" --languages $LANGS \
  --out "$WORK/pretrain" --epochs 30 --max-tokens 1536 --lr 2e-3 --warmup-steps 300 --valid-share 0 \
  --threads $THREADS --seed 0 --no-progress
# DEMO_BASE=adapters/demo/base FROM=held-out re-runs the later stages on the shipped base and bundle-paper/ (they
# need $WORK/data from the corpus stage): the held-out text, the served bundle's weighting and export (bundle/,
# evaluation/weights.txt), its evaluations, the validated run, the gate.
BASE=${DEMO_BASE:-$WORK/pretrain/model}
# 4. LSLo 2;2;8 with the paper's layer map, High and Medium pruned to 90 % (GPS, E=2, k=8, T=15), the paper's
#    way: all of dev, the last epoch. This is the shipped bundle.
PAPER=(--split dev --valid-share 0 --select last)
stage lslo "$PY" -m training finetune --method lslo --base "$BASE" --data "$WORK/data" "${PAPER[@]}" \
  --languages $LANGS --tiers "$TIERS" --ranks "2;2;8" --modules all --fc-mode full --layer-map paper --prune 0.9 \
  --prune-tiers H,M --prune-start 2 --prune-epochs 8 --epochs 15 --out "$WORK/lslo" --threads $THREADS --seed 0 \
  --no-progress
# 5. The Ft-all baseline on the same data.
stage ft-all "$PY" -m training finetune --method full --base "$BASE" --data "$WORK/data" "${PAPER[@]}" \
  --languages $LANGS --epochs 15 --out "$WORK/ft-all" --threads $THREADS --seed 0 --no-progress
# 6. Evaluate on devtest, all 132 directions, beam 5 (the Pretrain row is the base alone).
EVAL=(--data "$WORK/data" --split devtest --beam 5 --threads $THREADS --no-progress)
stage eval-pretrain "$PY" -m training evaluate --base "$BASE" --languages $LANGS --tiers "$TIERS" --name Pretrain \
  --json "$WORK/eval-pretrain.json" "${EVAL[@]}"
stage eval-ft-all "$PY" -m training evaluate --base "$BASE" --model "$WORK/ft-all/model" --languages $LANGS \
  --tiers "$TIERS" --no-base-row --name Ft-all --json "$WORK/eval-ft-all.json" "${EVAL[@]}"
stage eval-lslo "$PY" -m training evaluate --base "$BASE" --bundle "$WORK/lslo/bundle" --no-base-row \
  --name "LSLo 2;2;8+GPS(0.9)" --json "$WORK/eval-lslo.json" "${EVAL[@]}"
# 7. Text from other sources than the corpus: the gettext catalogs of this machine's own programs, the desktop
#    stack for validation and the system tools for an out-of-domain test (see out_of_domain.py).
held_out() {
  "$PY" adapters/demo/out_of_domain.py --corpus "$WORK/data" --part valid --out "$WORK/valid-general"
  "$PY" adapters/demo/out_of_domain.py --corpus "$WORK/data" --part test --out "$WORK/out-of-domain"
}
stage held-out held_out
# 8. Pack base + bundle in fp16 into adapters/demo/: bundle-paper/ is the LSLo bundle as trained (the paper's
#    recipe); bundle/, which is served, has each adapter weighted towards the base on the desktop strings
#    (export --adapter-weight auto: the languages no weight keeps from doing worse than the base are left out).
#    With DEMO_BASE set, the shipped bundle-paper/ is weighted (PAPER_BUNDLE=... names another trained bundle).
PAPER_BUNDLE=${PAPER_BUNDLE:-${DEMO_BASE:+adapters/demo/bundle-paper}}  # the trained bundle to weight
PAPER_BUNDLE=${PAPER_BUNDLE:-$WORK/lslo/bundle}
export_demo() {
  rm -rf "$WORK/export" "$WORK/export-paper"
  "$PY" -m training export --base "$BASE" --bundle "$PAPER_BUNDLE" --out "$WORK/export" --dtype fp16 \
    --adapter-weight auto --valid "$WORK/valid-general" --threads $THREADS 2> "$WORK/export.log" \
    || { cat "$WORK/export.log" >&2; return 1; }
  if [ "$PAPER_BUNDLE" != adapters/demo/bundle-paper ]; then
    "$PY" -m training export --base "$BASE" --bundle "$PAPER_BUNDLE" --out "$WORK/export-paper" --dtype fp16
    rm -rf adapters/demo/base adapters/demo/bundle-paper
    cp -r "$WORK/export-paper/base" adapters/demo/base
    cp -r "$WORK/export-paper/bundle" adapters/demo/bundle-paper
  fi
  rm -rf adapters/demo/bundle
  cp -r "$WORK/export/bundle" adapters/demo/bundle
  mkdir -p adapters/demo/evaluation
  tr '\r' '\n' < "$WORK/export.log" | { grep -v 'Loading weights\|Writing model' || true; } \
    > adapters/demo/evaluation/weights.txt
  if [ -z "${DEMO_BASE:-}" ]; then
    cp "$WORK"/eval-pretrain.json "$WORK"/eval-ft-all.json "$WORK"/eval-lslo.json "$WORK/data/stats.json" \
      adapters/demo/evaluation/
  fi
}
stage export export_demo
# 9. The served bundle in domain, as step 6 evaluated the trained one.
stage eval-shipped "$PY" -m training evaluate --base adapters/demo/base --bundle adapters/demo/bundle --no-base-row \
  --languages $LANGS --tiers "$TIERS" --name "Shipped (weighted)" --json adapters/demo/evaluation/eval-shipped.json \
  "${EVAL[@]}"
# 10. The same LSLo validated on that text after every epoch, the best epoch at the final ratio by chrF++ kept.
stage lslo-validated "$PY" -m training finetune --method lslo --base "$BASE" --data "$WORK/data" --split dev \
  --languages $LANGS --tiers "$TIERS" --ranks "2;2;8" --modules all --fc-mode full --layer-map paper --prune 0.9 \
  --prune-tiers H,M --prune-start 2 --prune-epochs 8 --epochs 15 --valid "$WORK/valid-general" --select-by chrf \
  --valid-chrf-sents 400 --patience 3 --out "$WORK/lslo-validated" --threads $THREADS --seed 0 --no-progress
# 11. The export gate's verdict on it, all adapters and the very-low tier's alone, in gate.txt. A refusal (exit
#     status 2) does not stop the build; anything else does.
gate() {
  local ship status
  : > "$WORK/gate.txt"
  for ship in "" af,hy,sw,cy; do
    rm -rf "$WORK/gate-export"
    echo "== export ${ship:-all adapters}" >> "$WORK/gate.txt"
    status=0
    "$PY" -m training export --base "$BASE" --bundle "$WORK/lslo-validated/bundle" --out "$WORK/gate-export" \
      --valid "$WORK/valid-general" --threads $THREADS ${ship:+--languages $ship} 2> "$WORK/gate-export.log" \
      || status=$?
    tr '\r' '\n' < "$WORK/gate-export.log" | { grep -v 'Loading weights' || true; } >> "$WORK/gate.txt"
    [ "$status" = 0 ] || [ "$status" = 2 ] || { echo "export failed ($status)" >&2; return 1; }
  done
  rm -rf "$WORK/gate-export" "$WORK/gate-export.log"
  cat "$WORK/gate.txt"
}
stage gate gate
# 12. The served bundle, the trained one and the validated one beside the base alone on the out-of-domain test.
eval_ood() {
  local langs
  langs=$(ls "$WORK/out-of-domain" | sed -n 's/^test\.en-\([a-z]*\)\.en$/\1/p' | paste -sd, | sed 's/^/en,/')
  local common=(--base adapters/demo/base --languages "$langs" --tiers "$TIERS" --data "$WORK/out-of-domain"
                --split all --beam 4 --threads $THREADS --no-progress)
  "$PY" -m training evaluate "${common[@]}" --bundle adapters/demo/bundle --name "Shipped (weighted)" \
    --json "$WORK/eval-ood-shipped.json"
  "$PY" -m training evaluate "${common[@]}" --bundle adapters/demo/bundle-paper --name "LSLo as trained" \
    --json "$WORK/eval-ood-demo.json"
  "$PY" -m training evaluate "${common[@]}" --bundle "$WORK/lslo-validated/bundle" --name "LSLo validated" \
    --json "$WORK/eval-ood-validated.json"
  mkdir -p adapters/demo/evaluation
  cp "$WORK"/eval-ood-shipped.json "$WORK"/eval-ood-demo.json "$WORK"/eval-ood-validated.json "$WORK/lslo-validated/validation.json" \
    "$WORK/gate.txt" adapters/demo/evaluation/
  cp "$WORK/valid-general/sources.json" adapters/demo/evaluation/valid-sources.json
  cp "$WORK/out-of-domain/sources.json" adapters/demo/evaluation/out-of-domain-sources.json
}
stage eval-ood eval_ood
cp "$WORK/timings.tsv" adapters/demo/evaluation/
cat "$WORK/timings.tsv"
