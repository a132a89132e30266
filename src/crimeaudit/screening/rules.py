"""Transparent screening rules: YAML regular expressions a registrar can read and edit.

>>> book = load_rules()
>>> hits = book.match(["He punched her, split lip", "no injuries, civil matter"])
>>> hits[0], hits[1]
(['injury', 'assault_act'], ['no_offence_stated'])
>>> why = book.explain("He punched her, split lip", "injury")
>>> why.startswith("injury: The victim was injured (cut,"), why.endswith("('split lip')")
(True, True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from crimeaudit.errors import CrimeauditError


class RulesError(CrimeauditError, ValueError):
    """A rules file that cannot be used (names the file and the rule)."""


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    pattern: str
    unless: str | None = None
    crime: bool = True
    implies: str | None = None
    family: tuple[str, ...] = ()


def split_hits(hit_ids: pa.Array, separator: str = ";") -> list[list[str]]:
    """The lists behind :meth:`RuleBook.hit_ids` strings (empty string: no rule hit).

    >>> split_hits(pa.array(["assault_act;weapon", ""]))
    [['assault_act', 'weapon'], []]
    """
    return [s.split(separator) if s else [] for s in hit_ids.to_pylist()]


@dataclass
class RuleBook:
    """The rules of one file, matched vectorised over narratives."""

    rules: list[Rule]
    source: str = "default"
    _compiled: dict = field(default_factory=dict, repr=False)

    def rule(self, rule_id: str) -> Rule:
        return next(r for r in self.rules if r.id == rule_id)

    def hit_matrix(self, narratives) -> dict[str, pa.Array]:
        """One boolean array per rule (nulls count as no hit)."""
        text = narratives if isinstance(narratives, pa.ChunkedArray | pa.Array) else pa.array(
            list(narratives), pa.string())
        out = {}
        for r in self.rules:
            hit = pc.fill_null(pc.match_substring_regex(text, r.pattern, ignore_case=True), False)
            if r.unless:
                no = pc.fill_null(pc.match_substring_regex(text, r.unless, ignore_case=True),
                                  False)
                hit = pc.and_(hit, pc.invert(no))
            out[r.id] = hit
        return out

    def hit_ids(self, narratives, separator: str = ";") -> pa.Array:
        """Rule ids hit by each narrative as one string per narrative, in rule order.

        Built with Arrow kernels, not a Python loop: a million narratives take a second.

        >>> load_rules().hit_ids(["he punched her", "lost a wallet"]).to_pylist()
        ['assault_act', '']
        """
        hits = self.hit_matrix(narratives)
        if not hits:
            n = len(narratives)
            return pa.array([""] * n, pa.string())
        # Each rule gives "id;" or "" (never null: Arrow's skip-nulls join drops rows where
        # every input is null), then the trailing separator goes.
        parts = [pc.if_else(hit, f"{rule_id}{separator}", "")
                 for rule_id, hit in hits.items()]
        joined = pc.binary_join_element_wise(*parts, "")
        return pc.utf8_rtrim(joined, characters=separator) if separator else joined

    def match(self, narratives) -> list[list[str]]:
        """Rule ids hit by each narrative, in rule order."""
        return split_hits(self.hit_ids(narratives))

    def explain(self, narrative: str, rule_id: str) -> str:
        """Why a rule hit: its description and the words that matched."""
        r = self.rule(rule_id)
        rx = self._compiled.setdefault(r.id, re.compile(r.pattern, re.IGNORECASE))
        m = rx.search(narrative or "")
        quote = f" ({m.group(0)!r})" if m else ""
        return f"{r.id}: {r.description}{quote}"


def load_rules(path: str | Path | None = None) -> RuleBook:
    """Rules from a YAML file (default: the shipped ``screen/rules/default.yaml``)."""
    if path is None:
        text = resources.files("crimeaudit.screening").joinpath("rules/default.yaml").read_text(
            encoding="utf-8")
        source = "default"
    else:
        path = Path(path)
        if not path.exists():
            raise RulesError(f"{path}: rules file not found")
        text, source = path.read_text(encoding="utf-8"), str(path)
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: not valid YAML: {exc}") from exc
    rules = []
    for i, raw in enumerate(doc.get("rules") or [], start=1):
        if not isinstance(raw, dict) or "id" not in raw or "pattern" not in raw:
            raise RulesError(f"{source}: rule {i} needs at least 'id' and 'pattern'")
        for key in ("pattern", "unless"):
            if raw.get(key):
                try:
                    re.compile(raw[key])
                except re.error as exc:
                    raise RulesError(f"{source}: rule {raw['id']!r}: bad {key}: {exc}") from exc
        rules.append(Rule(str(raw["id"]), str(raw.get("description", raw["id"])),
                          raw["pattern"], raw.get("unless"), bool(raw.get("crime", True)),
                          raw.get("implies"), tuple(raw.get("family") or ())))
    return RuleBook(rules, source)
