"""Shared by the benchmarks: the one JSON object for scripts, or the same figures as aligned lines for a person."""

from __future__ import annotations

import json
import sys


def emit(result: dict, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
        return
    width = max(map(len, result)) + 2
    for key, value in result.items():
        print(f"{key:{width}} {value}")
