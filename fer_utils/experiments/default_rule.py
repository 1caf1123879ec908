"""Which shipped candidate ``fer predict`` uses without ``--model``: the rule, stated once
(:func:`choose_default`, whose docstring the model card prints verbatim), the public figures it reads
(:func:`fer_utils.experiments.served_scores.public_scores`, measured from each candidate's default file)
and ``default_model.json``, the choice :func:`fer_utils.deploy.bundled.default_model` reads.
"""

from __future__ import annotations

import inspect
import os
from datetime import UTC, datetime
from pathlib import Path

from fer_utils.deploy.bundled import (
    BUNDLED_DIR,
    DEFAULT_CHOICE_FILE,
    DEFAULT_FORMAT,
    bundled_files,
    default_model,
    model_stem,
    shipped_candidates,
)
from fer_utils.experiments.served_scores import PUBLIC_SET, ferplus_copy, public_scores
from fer_utils.files import atomic_write_json

#: The per-class floors a candidate must clear on the public validation faces to be ranked by accuracy:
#: the issue's bars (balanced accuracy ≥ 65 %, at most 10 % of non-neutral faces answered "neutral").
BALANCED_ACCURACY_FLOOR = 0.65
NEUTRAL_RATE_CEILING = 0.10


def clears_floors(figure: dict) -> bool:
    """Whether a candidate's public figures clear both per-class floors of :func:`choose_default`."""
    neutral_rate = figure.get("neutral_rate") or 0.0  # None: the faces hold no non-neutral face
    return figure["balanced_accuracy"] >= BALANCED_ACCURACY_FLOOR and neutral_rate <= NEUTRAL_RATE_CEILING


def choose_default(figures: dict[str, dict], current: str) -> str:
    """The default model is the shipped candidate with the highest accuracy on FER+ valid (FER2013
    PublicTest's raw pixels with the FER+ crowd's majority labels, all 8 classes, one crop, each face
    through the pixel step the candidate's default file declares, as `fer_utils.predict(face,
    detector="none")` serves it) among the candidates that clear two per-class floors there: balanced
    accuracy (mean per-class recall, a class the candidate cannot answer counted at recall 0) of at least
    65 %, and at most 10 % of the non-neutral faces answered "neutral". If no candidate clears both, the
    one with the highest balanced accuracy. Equal figures keep the current default. Only these public
    validation faces decide: no test set (FER+ test, FER2013 PrivateTest) and no hidden set enters the
    choice."""
    if not figures:
        return current
    eligible = {name: figure for name, figure in figures.items() if clears_floors(figure)}
    key = "accuracy" if eligible else "balanced_accuracy"
    ranked = eligible or figures
    return max(ranked, key=lambda name: (ranked[name][key], name == current))


def rule_text() -> str:
    """The rule as the card prints it: :func:`choose_default`'s docstring, verbatim."""
    return inspect.getdoc(choose_default)


def apply_default_rule(
    models_dir: str | os.PathLike | None = None, ferplus_root: str | os.PathLike | None = None
) -> dict:
    """Measure the public figures of every candidate shipped in ``models_dir`` (default the package's),
    apply :func:`choose_default` and write ``default_model.json``; returns that record. Without the FER+
    copy (``ferplus_root``, default ``../shared/data/fer2013plus``) nothing is measured and the current
    default stays (said in the record's ``note``)."""
    models_dir = Path(models_dir or BUNDLED_DIR)
    root = ferplus_copy(ferplus_root)
    current = model_stem(default_model(models_dir))
    candidates = shipped_candidates(models_dir)
    record = {"created": datetime.now(UTC).isoformat(timespec="seconds"), "rule": rule_text()}
    record |= {"public_set": PUBLIC_SET[3], "candidates": candidates, "previous": current}
    if not root.is_dir():
        note = f"no FER+ copy at {root}: nothing measured, the current default stays"
        print(f"default rule: {note}")
        return record | {"model": current, "figures": {}, "note": note}
    figures = {
        name: public_scores(models_dir / bundled_files(name)[DEFAULT_FORMAT], root) for name in candidates
    }
    chosen = choose_default(figures, current)
    record |= {"model": chosen, "figures": figures}
    atomic_write_json(models_dir / DEFAULT_CHOICE_FILE, record)
    return record


def default_lines(choice: dict | None) -> list[str]:
    """The card's paragraph on the default: the rule verbatim, each candidate's public figures, the choice."""
    choice = choice or {}
    lines = [
        f"**Default model** (`fer predict` without `--model`): `{choice.get('model', 'fer2013_robust_48')}`, "
        "chosen among the shipped candidates by this rule (`choose_default` in "
        "`fer_utils/experiments/default_rule.py`):",
        "",
        *(f"> {line}" if line else ">" for line in (choice.get("rule") or rule_text()).splitlines()),
        "",
    ]
    figures = choice.get("figures") or {}
    if not figures:
        return lines + [f"Public figures: not measured ({choice.get('note', 'no choice recorded')})."]
    lines += [
        f"| candidate | {PUBLIC_SET[3]}: accuracy | balanced accuracy | non-neutral answered neutral | "
        "clears both floors | lowest class recall | default |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, figure in figures.items():
        lowest = min(figure["recall"], key=figure["recall"].get)
        rate = "—" if figure["neutral_rate"] is None else f"{100 * figure['neutral_rate']:.1f} %"
        lines.append(
            f"| `{name}` | {100 * figure['accuracy']:.1f} % | {100 * figure['balanced_accuracy']:.1f} % | "
            f"{rate} | {'yes' if clears_floors(figure) else 'no'} | {lowest} "
            f"{100 * figure['lowest_recall']:.1f} % | {'**yes**' if name == choice.get('model') else ''} |"
        )
    recalls = ", ".join(
        f"`{name}`: " + ", ".join(f"{label} {100 * value:.1f} %" for label, value in figure["recall"].items())
        for name, figure in figures.items()
    )
    return lines + ["", f"Per-class recall there (one crop) — {recalls}."]
