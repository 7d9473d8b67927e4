"""The ground floor: what every package may import, and which imports none of them.

Errors a GIS user can read, the database transaction helper and the version. The floors above,
from the bottom: ``layers`` → ``analyses`` → ``maps`` → ``geoservice``; imports run downhill
only (checked by import-linter in the test command).
"""

__version__ = "0.1.0"
