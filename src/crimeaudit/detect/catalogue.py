"""The detectors' table in ``docs/detect.md``, generated from the registry.

Like Datasette's ``cog`` blocks: the table between the markers is written by
:func:`detectors_markdown` from :data:`~crimeaudit.detect.runner.DETECTORS` (question, inputs,
named settings with defaults and descriptions), and a test fails when the doc and the code
disagree. After changing a detector, rewrite the block with::

    .venv/bin/python -m crimeaudit.detect.catalogue docs/detect.md

>>> text = detectors_markdown()
>>> "| `bunching` |" in text and "`min_values_near_threshold` | 200 |" in text
True
"""

from __future__ import annotations

import sys
from pathlib import Path

from crimeaudit.detect.base import Detector
from crimeaudit.detect.runner import DETECTORS
from crimeaudit.store.files import write_text

BEGIN = ("<!-- detectors: generated from the registry by "
         "`python -m crimeaudit.detect.catalogue docs/detect.md`; do not edit by hand -->")
END = "<!-- detectors: end -->"


def _default(value) -> str:
    """A default as the table shows it (``|`` escaped: patterns use it; long lists counted).

    >>> print(_default({"a|b": "why"}), _default((("46", 200.0),)), _default(list(range(9))))
    1 pattern: `a\\|b` [["46", 200]] 9 built-in entries
    """
    if isinstance(value, dict):
        keys = "; ".join(f"`{k}`".replace("|", "\\|") for k in value)
        return f"{len(value)} pattern{'' if len(value) == 1 else 's'}: {keys}"
    if isinstance(value, list | tuple):
        if len(value) > 6:
            return f"{len(value)} built-in entries"
        return "[" + ", ".join(_default(v) for v in value) + "]"
    if isinstance(value, str):
        return f'"{value}"'.replace("|", "\\|")
    return f"{value:g}" if isinstance(value, float) else str(value)


def detectors_markdown(detectors: tuple[Detector, ...] = DETECTORS) -> str:
    """Two Markdown tables: the detectors, then every named setting with its default."""
    lines = ["| detector | question | inputs | settings |", "|---|---|---|---|"]
    for d in detectors:
        names = ", ".join(f"`{n}`" for n in d.Settings.model_fields)
        lines.append(f"| `{d.name}` | {d.question} | {d.needs_words()} | {names} |")
    lines += ["", "| detector | setting | default | meaning |", "|---|---|---|---|"]
    for d in detectors:
        for name, f in d.Settings.model_fields.items():
            default = f.get_default(call_default_factory=True)
            lines.append(f"| `{d.name}` | `{name}` | {_default(default)} | "
                         f"{f.description} |")
    return "\n".join(lines)


def with_table(doc: str, detectors: tuple[Detector, ...] = DETECTORS) -> str:
    """``doc`` with the block between the markers replaced by the current tables."""
    head, begin, rest = doc.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not (begin and end):
        raise ValueError("the document has no detectors block (markers missing)")
    return f"{head}{BEGIN}\n{detectors_markdown(detectors)}\n{END}{tail}"


def main(argv: list[str]) -> int:
    """Rewrite the block in each file given (``--check``: only say whether it is current)."""
    check = "--check" in argv
    stale = []
    for name in (a for a in argv if a != "--check"):
        path = Path(name)
        doc = path.read_text(encoding="utf-8")
        new = with_table(doc)
        if new != doc:
            stale.append(name)
            if not check:
                write_text(path, new)
    if check and stale:
        print(f"out of date: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover - a maintainer's command
    raise SystemExit(main(sys.argv[1:]))
