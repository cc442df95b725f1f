"""Shared test settings.

Hypothesis explores new random examples on every local run (and remembers failures in
.hypothesis/). Under CI (CI=true) it is derandomized, so a CI run is repeatable: the same
examples every time.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
