"""Where CelebA's files sit on disk: the layouts users have, and which file fills each role.

- ``flat``: the release's files in one folder (``img_align_celeba/`` or ``img_align_celeba.zip``
  and the text files beside it);
- ``drive``: the Google Drive download as it unpacks (``Img/``, ``Anno/``, ``Eval/``);
- ``torchvision``: the root given to ``torchvision.datasets.CelebA`` (the flat files in ``celeba/``;
  its download leaves the extracted folder and the zip side by side);
- ``kaggle``: Kaggle's copy (``img_align_celeba/img_align_celeba/`` and CSV files with an
  ``image_id`` column; no identity file).

In every layout the image folder is taken before the zip when both are there.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROLES = ("images", "attributes", "partition", "identity", "landmarks", "bbox")
REQUIRED = ("images", "attributes", "partition")
FLAT_FILES = {
    "images": ("img_align_celeba", "img_align_celeba.zip"),
    "attributes": ("list_attr_celeba.txt",),
    "partition": ("list_eval_partition.txt",),
    "identity": ("identity_CelebA.txt",),
    "landmarks": ("list_landmarks_align_celeba.txt",),
    "bbox": ("list_bbox_celeba.txt",),
}


@dataclass(frozen=True)
class Layout:
    """One way CelebA's files can sit under a root: the candidate paths of each role, preferred first."""

    name: str
    description: str
    candidates: dict[str, tuple[str, ...]]

    def resolve(self, root: Path) -> dict[str, Path | None]:
        """Each role's file (or image folder) under ``root``, None where none of its candidates is there."""
        return {role: next((root / c for c in self.candidates.get(role, ()) if _present(root / c)), None)
                for role in ROLES}


LAYOUTS = (
    Layout("flat", "the release's files in one folder (img_align_celeba/ or .zip, list_attr_celeba.txt, "
           "list_eval_partition.txt)", FLAT_FILES),
    Layout("torchvision", "torchvision's root (the same files in celeba/)",
           {role: tuple(f"celeba/{c}" for c in names) for role, names in FLAT_FILES.items()}),
    Layout("drive", "the Google Drive download (Img/img_align_celeba.zip, Anno/list_attr_celeba.txt, "
           "Eval/list_eval_partition.txt)", {
               "images": ("Img/img_align_celeba", "Img/img_align_celeba.zip"),
               "attributes": ("Anno/list_attr_celeba.txt",),
               "partition": ("Eval/list_eval_partition.txt",),
               "identity": ("Anno/identity_CelebA.txt",),
               "landmarks": ("Anno/list_landmarks_align_celeba.txt",),
               "bbox": ("Anno/list_bbox_celeba.txt",),
           }),
    Layout("kaggle", "Kaggle's copy (img_align_celeba/img_align_celeba/, list_attr_celeba.csv, "
           "list_eval_partition.csv)", {
               "images": ("img_align_celeba/img_align_celeba", "img_align_celeba"),
               "attributes": ("list_attr_celeba.csv",),
               "partition": ("list_eval_partition.csv",),
               "identity": ("identity_CelebA.txt", "identity_CelebA.csv"),
               "landmarks": ("list_landmarks_align_celeba.csv",),
               "bbox": ("list_bbox_celeba.csv",),
           }),
)


@dataclass(frozen=True)
class FoundLayout:
    """The layout found under ``root`` and the path of each role (None: not there)."""

    name: str
    root: Path
    files: dict[str, Path | None]

    def record(self) -> dict:
        """The layout for the manifest: its name, the root and each role's path relative to it."""
        return {"layout": self.name, "root": str(self.root),
                "files": {r: p.relative_to(self.root).as_posix() + ("/" if p.is_dir() else "") if p else None
                          for r, p in self.files.items()}}


def format_layout(record: dict) -> str:
    """Which layout was found, and which file fills each role (a :meth:`FoundLayout.record`)."""
    lines = [f"CelebA layout: {record['layout']} ({record['root']})"]
    lines += [f"  {role:<11} {path or '-'}" for role, path in record["files"].items()]
    return "\n".join(lines)


def find_layout(root: str | Path) -> FoundLayout:
    """The first layout whose image folder (or zip), attribute list and partition are all under
    ``root``; otherwise one error naming every layout looked for and the nearest match."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (the CelebA root; {_looked_for()})")
    for layout in LAYOUTS:
        files = layout.resolve(root)
        if all(files[role] is not None for role in REQUIRED):
            return FoundLayout(layout.name, root, files)
    raise FileNotFoundError(f"{root}: no CelebA layout fits; looked for {_looked_for()}; {_nearest(root)}")


def _present(path: Path) -> bool:
    return path.is_dir() if path.suffix == "" else path.is_file()


def _looked_for() -> str:
    return "; ".join(f"{layout.name}: {layout.description}" for layout in LAYOUTS)


def _nearest(root: Path) -> str:
    """A parent folder that fits (``--root`` given as ``Img/`` or ``celeba/img_align_celeba/``), else
    the layout with the most required files here and what it lacks."""
    def found(layout: Layout, where: Path) -> int:
        files = layout.resolve(where)
        return sum(files[role] is not None for role in REQUIRED)

    for parent in root.resolve().parents[:2]:
        fits = [layout.name for layout in LAYOUTS if found(layout, parent) == len(REQUIRED)]
        if fits:
            return f"its parent {parent} fits the {fits[0]} layout: pass --root {parent}"
    best = max(LAYOUTS, key=lambda layout: found(layout, root))
    if found(best, root) == 0:
        return "none of their files is here"
    missing = [c[0] if len(c) == 1 else " or ".join(c) for role, c in best.candidates.items()
               if role in REQUIRED and best.resolve(root)[role] is None]
    return f"nearest: {best.name}, which lacks {', '.join(missing)}"
