#!/usr/bin/env bash
# The studies of docs/results.md, one sweep after another: digits-lt's (the default) or
# glyphs-coco's (STUDIES=glyphs-coco; its regime calibration runs on its own:
# configs/glyphs_coco_calibration.yaml). Re-running the script
# resumes: `bmx sweep` skips finished points and resumes interrupted ones, so the studies
# may span sessions. A point identical to one of an earlier sweep of the list (the
# ablation's BCE / Mixup / BalanceMix rows, the missing setting's default reading) is
# copied from it (`bmx sweep --reuse`). Each sweep's command, exit status and wall seconds
# go to RUNS_DIR/studies.log (what docs/results.md quotes).
#
#   scripts/studies.sh [RUNS_DIR [JOBS]]     # defaults: ~/bmx-runs, 2
#   AMP_CPU=1 scripts/studies.sh ...          # bf16 autocast on the CPU: each sweep runs with
#                                             # amp_cpu=true as <its name>_amp_cpu
#   STUDIES=glyphs-coco scripts/studies.sh ...  # glyphs-coco's studies (its regime names
#                                             # its own precision: AMP_CPU does not apply)
#   FIRST=seed=0 scripts/studies.sh ...       # first every sweep's points with this label
#                                             # (`bmx sweep --only`), then every sweep whole;
#                                             # glyphs-coco's default: one seed of every
#                                             # table before the seeds that give error bars
#
# Run folders do not outlive the machine: after each sweep its finished runs are archived
# into studies/<name> (`bmx archive`: no checkpoints, diagnostics thinned; commit it), and a
# sweep copies the finished runs of its archive (--reuse) instead of re-running them. Before
# a machine goes mid-sweep: `bmx archive RUNS_DIR/<name> studies/<name>` and commit.
#
# RUNS_DIR should live outside the work tree, so a fresh clone can resume it. AMP_CPU=1 pays
# only on a CPU with AMX / AVX-512 BF16 (docs/benchmarks.md, "bf16 autocast on the CPU");
# its sweeps are compared with the float32 ones by results.compare_sweeps.
set -u
cd "$(dirname "$0")/.."
RUNS_DIR=${1:-$HOME/bmx-runs}
ARCHIVE=${ARCHIVE:-studies}  # committed archives of finished runs, one folder per sweep
JOBS=${2:-2}
BMX=${BMX:-.venv/bin/bmx}  # may be a command with arguments: "python -m bmxlib.cli"
mkdir -p "$RUNS_DIR"

case "${STUDIES:-digits-lt}" in
    digits-lt) SWEEPS=(
        configs/digits_paper.yaml             # the paper's Tables 1-3: 8 methods x 6 settings x 3 seeds
        configs/digits_paper_extras.yaml      # focal, ROS, DB x 6 settings x 3 seeds
        configs/digits_ablation.yaml          # Table 5 rows x clean / mislabel-40 / flip-40 / missing x 3 seeds
        configs/digits_missing_readings.yaml  # the missing setting under both readings of re-labeling to 0
        configs/regime/instance.yaml          # instance-dependent noise, 6 methods x 2 rates x 3 seeds
        configs/regime/sensitivity.yaml       # alpha, epsilon, warm-up x 3 settings x 3 seeds
    ) ;;
    glyphs-coco) SWEEPS=(
        configs/glyphs_coco_regime_check.yaml      # BCE's 18 runs first: its 3-seed regime check
        configs/glyphs_coco_paper.yaml             # Tables 1-3, seed 0 of every cell first
        configs/glyphs_coco_missing_readings.yaml  # the missing setting under both readings
        configs/glyphs_coco_ll_candidates.yaml     # LL-R / LL-Ct under both readings of unobserved
        configs/glyphs_coco_ablation.yaml          # Table 5 rows x 4 settings x 3 seeds
        configs/glyphs_coco_paper_extras.yaml      # focal, ROS, DB x 6 settings x 3 seeds
    )
        AMP_CPU=
        FIRST=${FIRST-seed=0} ;;
    *) echo "STUDIES must be digits-lt or glyphs-coco, not '$STUDIES'" >&2; exit 2 ;;
esac

for only in ${FIRST:+"$FIRST"} ""; do  # a first pass over FIRST's points, then everything
    earlier=()  # the sweeps finished before: their identical points are copied, not re-run
    for sweep in "${SWEEPS[@]}"; do
        name=$(sed -n 's/^name: *//p' "$sweep")
        # shellcheck disable=SC2206  # BMX is split into words on purpose
        command=($BMX sweep --config "$sweep" --jobs "$JOBS" "out_dir=$RUNS_DIR")
        if [ -n "${AMP_CPU:-}" ]; then
            name="${name}_amp_cpu"
            command+=(--name "$name" amp_cpu=true)
        fi
        [ -n "$only" ] && command+=(--only "$only")
        [ -d "$ARCHIVE/$name" ] && command+=(--reuse "$ARCHIVE/$name")
        for dir in "${earlier[@]}"; do
            command+=(--reuse "$dir")
        done
        start=$(date +%s)
        "${command[@]}"
        status=$?
        printf '%s\t%s\texit %s\t%s s\t%s\n' "$(date -u +%FT%TZ)" "${command[*]}" "$status" \
            "$(( $(date +%s) - start ))" "$(git rev-parse --short HEAD 2>/dev/null)" \
            >> "$RUNS_DIR/studies.log"
        $BMX archive "$RUNS_DIR/$name" "$ARCHIVE/$name"
        [ "$status" -eq 0 ] || exit "$status"
        earlier+=("$RUNS_DIR/$name")
    done
done
