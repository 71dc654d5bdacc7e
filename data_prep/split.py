"""Identity-disjoint train/val/test split, deterministic for a seed."""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from attrgan.runtime.errors import UserError

SPLITS = ("train", "val", "test")


def check_fractions(fractions: tuple[float, float, float]) -> None:
    """Refuse split fractions that are not three shares in [0, 1] summing to 1."""
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise UserError(f"split fractions must be 3 shares in [0, 1] summing to 1 (--val-fraction and "
                        f"--test-fraction together at most 1), got train/val/test "
                        f"{tuple(round(f, 4) for f in fractions)}")


def split_by_identity(
    persons: pd.Series,
    labelled: pd.Series,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    test_people: Iterable[str] = (),
) -> np.ndarray:
    """The split name of each image, such that no person is in two splits.

    People with labelled images and people without are split separately, so each split
    gets its share of labelled images. Within each group people are visited in a seeded
    random order and given to the split that, after taking all of the person's images, is
    least full relative to its share of the group's images. So one very large identity
    (George W Bush holds 524 of the 2,302 rows of the partial real attribute file) lands in
    the largest split instead of swamping a small test split. ``test_people`` (folder
    names) are put in the test split first.
    """
    check_fractions(fractions)
    forced = set(test_people)
    frame = pd.DataFrame({"person": persons.to_numpy(), "labelled": labelled.to_numpy(dtype=bool)})
    per_person = frame.groupby("person", sort=True).agg(images=("labelled", "size"), labelled=("labelled", "any"))
    rng = np.random.default_rng(seed)
    assignment: dict[str, str] = {}
    for _, group in per_person.groupby("labelled", sort=True):
        targets = np.asarray(fractions) * group["images"].sum()
        filled = np.zeros(3)
        for person in group.index.intersection(sorted(forced)):
            assignment[person] = "test"
            filled[2] += group.at[person, "images"]
        free = [p for p in group.index if p not in forced]
        for k in rng.permutation(len(free)):
            person = free[k]
            images = group.at[person, "images"]
            fullness = np.divide(filled + images, targets, out=np.full(3, np.inf), where=targets > 0)
            choice = int(np.argmin(fullness))
            assignment[person] = SPLITS[choice]
            filled[choice] += images
    return frame["person"].map(assignment).to_numpy()
