"""Helpers shared by the template's maintainer scripts (`hooks/`), its tests (`tests/`), the
benchmarks (`tests/bench/`) and the mutation command (`tests/mutation/`); they import nothing
from `tests/`."""
