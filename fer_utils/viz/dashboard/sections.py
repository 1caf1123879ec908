"""The sections of a results page, named once: the dashboard and the static report show the same ones,
each built by the same function (a section one page cannot show says why in its place)."""

from __future__ import annotations

import html
import re

#: Every section, key → title, in the static report's order.
SECTIONS = {
    "protocols": "Protocol comparison",
    "ablation": "Regularization ablation",
    "overview": "All finished runs",
    "runs": "Runs in detail",
    "matrix": "Confusion matrix",
    "per_class": "Per-class scores",
    "curves": "Training curves",
    "calibration": "Calibration (test part)",
    "attributes": "Scores by subject and other attributes",
    "compare": "Compare two runs",
    "literature": "Beside the literature",
}
#: The sections of one run, under "Runs in detail" (the report: in each run's collapsible part).
RUN_SECTIONS = ("matrix", "per_class", "curves", "calibration", "attributes")
#: The sections the report's table of contents lists.
CONTENTS = ("protocols", "ablation", "runs", "compare", "literature")

_HEADING = re.compile(r'<h\d[^>]*\bdata-section="[^"]*"[^>]*>(.*?)</h\d>', re.S)


def section_heading(key: str, level: int = 2, anchor: str | None = None) -> str:
    """The heading of section ``key`` (``<h2 data-section="protocols" id="protocols">…``)."""
    anchor_attribute = f' id="{html.escape(anchor, quote=True)}"' if anchor else ""
    return (
        f'<h{level} class="fer-section" data-section="{key}"{anchor_attribute}>'
        f"{html.escape(SECTIONS[key])}</h{level}>"
    )


def section_titles(page: str) -> set[str]:
    """The titles of the section headings in a page's HTML (:func:`section_heading`)."""
    return {html.unescape(re.sub(r"<[^>]+>", "", title)).strip() for title in _HEADING.findall(page)}
