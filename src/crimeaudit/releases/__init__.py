"""Release differences: two publications of the same crimes, compared crime by crime.

data.police.uk republishes every month of a force's crimes in each archive; crimes that
vanish between releases were most likely cancelled, and types and outcomes change as records
are corrected and investigations end. :func:`compare_releases` counts what changed over the
months both releases cover (matched, vanished, new, type, outcome and period changes, with
their transitions in the published text); :func:`read_release` reads a release from a
project or from a folder of files with an ingest profile. ``crimeaudit releases OLD NEW``
prints it; the ``releases`` detector tests where the changes concentrate.
"""

from crimeaudit.releases.compare import (
    COUNTS,
    Release,
    ReleaseComparison,
    compare_releases,
    release_from_frame,
)
from crimeaudit.releases.source import ReleasesError, project_release, read_release

__all__ = [
    "COUNTS",
    "Release",
    "ReleaseComparison",
    "ReleasesError",
    "compare_releases",
    "project_release",
    "read_release",
    "release_from_frame",
]
