"""What each notebook of ``notebooks/`` needs, read from its own metadata.

A notebook declares itself in its JSON metadata under ``"bmxlib"``; ``bmx report`` (its
``plan_jobs``) and the tests read that, so a new notebook is one new file::

    "metadata": {"bmxlib": {
        "order": 20,                     # place in the report (ascending)
        "needs": "run",                  # "run": a run_dir parameter; "sweep": sweep_dir
        "method": "balancemix",          # run notebooks: the run must be of this method
        "switches": {"clean_labels": "why it is skipped when the key is false"},
        "axes": ["setting"],             # sweep notebooks: axes the sweep must have
        "diagnostics": ["loss_hist"],    # diagnostics keys it reads (checked by the tests)
        "parameters": {"interactive": false},  # extra papermill parameters
        "figures": ["loss_histograms"]   # the figures it publishes (checked by the tests)
    }}

A run notebook without ``method`` takes any finished run (the sweep's representative run
when it has finished, ``runs.representative_run``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NEEDS = ("run", "sweep")
KEYS = ("order", "needs", "method", "switches", "axes", "diagnostics", "parameters",
        "figures")


@dataclass(frozen=True)
class NotebookSpec:
    """One notebook's declaration (``metadata["bmxlib"]``) and its file."""

    name: str
    path: Path
    needs: str
    order: int = 100
    method: str | None = None
    switches: dict[str, str] = field(default_factory=dict)
    axes: tuple[str, ...] = ()
    diagnostics: tuple[str, ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)
    figures: tuple[str, ...] = ()


def read_spec(path: str | Path) -> NotebookSpec:
    """The declaration of the notebook at ``path``; ValueError naming the file and key."""
    path = Path(path)
    try:
        declared = json.loads(path.read_text()).get("metadata", {}).get("bmxlib")
    except (OSError, ValueError) as err:
        raise ValueError(f"notebook {path} cannot be read ({err.__class__.__name__})") from None
    if not isinstance(declared, dict):
        raise ValueError(f"notebook {path} declares nothing under metadata['bmxlib']")
    unknown = [k for k in declared if k not in KEYS]
    if unknown:
        raise ValueError(f"notebook {path}: unknown metadata['bmxlib'] key {unknown[0]!r}")
    if declared.get("needs") not in NEEDS:
        raise ValueError(f"notebook {path}: metadata['bmxlib']['needs'] must be one of "
                         f"{', '.join(NEEDS)}, got {declared.get('needs')!r}")
    return NotebookSpec(
        name=path.stem, path=path, needs=declared["needs"],
        order=int(declared.get("order", 100)), method=declared.get("method"),
        switches=dict(declared.get("switches", {})), axes=tuple(declared.get("axes", ())),
        diagnostics=tuple(declared.get("diagnostics", ())),
        parameters=dict(declared.get("parameters", {})),
        figures=tuple(declared.get("figures", ())),
    )


def notebook_specs(folder: str | Path) -> dict[str, NotebookSpec]:
    """Every ``*.ipynb`` of ``folder`` by name, in report order (``order``, then name);
    empty when the folder does not exist (an installed package without notebooks/)."""
    folder = Path(folder)
    specs = [read_spec(p) for p in sorted(folder.glob("*.ipynb"))] if folder.is_dir() else []
    return {s.name: s for s in sorted(specs, key=lambda s: (s.order, s.name))}
