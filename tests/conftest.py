"""Hypothesis profiles of the property suite (tests/test_properties.py).

``ci`` (the default): a fixed, derandomized run of a few thousand cases in about a
minute, the same cases every time.  ``thorough``: at least 10,000 cases from fresh random
seeds; select it with ``HYPOTHESIS_PROFILE=thorough`` (docs/reliability.md has the
command and the counts of its last run).
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

#: Examples per property test in each profile; tests/test_properties.py weights them.
EXAMPLES = {"ci": 40, "thorough": 200}

_common = dict(deadline=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.filter_too_much])
settings.register_profile("ci", max_examples=EXAMPLES["ci"], derandomize=True, **_common)
settings.register_profile("thorough", max_examples=EXAMPLES["thorough"], **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
