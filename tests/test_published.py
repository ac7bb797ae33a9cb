"""The published-results source: every cell of the OmniPT paper's Tables 1-7, as printed."""
from __future__ import annotations

import pytest

from vptracker.eval.published import TABLES, published, table

# (rows x columns printed, numbers printed, distinct numbers): 237 distinct numbers in all
SHAPES = {"table1": (9 * 11, 99, 86), "table2": (4 * 4, 16, 16), "table3": (6 * 5, 30, 30),
          "table4": (6 * 5, 20, 20), "table5": (6 * 8, 48, 47), "table6": (4 * 3, 12, 12),
          "table7": (5 * 6, 26, 26)}


@pytest.mark.parametrize("key", sorted(SHAPES))
def test_every_cell_of_every_table(key):
    tab = TABLES[key]
    cells, numbers, distinct = SHAPES[key]
    assert len(tab.rows) * len(tab.columns) == cells
    assert len(tab.numbers()) == numbers and len(set(tab.numbers())) == distinct


def test_all_237_distinct_numbers():
    assert sum(len(set(t.numbers())) for t in TABLES.values()) == 237


def test_spot_values_and_names():
    assert published("table1", "SORT", "instance CIDEr") == 0.056
    assert published(1, "MOTRv2", "MOTA") == 45.52
    assert published("Table 2", "TransRMOT", "Cross-domain CVRMA") == 0.2
    assert published(3, "OC-SORT", "MOTA") == 92.0
    assert published(4, "OmniPT", "MOTA") == 76.56 and published(4, "iKUN", "IDF1") is None
    assert published(5, "internvl2_5_4b", "instance CIDEr") == 0.017
    assert published(5, "qwen2_5_vl_7b", "RMOT HOTA") == 34.92
    assert published(6, "SFT+RL", "RMOT") == 35.46
    assert published(7, "4", "HOTA") == 70.60 and published(7, "32", "MOTA") is None
    assert table(1).row("SMOTer").source == "SMOTer (Li et al. 2025)"
    assert table(5).row("llava_next_8b").settings == {"preset": "llava_next_8b", "scale": "8B"}
    assert table(6).row("MT+SFT").settings["stages"] == ("stage1_format_grpo", "stage2_midtrain", "stage3_sft")
    assert table(7).row("16").settings == {"frames": 16}
    with pytest.raises(KeyError, match="rows: SORT"):
        published(1, "Nope", "HOTA")
    with pytest.raises(KeyError, match="no published table"):
        table(8)


def test_tables_agree_where_the_paper_repeats_itself():
    # the 72B row of Table 5 is the paper's own model: Table 1's instance captions, Table 3, Table 4
    for col in ("BLEU", "ROUGE", "METEOR", "CIDEr"):
        assert published(5, "qwen2_5_vl_72b", f"instance {col}") == published(1, "OmniPT", f"instance {col}")
    for col in ("HOTA", "IDF1", "MOTA"):
        assert published(5, "qwen2_5_vl_72b", col) == published(3, "OmniPT", col)
    assert published(5, "qwen2_5_vl_72b", "RMOT HOTA") == published(4, "OmniPT", "HOTA") == published(6, "MT+SFT+RL",
                                                                                                         "RMOT")
    assert published(7, "8", "MOTA") == published(1, "OmniPT", "MOTA")
    assert published(7, "8", "HOTA") != published(1, "OmniPT", "HOTA")  # the marked inconsistency
    assert table(1).note_marks("OmniPT", "HOTA") and table(4).note_marks("OmniPT", "MOTA")


def test_rows_read_as_the_paper_prints_them():
    from conftest import SHARED

    paper = SHARED / "seeds" / "omnipt_paper.txt"
    if not paper.is_file():
        pytest.skip(f"{paper} is absent")
    lines = paper.read_text().splitlines()
    for tab in TABLES.values():
        for row in tab.rows:
            assert any(line.endswith(" " + row.printed) or line == row.printed for line in lines), (tab.key, row.key)
