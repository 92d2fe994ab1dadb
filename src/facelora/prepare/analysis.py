"""The costly, per-photo part of prepare that needs nothing from the run: the faces dlib finds in
the photo and the person's identity descriptor. parallel.ordered runs it on the other cores ahead
of the pipeline, which keeps the numbering, the writing and the report in this process; the
pipeline uses a result only for the very bytes (and face) it was made from, so a run with
workers gives what a run without gives.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import faces, parallel
from . import images, people


@dataclass(frozen=True)
class Analysis:
    sha256: str
    found: list[faces.Face]  # faces.detect's answer, largest first
    before: np.ndarray | None  # the descriptor of the largest face in the photo as decoded


def analyse(job: tuple[Path, frozenset[str]]) -> Analysis | None:
    """The faces and descriptor of the photo at job[0]; None for bytes in job[1] (the last run's
    result is reused) and for anything that fails: the pipeline then does it itself and reports
    the failure as it always does."""
    path, skip = job
    try:
        data = images.read_bytes(path)
        sha = images.file_sha256(data)
        if sha in skip:
            return None
        rgb, _, _ = images.decode(data, path)
        found = faces.detect(rgb)
        before = faces.descriptor(rgb, people.subject(found)[0]) if found else None
        return Analysis(sha, found, before)
    except Exception:  # noqa: BLE001 - the pipeline meets the same error and names it
        return None


def ahead(paths: list[Path], skip: frozenset[str], workers: int | None = None) -> Iterator[Analysis | None]:
    """analyse for each path, in order, on `workers` - 1 processes beside the pipeline's (which
    does the rest of each photo meanwhile) when there are cores and photos enough; else nothing
    is done ahead (None each) and the pipeline works alone."""
    if parallel.worker_count(workers) < 2 or len(paths) < parallel.MIN_ITEMS:
        return iter([None] * len(paths))
    return parallel.ordered(analyse, [(p, skip) for p in paths], workers, beside=True)
