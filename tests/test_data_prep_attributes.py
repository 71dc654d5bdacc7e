"""Stage data_prep, the attribute file: LFW's format read and checked, names, encodings, malformed rows."""
from __future__ import annotations

import numpy as np
import pytest

from data_prep.attributes import (
    LFW_ATTRIBUTE_NAMES,
    AttributeFileError,
    AttributeTable,
    read_attribute_file,
    write_attribute_file,
)

HEADER = "#\tperson\timagenum\t" + "\t".join(LFW_ATTRIBUTE_NAMES)


def row(person: str, num: int, value: str = "0.5") -> str:
    return "\t".join([person, str(num)] + [value] * len(LFW_ATTRIBUTE_NAMES))


def test_real_file_parses_every_row(real_attributes):
    table = read_attribute_file(real_attributes)
    assert table.names == list(LFW_ATTRIBUTE_NAMES)
    assert len(table.frame) == 2302
    assert table.frame["person"].nunique() == 52
    assert "George_W_Bush" in set(table.frame["person"])  # spaces -> folder underscores
    # every value equals the text of the file, read independently
    lines = [line for line in real_attributes.read_text().splitlines() if line and not line.startswith("#")]
    for i in (0, 1234, len(lines) - 1):
        fields = lines[i].split("\t")
        assert table.frame["person"].iloc[i] == fields[0].replace(" ", "_")
        assert table.frame["imagenum"].iloc[i] == int(fields[1])
        np.testing.assert_array_equal(table.frame[table.names].iloc[i].to_numpy(), np.array(fields[2:], float))


@pytest.mark.parametrize(
    "body, message",
    [
        ([HEADER, row("A B", 1), "A B\t2\t0.1"], ":3: expected 75 tab-separated fields"),
        ([HEADER, row("A B", 1, "abc")], ":2: non-numeric attribute value"),
        ([HEADER, row("A B", "x")], ":2: image number 'x' is not an integer"),
        ([HEADER, row("A B", 1, "nan")], ":2: attribute value is NaN"),
        ([HEADER, row("A B", 1), row("A B", 1)], ":3: duplicate row for A B 1 (first on line 2)"),
        ([row("A B", 1)], ":1: data row before the"),
        (["# only a comment"], "no '#\\tperson\\timagenum\\t...' header line"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, body, message):
    path = tmp_path / "attrs.txt"
    path.write_text("\n".join(body) + "\n")
    with pytest.raises(AttributeFileError) as info:
        read_attribute_file(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_leading_comments_and_round_trip(tmp_path):
    path = tmp_path / "attrs.txt"
    path.write_text("# first comment\n# second\n" + HEADER + "\n" + row("Jane Q Doe", 3, "-1.25") + "\n")
    table = read_attribute_file(path)
    assert table.frame["person"].tolist() == ["Jane_Q_Doe"]
    out = tmp_path / "again.txt"
    write_attribute_file(out, table, comment="copy")
    again = read_attribute_file(out)
    assert again.frame.equals(table.frame)
    assert out.read_text().splitlines()[2].startswith("Jane Q Doe\t3\t-1.25")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(AttributeFileError, match="attribute file not found"):
        read_attribute_file(tmp_path / "nope.txt")


def test_values_are_float32_matrix():
    import pandas as pd

    frame = pd.DataFrame({"person": ["a"], "imagenum": [1], "x": [1.5], "y": [-2.0]})
    assert AttributeTable(["x", "y"], frame).values().dtype == np.float32
