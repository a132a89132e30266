"""Moved to :mod:`crimeaudit.uncertainty`; re-exported for tests/test_detect.py, bench_detect.py."""

from crimeaudit.uncertainty import bh_adjust as bh_adjust
