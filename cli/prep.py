"""Dataset commands: synth-lfw, prep-lfw, prep-celeba, prep-folder, synth-celeba."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cli.common import (
    CROP_SIZE_OPTION,
    DATASET_FORCE_OPTION,
    DATASET_OUT_OPTION,
    IMAGE_BATCH_OPTION,
    LIMIT_OPTION,
    MTCNN_DEVICE_OPTION,
    PROGRESS_OPTION,
    unlabelled_choice,
)


def synth_lfw(
    out: Path = typer.Argument(...,
                               help="Folder to create: OUT/lfw/<Name>/<Name>_NNNN.jpg and OUT/lfw_attributes.txt."),
    people: int = typer.Option(120, help="Number of synthetic people."),
    max_images: int = typer.Option(6, help="Most photos per person (LFW-like: most people have one or two)."),
    seed: int = typer.Option(0, help="Random seed; the same seed writes the same files."),
    unlabelled_fraction: float = typer.Option(0.03, help="Fraction of images left without an attribute row."),
    force: bool = typer.Option(False, help="Replace OUT if it exists (only once the new one is complete)."),
) -> None:
    """Write a synthetic LFW (face-like images with known attributes) in LFW's exact layout."""
    from data_prep.synth import RENDERED, write_synthetic_lfw

    summary = write_synthetic_lfw(out, people, max_images, seed, unlabelled_fraction, force=force)
    typer.echo(
        f"wrote {summary.images} images of {summary.people} people ({summary.labelled} labelled) to {out}/lfw\n"
        f"attributes: {out}/lfw_attributes.txt (rendered: {', '.join(RENDERED)})"
    )


def prep_lfw(
    images: Path = typer.Option(..., help="lfw.tgz (read streaming) or a folder of <Name>/<Name>_NNNN.jpg."),
    out: Path = DATASET_OUT_OPTION,
    attributes: Optional[Path] = typer.Option(None, help="lfw_attributes.txt; without it every image is unlabelled."),
    size: int = typer.Option(64, help="Side of the aligned square crop, in pixels."),
    device: str = MTCNN_DEVICE_OPTION,
    batch_size: int = typer.Option(64, help="Images per detection batch."),
    seed: int = typer.Option(0, help="Seed of the identity-disjoint split."),
    val_fraction: float = typer.Option(0.1, help="Share of images in the validation split."),
    test_fraction: float = typer.Option(0.1, help="Share of images in the test split."),
    test_people: Optional[Path] = typer.Option(None, help="File with one person per line, forced into the test split."),
    limit: Optional[int] = LIMIT_OPTION,
    labelled_only: bool = typer.Option(False,
                                       help="Skip images that have no attribute row (same as --unlabelled skip)."),
    unlabelled: str = typer.Option("use", help="use: keep images without an attribute row (they train the models "
                                   "with labelled = 0); skip: leave them out."),
    min_face: float = typer.Option(0.24, help="Smallest face searched, as a fraction of the shorter image side."),
    force: bool = DATASET_FORCE_OPTION,
    progress: bool = PROGRESS_OPTION,
) -> None:
    """Align LFW faces (MTCNN 5 landmarks -> similarity warp), join attributes, split by identity."""
    from attrgan.runtime.device import resolve_device
    from data_prep.prep import PrepConfig, format_prep_summary, prepare_dataset, read_test_people

    labelled_only = labelled_only or unlabelled_choice(unlabelled) == "skip"

    config = PrepConfig(
        images=images,
        out=out,
        attributes=attributes,
        test_people_file=test_people,
        size=size,
        device=str(resolve_device(device)),
        batch_size=batch_size,
        seed=seed,
        fractions=(1 - val_fraction - test_fraction, val_fraction, test_fraction),
        test_people=read_test_people(test_people) if test_people else [],
        limit=limit,
        labelled_only=labelled_only,
        force=force,
        min_face_fraction=min_face,
    )
    manifest = prepare_dataset(config, progress=progress)
    typer.echo(format_prep_summary(out, manifest))


def prep_celeba(
    root: Path = typer.Option(..., help="The CelebA folder in any layout: flat (img_align_celeba/ or .zip read without "
                              "extracting, list_attr_celeba.txt, list_eval_partition.txt, identity_CelebA.txt), the "
                              "Drive download (Img/, Anno/, Eval/), torchvision's root or Kaggle's copy (CSV files)."),
    out: Path = DATASET_OUT_OPTION,
    size: int = CROP_SIZE_OPTION,
    align: str = typer.Option("celeba", help="celeba: the authors' CelebA box; landmarks: the release's 5 landmarks "
                              "(list_landmarks_align_celeba) warped onto prep-lfw's template, so a model edits photos "
                              "aligned by `attrgan align` with the same framing; mtcnn: that template from detected "
                              "landmarks; none: the centred square."),
    device: str = MTCNN_DEVICE_OPTION,
    batch_size: int = IMAGE_BATCH_OPTION,
    limit: Optional[int] = LIMIT_OPTION,
    subset: bool = typer.Option(False, help="A partial copy: list rows whose image is not here are skipped and "
                                "counted (without it they are an error, so a truncated download is never used)."),
    force: bool = DATASET_FORCE_OPTION,
    progress: bool = PROGRESS_OPTION,
) -> None:
    """Crop CelebA (the official split kept), join its 40 binary attributes, write a dataset."""
    from data_prep.celeba import celeba_source
    from data_prep.celeba_layout import format_layout
    from data_prep.sources import check_alignment

    check_alignment("celeba", align)
    source = celeba_source(root, subset=subset, landmarks=align == "landmarks")
    typer.echo(format_layout(source.details))
    _prepare(source, out, size, align, device, batch_size, limit, force, progress)


def prep_folder(
    images: Path = typer.Option(..., help="Folder of images (any depth)."),
    attributes: Path = typer.Option(..., help="CSV (or .tsv) with a file-name column (paths relative to --images), "
                                    "numeric attribute columns, optional split and identity columns."),
    out: Path = DATASET_OUT_OPTION,
    file_column: Optional[str] = typer.Option(None, help="The file-name column (default: file, filename, file_name, "
                                              "image, image_id or path)."),
    split_file: Optional[Path] = typer.Option(None, help="Each image's split, kept as given: '<file> <split>' lines or "
                                              "a two-column CSV (e.g. CelebA's list_eval_partition), values 0/1/2 or "
                                              "train/val/test. Without it or a split column the split is seeded."),
    size: int = CROP_SIZE_OPTION,
    align: str = typer.Option("mtcnn", help="mtcnn: the 5-point template of prep-lfw; none: already aligned crops "
                              "(the centred square, resized)."),
    seed: int = typer.Option(0, help="Seed of the split when the file has no split column."),
    val_fraction: float = typer.Option(0.1, help="Share of images in the validation split (seeded split)."),
    test_fraction: float = typer.Option(0.1, help="Share of images in the test split (seeded split)."),
    device: str = MTCNN_DEVICE_OPTION,
    batch_size: int = IMAGE_BATCH_OPTION,
    limit: Optional[int] = LIMIT_OPTION,
    force: bool = DATASET_FORCE_OPTION,
    progress: bool = PROGRESS_OPTION,
) -> None:
    """Any labelled image folder: align (or take as is), join the CSV's attributes, split, write a dataset."""
    from data_prep.folder import folder_source
    from data_prep.sources import check_alignment

    check_alignment("folder", align)
    _prepare(folder_source(images, attributes, file_column, split_file), out, size, align, device,
             batch_size, limit, force,
             progress, seed=seed, fractions=(1 - val_fraction - test_fraction, val_fraction, test_fraction))


def _prepare(source, out: Path, size: int, align: str, device: str, batch_size: int, limit: Optional[int],
             force: bool, progress: bool, **split) -> None:
    """The shared writer for a reader's source, with its summary."""
    from attrgan.runtime.device import resolve_device
    from data_prep.prep import PrepConfig, format_prep_summary, prepare_dataset

    manifest = prepare_dataset(PrepConfig(
        images=None, out=out, source=source, crop=align, size=size, batch_size=batch_size, limit=limit, force=force,
        device=str(resolve_device(device)) if align == "mtcnn" else "cpu", **split), progress=progress)
    typer.echo(format_prep_summary(out, manifest))


def synth_celeba(
    out: Path = typer.Argument(..., help="Folder to create in CelebA's official layout."),
    images: int = typer.Option(200, help="Number of images."),
    seed: int = typer.Option(0, help="Random seed; the same seed writes the same files."),
    zip_images: bool = typer.Option(False, "--zip",
                                    help="Ship the images as img_align_celeba.zip instead of a folder."),
    layout: str = typer.Option("flat", help="flat: the release's files in one folder; drive: the Google Drive tree "
                               "(Img/, Anno/, Eval/); torchvision: its root (celeba/, the folder and the zip); kaggle: "
                               "Kaggle's copy (nested folder, CSV files)."),
    force: bool = typer.Option(False, help="Replace OUT if it exists (only once the new one is complete)."),
) -> None:
    """Write a synthetic CelebA (synth-lfw's faces under CelebA's attribute names) in the
    release's bytes and layouts."""
    from data_prep.synth_celeba import CELEBA_RENDERED, write_synthetic_celeba

    summary = write_synthetic_celeba(out, images, seed, zip_images, force=force, layout=layout)
    typer.echo(f"wrote {summary.images} images of {summary.people} people to {out} "
               f"(rendered: {', '.join(CELEBA_RENDERED)}; the other 30 attributes are random)")


COMMANDS = {"synth-lfw": synth_lfw, "prep-lfw": prep_lfw, "prep-celeba": prep_celeba, "prep-folder": prep_folder,
            "synth-celeba": synth_celeba}
