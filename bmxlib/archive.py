"""Study archives: a sweep's finished runs thinned to what the results read, small enough
to commit, so a study outlives the machine that ran it (``bmx archive``; ``bmx sweep
--reuse ARCHIVE_DIR`` copies them back; ``scripts/studies.sh`` keeps one per sweep under
studies/).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from . import runs
from .config import Config, ConfigError, from_dict
from .io import atomic_write_json, atomic_write_text


def archive_diagnostics(run_dir: Path, target: Path, config: Config) -> None:
    """The diagnostics ``archive_sweep`` keeps of the finished run ``run_dir`` (run with
    ``config``), written under ``target``: the full-diagnostics epochs, epoch 0 and the
    last, with the per-label arrays at the last epoch only — and, from any other epoch,
    the arrays under a key none of those epochs holds (a one-off record, e.g. the
    T-estimator's transition matrices at the end of its warm-up)."""
    import numpy as np

    from .io import atomic_savez
    from .steps import is_full_diagnostics_epoch

    run = runs.load_run(run_dir)
    label_shape = None if run.noisy_labels is None else run.noisy_labels.shape
    kept = [e for e in run.diagnostic_epochs
            if e == 0 or is_full_diagnostics_epoch(config, e)]
    regular = set().union(*(run.diagnostics_keys(e) for e in kept))
    one_off = {e: set(run.diagnostics_keys(e)) - regular
               for e in run.diagnostic_epochs if e not in kept}
    for epoch in run.diagnostic_epochs:
        if epoch not in kept and not one_off[epoch]:
            continue
        arrays = run.diagnostics(epoch)
        if epoch not in kept:
            arrays = {k: v for k, v in arrays.items() if k in one_off[epoch]}
        if epoch != run.diagnostic_epochs[-1]:
            arrays = {k: v for k, v in arrays.items() if np.shape(v) != label_shape}
        path = runs.diagnostics_path(target, epoch)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_savez(path, **arrays)


def locate_in_archive(run_dir: Path, archive_dir: Path, config: Config) -> None:
    """The archived run ``run_dir`` (run with ``config``) names the archive as its place
    (``out_dir``, as given, e.g. relative to the repository) and the run it was copied
    from, if any, by sweep and run name only: no path of the machine that ran it goes into
    the archive."""
    atomic_write_text(runs.config_path(run_dir),
                      dataclasses.replace(config, out_dir=str(archive_dir)).to_yaml())
    provenance = runs.read_provenance(run_dir)
    if "copied_from" in provenance:
        source = Path(provenance["copied_from"])
        provenance["copied_from"] = f"{source.parent.name}/{source.name}"
        atomic_write_json(run_dir / runs.PROVENANCE_FILE, provenance)


def recorded_backbone(run_dir: Path, config: Config) -> tuple[tuple, str | None]:
    """(what determines the run's pretrained backbone, the backbone file its provenance
    records): two runs with the same first item must record the same file, or they were
    trained under different pretraining recipes."""
    from .pretrain import backbone_input_name

    inputs = runs.read_provenance(run_dir).get("cached_inputs", {})
    return ((config.pretrained, config.width, config.data_seed),
            inputs.get(backbone_input_name(config.pretrained), {}).get("file"))


def backbone_change(run_dir: Path, config: Config) -> str | None:
    """What differs when ``run_dir`` started from another pretrained backbone than this
    code builds for ``config`` (its provenance names another cache file: the pretraining
    recipe changed, e.g. recipe 3's own random stream); None when they agree or the run
    records none. Such a run computed another experiment, though its config is the same."""
    from .models import BACKBONE_SOURCES
    from .pretrain import backbone_cache_path

    if config.pretrained not in BACKBONE_SOURCES:
        return None
    recorded = recorded_backbone(run_dir, config)[1]
    built = backbone_cache_path(width=config.width, seed=config.data_seed,
                                source=config.pretrained).name
    if recorded is None or recorded == built:
        return None
    return f"was trained from the backbone {recorded}, but this code builds {built}"


def backbone_builds(directory: str | Path) -> dict[str, dict[str, list[str]]]:
    """{backbone file: {its SHA-256: the ``cpu_capability`` of each run started from it}}
    over the runs of ``directory`` (a sweep, an archive or one run) whose provenance
    records a pretrained backbone.

    One file under two digests is one recipe built twice: a CPU of another kind sums in
    another order and pretrains other weights under the same cache key (docs/reliability.md,
    "CPU instruction set"), so runs of the two builds do not share their starting weights.
    """
    from .models import BACKBONE_SOURCES
    from .pretrain import backbone_input_name

    names = {backbone_input_name(source) for source in BACKBONE_SOURCES}
    builds: dict[str, dict[str, list[str]]] = {}
    for run_dir in runs.run_dirs(directory):
        provenance = runs.read_provenance(run_dir)
        for name, entry in provenance.get("cached_inputs", {}).items():
            if name in names and entry.get("sha256"):
                cpu = provenance.get("cpu_capability") or "an unrecorded CPU"
                builds.setdefault(entry["file"], {}).setdefault(entry["sha256"], []).append(cpu)
    return builds


def mixed_builds_note(directory: str | Path) -> str | None:
    """One line when the runs of ``directory`` start from more than one build of a
    backbone file (:func:`backbone_builds`), else None. The sweep's and the archive's checks
    compare the file's name (the recipe); this says what they let through."""
    for file, digests in backbone_builds(directory).items():
        if len(digests) > 1:
            parts = "; ".join(f"{digest[:8]} on {'/'.join(sorted(set(cpus)))}: {len(cpus)} "
                              f"run{'s' * (len(cpus) > 1)}" for digest, cpus in digests.items())
            return (f"note: {directory} holds runs from {len(digests)} builds of {file} "
                    f"({parts}); another kind of CPU pretrains other weights, so compare "
                    "these runs over seeds, not paired across builds (docs/reliability.md)")
    return None


def check_archivable(sweep_dir: Path, archive_dir: Path) -> list[tuple[Path, Config]]:
    """The finished runs of ``sweep_dir`` to archive now, each with its config, after
    refusing (ConfigError, one line) what would lose or mix results: a run the archive
    holds unfinished with a checkpoint or a writer (a live or resumable run, not a copy
    made by hand), a run the archive holds finished under another config, and runs trained
    from another pretrained backbone than the archive's runs (another pretraining
    recipe)."""
    from .config import result_differences

    archived = {}
    for run_dir in runs.run_dirs(archive_dir) if archive_dir.is_dir() else []:
        if runs.is_finished(run_dir):
            config = from_dict(runs.read_config(run_dir), source=str(runs.config_path(run_dir)))
            archived[run_dir.name] = config
    backbones = dict(recorded_backbone(archive_dir / name, config)
                     for name, config in archived.items())
    todo = []
    for run_dir in runs.run_dirs(sweep_dir):
        if not runs.is_finished(run_dir):
            continue
        config = from_dict(runs.read_config(run_dir), source=str(runs.config_path(run_dir)))
        target = archive_dir / run_dir.name
        if run_dir.name in archived:
            for key, old, new in result_differences(archived[run_dir.name], config)[:1]:
                raise ConfigError(f"{target} was run with {key}={old!r} but {run_dir} with "
                                  f"{key}={new!r}; archive {sweep_dir.name} into another "
                                  "directory")
            continue
        what, file = recorded_backbone(run_dir, config)
        if file and backbones.get(what, file) != file:
            raise ConfigError(f"{run_dir} was trained from the backbone {file}, the runs in "
                              f"{archive_dir} from {backbones[what]} (another pretraining "
                              "recipe); archive it into another directory")
        if target.exists():
            with runs.writer_lock(target):  # RunDirBusy, one line, while a sweep writes it
                if runs.checkpoint_path(target).exists():
                    raise ConfigError(f"{target}: an unfinished run with a checkpoint, "
                                      "which archiving would delete; archive "
                                      f"{sweep_dir.name} into a directory of its own")
        todo.append((run_dir, config))
    return todo


def archive_sweep(sweep_dir: str | Path, archive_dir: str | Path) -> tuple[int, int]:
    """Copy the finished runs of ``sweep_dir`` into ``archive_dir``, thinned to what the
    results and the figures read: a sweep directory small enough to commit, which ``bmx
    sweep --reuse ARCHIVE_DIR`` copies from on another machine instead of re-running (run
    folders do not outlive a machine; the repository does). Left out: checkpoints,
    TensorBoard logs, the diagnostics of epochs between the full-diagnostics epochs
    (``diagnostics_every``; epoch 0 and the last are kept) and, at all but the last epoch,
    the per-label arrays (shaped like the label matrix: confidences, p_clean, states,
    targets). Every metric of every epoch stays (metrics.jsonl). The manifest and the
    results tables come along, so ``bmx report`` reads the archive alone. A run already
    archived is left as it is; each copy is atomic.

    Returns (runs archived now, finished runs in the archive). Raises ConfigError when
    ``sweep_dir`` is no sweep or ``archive_dir`` is the sweep itself, a file, a run,
    another sweep or would lose or mix results (``check_archivable``).
    """
    sweep_dir, archive_dir = Path(sweep_dir), Path(archive_dir)
    if not runs.is_sweep_dir(sweep_dir):
        raise ConfigError(f"{sweep_dir}: not a sweep directory (no {runs.SWEEP_FILE})")
    if archive_dir.exists() and not archive_dir.is_dir():
        raise ConfigError(f"{archive_dir}: is a file, not a directory; archive "
                          f"{sweep_dir.name} into a directory")
    manifest = (sweep_dir / runs.SWEEP_FILE).read_text()
    archived_manifest = archive_dir / runs.SWEEP_FILE
    source = Path(runs.load_sweep(sweep_dir).source).name  # the sweep file's name
    if runs.is_run_dir(archive_dir) or (archived_manifest.is_file() and
                                        Path(runs.load_sweep(archive_dir).source).name != source):
        raise ConfigError(f"{archive_dir}: holds another run or sweep; archive "
                          f"{sweep_dir.name} into its own directory")
    if archive_dir.resolve() == sweep_dir.resolve():
        raise ConfigError(f"{archive_dir}: is the sweep itself; archive {sweep_dir.name} "
                          "into another directory")
    todo = check_archivable(sweep_dir, archive_dir)
    archive_dir.mkdir(parents=True, exist_ok=True)
    left_out = shutil.ignore_patterns(runs.LOCK_FILE, runs.TENSORBOARD_DIR,
                                      Path(runs.CHECKPOINT_FILE).parts[0], runs.DIAGNOSTICS_DIR)
    added = 0
    for run_dir, config in todo:
        target = archive_dir / run_dir.name
        temporary = target.with_name(f".{target.name}.copying")
        shutil.rmtree(temporary, ignore_errors=True)  # a copy killed half-way
        if target.exists():  # an unfinished run archived by hand (check_archivable)
            with runs.writer_lock(target):
                shutil.rmtree(target)
        shutil.copytree(run_dir, temporary, ignore=left_out)
        archive_diagnostics(run_dir, temporary, config)
        locate_in_archive(temporary, archive_dir, config)
        os.replace(temporary, target)
        added += 1
    atomic_write_text(archived_manifest, manifest)
    for table in runs.results_paths(sweep_dir):
        if table.is_file():
            atomic_write_text(archive_dir / table.name, table.read_text())
    return added, sum(runs.is_finished(d) for d in runs.run_dirs(archive_dir))
