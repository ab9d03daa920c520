#!/bin/bash
# bash tests/baseline/make.sh OUT   (from the repo root, .venv active): 15 runs of today's sources and
# losses into OUT; run it on two trees and compare: python tests/baseline/compare.py OUT_A OUT_B
set -e
OUT=$1
export OMP_NUM_THREADS=1
R() { python -m harness.run profile=smoke results=$OUT "$@" > $OUT/log-$(echo "$@" | md5sum | cut -c1-8).txt 2>&1 || { echo FAIL "$@"; exit 1; }; }
mkdir -p $OUT
R method=opsd exposure=0
R method=opsd exposure=0.5
R method=opsd exposure=1 exposure_unit=steps
R method=schedule schedule.kind=step
R method=random
R method=atesd
R ablation=paper_reward
R method=grpo
R method=antisd exposure=0.5
R method=sdar exposure=0.75
R source=atesd loss=sdar
R method=opsd exposure=0.5 teacher.mode=ema tag=ema
# default profile (shipped base), short
python -m harness.run results=$OUT/default train.steps=4 probe.every=2 eval.k=2 controller.hold=2 method=atesd > $OUT/log-default-atesd.txt 2>&1
python -m harness.run results=$OUT/default train.steps=4 probe.every=2 eval.k=2 method=opsd exposure=0.5 > $OUT/log-default-opsd.txt 2>&1
# two processes
python -m torch.distributed.run --nproc_per_node 2 --standalone -m harness.run profile=smoke results=$OUT/dist method=atesd controller.hold=1 > $OUT/log-dist.txt 2>&1
echo done
