"""The one contract every detector meets, so the runner, the docs and users treat them alike.

A detector answers one question (``question``) from some of the detect inputs (``needs``:
alternatives, each a set of inputs that is enough), with its minimum-data thresholds and
other knobs as *named* settings (a pydantic ``Settings`` model: each setting has a default
and a description). ``run(data, settings, skips)`` returns one
:class:`~crimeaudit.model.Finding` per unit tested; a unit it leaves out because a threshold
was not met is written to ``skips`` with the setting's name and value, so a reader learns
*why* a test did not run instead of meeting silence (scikit-learn's estimators are the model:
one contract, parameters validated at the edge).

>>> from pydantic import Field
>>> class Tiny(Detector):
...     name = "tiny"
...     question = "Are there any crimes at all?"
...     needs = (("crimes",),)
...
...     class Settings(DetectorSettings):
...         min_crimes: int = Field(5, ge=0, description="Crimes needed to answer.")
...
...     def run(self, data, settings, skips=None):
...         skips = skips if skips is not None else Skips()
...         skips.fewer(settings, "min_crimes", data.facts["n_crimes"], "crimes")
...         return []
>>> Tiny().settings({"min_crimes": 3}).min_crimes
3
>>> Tiny().settings({"min_crime": 3})
Traceback (most recent call last):
...
crimeaudit.detect.errors.DetectError: tiny: unknown setting 'min_crime' (settings: min_crimes)
>>> s = Skips()
>>> s.fewer(Tiny.Settings(), "min_crimes", 2, "crimes", unit="strand=rape")
True
>>> s.notes
['strand=rape: fewer than min_crimes=5 crimes (2)']
>>> s.exclude("serious share, burglary: British Transport Police", "British Transport Police",
...           "a transport police force")
>>> s.excluded[0]["reason"]
'a transport police force'
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from crimeaudit.detect.errors import DetectError
from crimeaudit.detect.inputs import INPUTS

if TYPE_CHECKING:
    from crimeaudit.detect.inputs import DetectInput
    from crimeaudit.model.figures import Finding


class DetectorSettings(BaseModel):
    """A detector's named settings: defaults, descriptions and validation in one place.

    Frozen, so one settings object can be shared by every unit of a run; unknown names are
    refused (a misspelt threshold must not be ignored silently).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _number(x: Any) -> str:
    """A count as people write it (``1,204``), a fraction as it is (``0.5``)."""
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


class Skips:
    """What a detector did not test, and the named setting that stopped it.

    A detector calls :meth:`fewer` where a minimum-data threshold decides whether a unit is
    tested: it returns ``True`` (skip) and notes, e.g., ``strand=rape: fewer than
    min_events=30 events (12)``. The runner puts the notes in
    :attr:`~crimeaudit.detect.runner.DetectionRun.units_skipped`.
    """

    def __init__(self) -> None:
        self.notes: list[str] = []
        #: Units left out because they cannot be compared at all (not for want of data).
        self.excluded: list[dict[str, str]] = []
        #: What a detector measured that is not a finding (e.g. release counts, zeros too).
        self.facts: dict[str, Any] = {}

    def note(self, text: str) -> None:
        """Record a skip that no single threshold explains (e.g. a model that did not fit)."""
        self.notes.append(text)

    def exclude(self, unit: str, area: str, reason: str) -> None:
        """Leave a unit out of a comparison it cannot take part in, with the reason in words
        (a transport police force in a comparison of residential burglary, for instance)."""
        self.excluded.append({"unit": unit, "area": area, "reason": reason})

    def fewer(self, settings: DetectorSettings, setting: str, observed: float, what: str,
              unit: str | None = None) -> bool:
        """Is ``observed`` below the minimum ``settings.<setting>``? If so, say so and skip."""
        limit = getattr(settings, setting)
        if observed >= limit:
            return False
        where = f"{unit}: " if unit else ""
        # The limit as a user would write it on the command line (--set name=value).
        self.notes.append(f"{where}fewer than {setting}={limit} {what} ({_number(observed)})")
        return True


class Detector(ABC):
    """One detection test: what it asks, what it reads, its named settings, how it runs.

    Subclasses set the class attributes and implement :meth:`run`; everything else (checking
    the inputs, validating settings, documenting) is shared.
    """

    #: Short name: the ``test`` of its findings and the key of its settings.
    name: ClassVar[str]
    #: What it looks for, in one line.
    question: ClassVar[str]
    #: Alternatives: the detector can run when every input of *one* of them is present.
    #: Input names are the keys of :data:`crimeaudit.detect.inputs.INPUTS`.
    needs: ClassVar[tuple[tuple[str, ...], ...]]
    #: Its named settings (thresholds with their defaults and descriptions).
    Settings: ClassVar[type[DetectorSettings]] = DetectorSettings

    def needs_words(self) -> str:
        """The inputs in words: ``crime records or monthly counts``."""
        return " or ".join(" and ".join(INPUTS[i] for i in alt) for alt in self.needs)

    def missing(self, data: DetectInput) -> str | None:
        """Why the detector cannot run on ``data`` (``None`` when it can), for a user to read."""
        if any(all(data.has(i) for i in alt) for alt in self.needs):
            return None
        return f"needs {self.needs_words()}"

    def settings(self, overrides: Mapping[str, Any] | None = None) -> DetectorSettings:
        """The defaults with ``overrides`` applied, validated (one-line :class:`DetectError`)."""
        overrides = dict(overrides or {})
        known = list(self.Settings.model_fields)
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise DetectError(f"{self.name}: unknown setting {unknown[0]!r} "
                              f"(settings: {', '.join(known)})")
        try:
            return self.Settings(**overrides)
        except ValidationError as exc:
            e = exc.errors()[0]
            field = ".".join(str(p) for p in e["loc"])
            raise DetectError(f"{self.name}.{field}: {e['msg']} "
                              f"(got {e.get('input')!r})") from None

    @abstractmethod
    def run(self, data: DetectInput, settings: DetectorSettings,
            skips: Skips | None = None) -> list[Finding]:
        """One finding per unit tested (q-values are set later, across the whole run)."""

    def __repr__(self) -> str:
        return f"<detector {self.name}>"


__all__ = ["Detector", "DetectorSettings", "Skips"]
