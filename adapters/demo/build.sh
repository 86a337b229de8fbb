#!/usr/bin/env bash
# Rebuilds adapters/demo/ (base model + LSLo bundle) from data that installs offline: LibreOffice's help and
# interface translations (Debian packages, installed by the first stage), Django's catalogs and CLDR names.
# Every stage is seeded; run from the repository root with the project installed (make install):
#     bash adapters/demo/build.sh
# Intermediate results go to $WORK (default ~/.cache/lslo/demo, outside the work tree, so that a later checkout on
# the same machine continues); stage times to $WORK/timings.tsv.
# Finished stages are skipped when the script runs again, so an interrupted build goes on where it stopped (the
# pretraining, hours on 2 CPU cores, resumes from its last checkpoint). FROM=<stage> runs that stage and the
# ones after it again (remove their outputs in $WORK first), e.g. FROM=lslo.
#     bash adapters/demo/build.sh milestone
# writes the pretraining's latest checkpoint as fp16 weights to adapters/demo/milestone/ (to commit): on a machine
# without $WORK, the pretrain stage continues from there instead of from zero.
set -euo pipefail
WORK=${WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/lslo/demo}
PY=${PYTHON:-.venv/bin/python}
THREADS=${THREADS:-2}   # thread count changes float summation order: keep it fixed to reproduce exactly
# High and Medium: the paper's lang12. Very-low: languages LibreOffice translates the interface into but not the
# help: Occitan (the paper's lang12 Very-low language), Welsh and Afrikaans, and Xhosa, the scarcest (4,441
# interface strings) and a family (Bantu) unrelated to the others.
LANGS=en,fr,de,it,zh,nl,ja,ko,af,cy,oc,xh
TIERS="H:en,fr,de,it;M:zh,nl,ja,ko;V:af,cy,oc,xh"
HELP_PACKAGES="en-us fr de it zh-cn nl ja ko"
UI_PACKAGES="fr de it zh-cn nl ja ko af cy oc xh"
MILESTONE=adapters/demo/milestone
STAGES=" packages corpus init-base pretrain lslo ft-all eval-pretrain eval-ft-all eval-lslo held-out export eval-shipped lslo-validated gate eval-ood "
DONE="$WORK/done"   # a file per finished stage: running the script again goes on where it stopped
mkdir -p "$DONE"
if [ -n "${FROM:-}" ]; then  # FROM given: that stage and those after it run again
  [[ "$STAGES" == *" $FROM "* ]] || { echo "FROM=$FROM is not a stage; stages:$STAGES" >&2; exit 2; }
  after=${STAGES#* "$FROM" }
  rm -f "$DONE/$FROM"; for s in $after; do rm -f "$DONE/$s"; done
else
  FROM=packages
fi
RUNNING=0
[ -e "$WORK/timings.tsv" ] || : > "$WORK/timings.tsv"

if [ "${1:-}" = milestone ]; then
  rm -rf "$MILESTONE.tmp"
  "$PY" -m training snapshot --run "$WORK/pretrain" --out "$MILESTONE.tmp" --dtype fp16
  rm -rf "$MILESTONE" && mv "$MILESTONE.tmp" "$MILESTONE"
  exit 0
fi

stage() {  # stage NAME COMMAND...
  local name=$1; shift
  [ "$name" = "$FROM" ] && RUNNING=1
  if [ "$RUNNING" = 0 ]; then echo "== $name: skipped (FROM=$FROM)"; return; fi
  if [ -f "$DONE/$name" ]; then echo "== $name: done earlier (FROM=$name runs it again)"; return; fi
  local start; start=$(date +%s)
  echo "== $name: $*"
  "$@"
  echo -e "$name\t$(( $(date +%s) - start ))" >> "$WORK/timings.tsv"
  touch "$DONE/$name"
}

# 0. The Debian packages the corpus reads (as root, or through sudo).
packages() {
  local wanted=() p
  for p in $HELP_PACKAGES; do dpkg -s "libreoffice-help-$p" >/dev/null 2>&1 || wanted+=("libreoffice-help-$p"); done
  for p in $UI_PACKAGES; do dpkg -s "libreoffice-l10n-$p" >/dev/null 2>&1 || wanted+=("libreoffice-l10n-$p"); done
  [ ${#wanted[@]} = 0 ] && { echo "LibreOffice's help and catalogs are installed"; return; }
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
}
stage packages packages
# 1. Corpus: LibreOffice's help (8 languages, aligned by page and paragraph id) and interface strings (all 12),
#    Django's strings and CLDR names. dev (1000) and devtest (500) hold segments present in all 12 (interface
#    strings, mostly); train holds the rest, keeping all of High, half of Medium and a tenth of Very-low lines,
#    so that the base model really knows the tiers unequally.
stage corpus "$PY" -m training corpus --out "$WORK/data" --languages $LANGS --tiers "$TIERS" \
  --sources libreoffice-help,libreoffice-ui,django,cldr --train-share "H:1,M:0.5,V:0.1" --dev 1000 --devtest 500 \
  --max-chars 300 --seed 0
# 2. Tokenizer (SentencePiece on train+dev, 12k pieces) and a random 'demo' M2M100 (d_model 384, 4+2 layers, 16.5M
#    parameters).
stage init-base "$PY" -m training init-base --data "$WORK/data" --languages $LANGS --preset demo \
  --vocab-size 12000 --out "$WORK/base-init" --seed 0
# 3. Pretrain the base on the train split (this plays M2M-124's pre-training): two directions drawn per segment
#    and epoch, 12 epochs of ~480 steps of 4,096 tokens; validated on 3,000 dev pairs after each epoch. It resumes
#    from its checkpoint; without one, from adapters/demo/milestone/ where that exists (the weights only: a new
#    optimizer at the milestone's learning rate, held constant).
PRETRAIN=(--data "$WORK/data" --languages $LANGS --out "$WORK/pretrain" --pairs-per-segment 2 --max-tokens 4096
          --valid-pairs 3000 --valid-chrf-sents 200 --save-every 100 --threads $THREADS --seed 0 --no-progress)
pretrain() {
  if [ -f "$WORK/pretrain/checkpoint/state.json" ]; then
    "$PY" -m training pretrain --base "$WORK/base-init" "${PRETRAIN[@]}" --epochs 12 --lr 1e-3 --warmup-steps 400 \
      --resume
  elif [ -f "$MILESTONE/snapshot.json" ] && [ ! -f "$WORK/pretrain/log.jsonl" ]; then
    local epochs lr
    epochs=$("$PY" -c "import json; m = json.load(open('$MILESTONE/snapshot.json')); print(m['epochs'] - m['epoch'] + 1)")
    lr=$("$PY" -c "import json; print(json.load(open('$MILESTONE/snapshot.json'))['lr'])")
    echo "pretrain: continuing from $MILESTONE ($epochs epochs at learning rate $lr)"
    "$PY" -m training pretrain --base "$MILESTONE" "${PRETRAIN[@]}" --epochs "$epochs" --lr "$lr" \
      --lr-schedule constant --warmup-steps 100
  else
    "$PY" -m training pretrain --base "$WORK/base-init" "${PRETRAIN[@]}" --epochs 12 --lr 1e-3 --warmup-steps 400
  fi
}
stage pretrain pretrain
# DEMO_BASE=adapters/demo/base FROM=held-out re-runs the later stages on the shipped base and bundle-paper/ (they
# need $WORK/data from the corpus stage): the held-out text, the served bundle's weighting and export (bundle/,
# evaluation/weights.txt), its evaluations, the validated run, the gate.
BASE=${DEMO_BASE:-$WORK/pretrain/model}
# 4. LSLo 2;2;8 with the paper's layer map, High and Medium pruned to 90 % (GPS, E=2, k=8, T=15), the paper's
#    way: all of dev, the last epoch; of each dev segment's 132 directions, 12 drawn afresh per epoch (all of them
#    would make an epoch ~40 minutes on 2 cores, 10 hours a run). This is the shipped bundle.
PAPER=(--split dev --valid-share 0 --select last --pairs-per-segment 12)
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
  --prune-tiers H,M --prune-start 2 --prune-epochs 8 --epochs 15 --pairs-per-segment 12 \
  --valid "$WORK/valid-general" --select-by chrf \
  --valid-chrf-sents 400 --patience 3 --out "$WORK/lslo-validated" --threads $THREADS --seed 0 --no-progress
# 11. The export gate's verdict on it, all adapters and the very-low tier's alone, in gate.txt. A refusal (exit
#     status 2) does not stop the build; anything else does.
gate() {
  local ship status
  : > "$WORK/gate.txt"
  for ship in "" af,cy,oc,xh; do
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
