"""crimeaudit: find the crimes that were never counted.

The public API offers the same verbs as the command line. See the README for a tour.
"""

__version__ = "0.1.0"
