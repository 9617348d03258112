"""``bmx`` command line (docs/method.md §9).

Bad input (unknown key, wrong type, out-of-range value, missing or corrupt file, label
outside the class list) prints one line ``bmx: error: ...`` naming the offending item and
exits with status 2, without a traceback. ``bmx --debug ...`` (or ``BMX_DEBUG=1``) shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading

# bmxlib.config.ConfigError is a ValueError; config is imported only by the subcommands
# that need it (it reads the method registry, which imports torch: --help must not)
USER_ERRORS = (FileNotFoundError, FileExistsError, ValueError, KeyError,
               NotADirectoryError, IsADirectoryError, PermissionError, OSError)


class OneLineParser(argparse.ArgumentParser):
    """argparse with its errors as the one ``bmx: error:`` line (no usage block), status 2."""

    def error(self, message: str):
        print(f"bmx: error: {' '.join(message.split())} (see bmx --help)", file=sys.stderr)
        raise SystemExit(2)


def _train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import runs
    from .config import ConfigError, from_dict, load_config
    from .engine import fit

    if args.resume:
        for option, given in (("--config", args.config), ("--overwrite", args.overwrite)):
            if given:
                raise ConfigError(f"{option} does not go with --resume (the run keeps its "
                                  "config and its results)")
        run_dir = Path(args.resume).expanduser().resolve()  # `--resume .` names the folder
        runs.check_writable(run_dir, resume=True, overwrite=False)
        values = runs.read_config(run_dir)
        values.update(out_dir=str(run_dir.parent), name=run_dir.name)
        config = from_dict(values, source=str(runs.config_path(run_dir)))
        if args.overrides:
            raise ConfigError("overrides are not allowed with --resume (the run keeps its config)")
    else:
        if not args.config:
            raise ConfigError("bmx train needs --config FILE (or --resume RUN_DIR)")
        try:
            config = load_config(args.config, args.overrides)
        except ConfigError:
            from .sweep import is_sweep_file

            if is_sweep_file(args.config):
                raise ConfigError(f"{args.config} is a sweep file (it has a 'grid'); run it "
                                  f"with: bmx sweep --config {args.config}") from None
            raise
    run_dir = Path(config.out_dir) / config.name
    args.interrupt_run_dir = run_dir  # the interrupt's hint: resume it once it exists
    finished = bool(args.resume) and runs.is_finished(run_dir)  # fit leaves it as it is
    fit(config, resume=bool(args.resume), overwrite=args.overwrite)
    print(f"{run_dir} is finished ({runs.SUMMARY_FILE}): nothing to resume" if finished
          else f"run written to {run_dir}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    # finished points are kept; the same command skips them and resumes the rest (set
    # before the imports: a Ctrl-C in their seconds said only "interrupted")
    args.interrupt_hint = "the same command: bmx " + shlex.join(args.argv)
    from .launchers import ClusterOptions, PointsFailed
    from .sweep import run_sweep

    cluster = ClusterOptions(partition=args.partition, gpus=args.gpus, cpus=args.cpus,
                             time_minutes=args.time, mem_gb=args.mem)
    try:
        out = run_sweep(args.config, overrides=args.overrides, jobs=args.jobs, name=args.name,
                        launcher=args.launcher, cluster=cluster, max_points=args.max_points,
                        reuse=args.reuse, only=args.only)
    except PointsFailed as err:
        print(f"bmx: {err}", file=sys.stderr)
        return 1
    print(f"sweep written to {out}")
    return 0


def _archive(args: argparse.Namespace) -> int:
    from .archive import archive_sweep, mixed_builds_note

    added, total = archive_sweep(args.sweep_dir, args.archive_dir)
    print(f"{added} runs archived now, {total} finished runs in {args.archive_dir} "
          f"(bmx sweep --reuse {args.archive_dir} copies them)")
    note = mixed_builds_note(args.archive_dir)
    if note:
        print(note, file=sys.stderr)
    return 0


def _tables(args: argparse.Namespace) -> int:
    from .paper_tables import (
        grid_markdown,
        large_loss_markdown,
        measure_markdown,
        oversampling_markdown,
        relabeling_markdown,
        settings_markdown,
    )

    # every table built before any is printed: bad input prints nothing but its one line
    try:
        tables = [grid_markdown(args.sweep_dir)]
    except ValueError:
        if args.oversampling:
            raise
        # a sweep without the grid's method x noise axes (the missing readings, a
        # sensitivity sweep): one row per setting, the measures side by side
        tables = [settings_markdown(args.sweep_dir, ["mAP", *args.measure])]
    else:
        tables += [measure_markdown(args.sweep_dir, measure) for measure in args.measure]
    if args.oversampling:
        tables.append(oversampling_markdown(args.sweep_dir))
    if args.relabeling:
        tables.append(relabeling_markdown(args.sweep_dir))
    if args.large_loss:
        tables.append(large_loss_markdown(args.sweep_dir))
    print("\n".join(tables))
    return 0


def _config_list(args: argparse.Namespace) -> int:
    from .config import describe_keys

    for key, default, comment in describe_keys():
        print(f"{key} = {default!r}" + (f"  # {comment}" if comment else ""))
    return 0


def _report(args: argparse.Namespace) -> int:
    from . import runs
    from .config import ConfigError, from_dict
    from .report import build_report

    # every run's saved config passes training's validation and every file its notebooks
    # read can be read, or the report is refused before anything is written
    for run_dir in runs.run_dirs(args.dir):
        saved = runs.config_path(run_dir)
        try:
            run = runs.load_run(run_dir)  # names a corrupt config, labels.npz, JSON or metrics
        except ValueError as error:
            raise ConfigError(f"report refused: {error}") from None
        try:
            from_dict(run.config, source=str(saved))
        except ConfigError as error:
            raise ConfigError(f"report refused: {saved}: {error}") from None
        missing = [key for key in ("method", "dataset", "epochs") if key not in run.config]
        if missing:  # a run writes every key; truncated, the defaults would stand in
            raise ConfigError(f"report refused: {saved} lacks {missing[0]!r} (truncated?)")
        problem = run.complete and runs.epochs_recorded_once(run_dir, run.config["epochs"])
        if problem:
            raise ConfigError(f"report refused: {run_dir / runs.METRICS_FILE} of the finished "
                              f"run holds {problem}")

    index, failures = build_report(args.dir, out=args.out, no_code=args.no_code)
    print(f"report written to {index}")
    return 1 if failures else 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(out_dir=args.out_dir, report=not args.no_report)


def _bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    run_bench(device=args.device, out=args.out, quick=args.quick, only=args.only)
    return 0


def _data_stats(args: argparse.Namespace) -> int:
    from .data import DATASETS, GENERATED_DATASETS, load_dataset
    from .stats import format_stats, imbalance, shot_groups

    generated = args.name in GENERATED_DATASETS  # the others are read from --root
    if args.name in DATASETS and bool(args.root) == generated:  # named as typed: --root
        raise ValueError(f"bmx data stats {args.name} " + (
            "takes no --root (generated in memory)" if generated
            else f"needs --root FOLDER (the folder of the {args.name} data)"))
    options = {}
    if args.root:
        options["root"] = args.root
    dataset = load_dataset(args.name, args.split, **options)
    stats = imbalance(dataset.labels)
    reference = dataset if args.split == "train" else load_dataset(args.name, "train", **options)
    groups = shot_groups(
        reference.labels.sum(axis=0), many=reference.shot_many, few=reference.shot_few
    )
    print(f"{args.name} ({args.split}): {stats['n_instances']} instances, "
          f"{stats['n_classes']} classes, shot groups: many > {reference.shot_many}, "
          f"few < {reference.shot_few} training positives")
    print(format_stats(stats, dataset.class_names, groups))
    return 0


def _data_regime(args: argparse.Namespace) -> int:
    from .regime import regime_markdown, regime_rows

    print(regime_markdown(regime_rows(args.sweep_dir)))
    return 0


def _data_plateau(args: argparse.Namespace) -> int:
    from .regime import plateau_markdown, plateau_rows

    print(plateau_markdown(plateau_rows(args.sweep_dir)), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .bench.registry import BENCHMARKS  # names only: no torch import

    parser = OneLineParser(prog="bmx", description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error instead of one line")
    sub = parser.add_subparsers(dest="command", required=True,
                                parser_class=OneLineParser)

    train = sub.add_parser("train", help="train one config into runs/<name>/",
                           epilog="Config keys, their defaults and meanings: bmx config --list")
    train.add_argument("--config", help="YAML config file")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    train.add_argument("--overwrite", action="store_true", help="replace an existing run dir")
    train.add_argument("--distributed", action="store_true",
                       help="(under torchrun) use DistributedDataParallel; implied by WORLD_SIZE")
    train.add_argument("overrides", nargs="*", metavar="key=value",
                       help="config keys to override (anywhere on the line; a key given "
                            "twice takes its last value; see bmx config --list)")
    train.set_defaults(func=_train)

    sweep = sub.add_parser("sweep", help="run a grid of configs and tabulate the results")
    sweep.add_argument("--config", required=True, help="sweep YAML (base + grid)")
    sweep.add_argument("--jobs", type=int, default=1,
                       help="points run at once in worker processes (default 1)")
    sweep.add_argument("--name", default=None,
                       help="sweep directory name under out_dir (default: the file's name)")
    sweep.add_argument("--max-points", type=int, default=10_000,
                       help="refuse grids with more points than this (default 10000)")
    sweep.add_argument("--reuse", action="append", default=[], metavar="SWEEP_DIR",
                       help="copy the finished runs of another sweep that computed exactly "
                            "a point of this one, instead of running it (repeatable)")
    sweep.add_argument("--only", action="append", default=[], metavar="AXIS=LABEL",
                       help="run only the points with this label (repeatable; e.g. seed=0 "
                            "first, then the same command without --only runs the rest)")
    sweep.add_argument("overrides", nargs="*", metavar="key=value",
                       help="overrides applied to every grid point")
    sweep.add_argument("--launcher", default="local",
                       choices=("local", "slurm", "submitit-local"),
                       help="local: this machine (--jobs at once); slurm: one SLURM job per "
                            "point through submitit; submitit-local: submitit on this machine")
    sweep.add_argument("--partition", default="", help="SLURM partition (--launcher slurm)")
    sweep.add_argument("--gpus", type=int, default=1, help="GPUs per point (slurm)")
    sweep.add_argument("--cpus", type=int, default=8, help="CPUs per point (slurm)")
    sweep.add_argument("--time", type=int, default=24 * 60, help="minutes per point (slurm)")
    sweep.add_argument("--mem", type=int, default=64, help="GB of memory per point (slurm)")
    sweep.set_defaults(func=_sweep)

    archive = sub.add_parser(
        "archive", help="copy a sweep's finished runs, without checkpoints, to commit them",
        description="Copy the finished runs of SWEEP_DIR into ARCHIVE_DIR without checkpoints "
                    "and TensorBoard logs (a directory small enough to commit); "
                    "`bmx sweep --reuse ARCHIVE_DIR` on another machine copies them instead "
                    "of re-running them.")
    archive.add_argument("sweep_dir", help="a sweep directory (bmx sweep's output)")
    archive.add_argument("archive_dir", help="where the archive goes (created if missing)")
    archive.set_defaults(func=_archive)

    tables = sub.add_parser(
        "tables", help="a sweep's method x setting tables beside the paper's COCO numbers",
        description="Markdown: last-epoch mAP (mean ± std over seeds [the paper's COCO "
                    "number]) per method (or ablation variant) and noise setting (a further "
                    "axis's labels follow the row's: 'll_r (mixed-zero)'), the first "
                    "row's drop against clean paired by seed, and the ranks; then one table "
                    "per --measure. A sweep without method (or variant) and noise axes "
                    "gets one row per setting, mAP and each --measure side by side.")
    tables.add_argument("sweep_dir", help="a sweep directory (the grid tables need method "
                                          "(or variant), noise and seed axes)")
    tables.add_argument("--measure", action="append", default=[], metavar="NAME",
                        help="also tabulate this summary measure, e.g. mAP_few, "
                             "memorized_noisy, selection_precision (repeatable)")
    tables.add_argument("--oversampling", action="store_true",
                        help="also the minority sampler's draw of each shot group relative "
                             "to a shuffle (runs with draw shares)")
    tables.add_argument("--relabeling", action="store_true",
                        help="also what label management did to the positives per shot "
                             "group (runs with label states); on a sweep without the grid's "
                             "axes, this table alone")
    tables.add_argument("--large-loss", action="store_true",
                        help="also where LL-R / LL-Ct's modified labels fell per shot group "
                             "(runs with per-class large-loss counts)")
    tables.set_defaults(func=_tables)

    report = sub.add_parser("report", help="execute the notebooks on a run or sweep dir")
    report.add_argument("dir", help="run directory or sweep directory")
    report.add_argument("--out", help="output folder (default reports/<name>)")
    report.add_argument("--no-code", action="store_true",
                        help="HTML without code cells: a figures-and-tables report")
    report.set_defaults(func=_report)

    config = sub.add_parser("config", help="the config keys: defaults and meanings")
    config.add_argument("--list", action="store_true", required=True,
                        help="print every key, its default and its comment")
    config.set_defaults(func=_config_list)

    demo = sub.add_parser("demo", help="the quick-start demo on digits-lt")
    demo.add_argument("--out-dir", default="runs/demo", help="where the demo sweep goes")
    demo.add_argument("--no-report", action="store_true", help="skip the notebook report")
    demo.set_defaults(func=_demo)

    bench = sub.add_parser("bench", help="time bmxlib against the peers it replaces")
    bench.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    bench.add_argument("--out", help="write the results as JSON")
    bench.add_argument("--quick", action="store_true", help="small sizes (for tests)")
    bench.add_argument("--only", help="comma-separated subset of: " + "; ".join(
        f"{b.name} ({b.measures})" for b in BENCHMARKS.values()))
    bench.set_defaults(func=_bench)

    data = sub.add_parser("data", help="dataset tools")
    data_sub = data.add_subparsers(dest="data_command", required=True,
                                   parser_class=OneLineParser)
    stats = data_sub.add_parser("stats", help="label counts, imbalance ratios, shot groups")
    stats.add_argument("name", help="digits-lt | glyphs-coco | coco | voc | manifest")
    stats.add_argument("--split", default="train")
    stats.add_argument("--root", help="data folder (coco / voc / manifest)")
    stats.set_defaults(func=_data_stats)
    regime = data_sub.add_parser(
        "regime", help="does BCE memorize the noise in a calibration sweep's settings "
        "(docs/method.md §5 'Regime')")
    regime.add_argument("sweep_dir", help="a sweep with a 'noise' axis (clean, mislabel-40, "
                        "flip-40, missing) of BCE runs")
    regime.set_defaults(func=_data_regime)
    plateau = data_sub.add_parser(
        "plateau", help="is every method and setting of a sweep at its plateau at the "
        "schedule's end (the regime's plateau test for all methods)")
    plateau.add_argument("sweep_dir", help="a sweep directory or an archive of one")
    plateau.set_defaults(func=_data_plateau)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv``, taking ``key=value`` overrides anywhere on the line (argparse alone
    takes them only before the first flag: ``bmx train --overwrite epochs=3`` failed)."""
    args, extra = parser.parse_known_args(argv)
    stray = [item for item in extra if item.startswith("-") or "=" not in item]
    if extra and (stray or not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        args.overrides = [*(args.overrides or []), *extra]
    return args


def one_line(err: BaseException) -> str:
    """The error as one line. An error raised in a DataLoader worker carries the worker's
    whole traceback in its message: only its last line (the original error) is kept."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    if "Original Traceback" in text:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        original = lines[-1]
        text = original.split(": ", 1)[1] if ": " in original else original
    if isinstance(err, OSError) and err.filename and str(err.filename) not in text:
        text = f"{err.filename}: {text}"
    return " ".join(text.split())[:400] or err.__class__.__name__


INTERRUPTED, TERMINATED = 130, 143  # main's status after Ctrl-C / SIGTERM (128 + signal)


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that it unwinds like Ctrl-C."""


def _terminated(signum, frame):
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_args(build_parser(), argv)
    except SystemExit as stop:  # --help (0) or a one-line usage error (2)
        return int(stop.code or 0)
    except KeyboardInterrupt:  # in the command's first tenth of a second (was a traceback)
        print("bmx: interrupted before the command started (nothing was written)",
              file=sys.stderr)
        return INTERRUPTED
    args.argv = argv
    previous = signal.signal(signal.SIGTERM, _terminated) \
        if threading.current_thread() is threading.main_thread() else None
    try:
        return _run(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `bmx tables … | head`; before USER_ERRORS, which hold OSError
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (silence the flush at exit)
        return 0
    except USER_ERRORS as err:
        if args.debug or os.environ.get("BMX_DEBUG"):
            raise
        print(f"bmx: error: {one_line(err)}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as stop:
        hint = getattr(args, "interrupt_hint", "")
        if args.func is _train:  # resume the run once it exists; before that (config too) rerun
            from .runs import is_run_dir

            run_dir = getattr(args, "interrupt_run_dir", None)
            hint = (f"bmx train --resume {run_dir}" if run_dir is not None and is_run_dir(run_dir)
                    else "the same command (nothing was written): bmx " + shlex.join(args.argv))
        print(f"bmx: {'interrupted' if isinstance(stop, KeyboardInterrupt) else 'terminated'}"
              f"{'; continue with ' + hint if hint else ''}", file=sys.stderr)
        return INTERRUPTED if isinstance(stop, KeyboardInterrupt) else TERMINATED


def console() -> int:
    """The ``bmx`` command: :func:`main`, except that a Ctrl-C'd command ends by SIGINT
    once Python has shut down (a shell shows status 130 either way). A shell loop of bmx
    commands then stops at Ctrl-C: bash goes on to the next command after one that exits
    with 130, and stops only after one that SIGINT ended. Python ends so when a
    KeyboardInterrupt leaves the program (since 3.8); ``bmx: interrupted ...`` is printed
    already, so the traceback is not."""
    status = main()
    if status == INTERRUPTED:
        sys.excepthook = _quiet_after_interrupt
        raise KeyboardInterrupt
    return status


def _quiet_after_interrupt(kind, value, traceback) -> None:
    if not issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, traceback)


if __name__ == "__main__":
    sys.exit(console())
