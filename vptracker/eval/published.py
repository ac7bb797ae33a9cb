"""Published numbers: every cell of the OmniPT paper's Tables 1-7, and the SOT literature on TNL2K.

The one source for anything that compares against the paper (``vptracker eval report``, the
ablation sweeps)::

    published("table4", "OmniPT", "MOTA")          # 76.56
    published(7, "16", "HOTA")                     # None: the paper prints N/A
    TABLES["table5"].row("qwen2_5_vl_7b").settings  # {"preset": "qwen2_5_vl_7b", "scale": "7B"}

Each row is transcribed as the paper prints it: ``printed`` holds the row's cells in column
order, exactly as they appear in the paper's text (so a reader, or a test, can find every row in
the paper line by line). ``-`` is a cell the paper leaves empty, ``N/A`` one it marks as not
applicable (Table 7: "the inability of the model to handle long inputs"). Neither is a number.

``notes`` mark the paper's own inconsistencies on the cells a reader compares; the report prints
the mark beside the cell and the note under the table.
"""
from __future__ import annotations

from dataclasses import dataclass, field

NOT_NUMBERS = ("-", "N/A")
OMNIPT = "OmniPT (Ours), Qwen2.5-VL 72B (equals Table 5's 72B row)"
NOT_STATED = "not stated in OmniPT"
SMOTER = "SMOTer (Li et al. 2025)"  # "The results of the baseline methods are sourced from the SMOTer"


@dataclass(frozen=True)
class Row:
    key: str  # how code names the row: published("table5", "qwen2_5_vl_7b", ...)
    label: str  # the method as printed, with its citation
    source: str  # where the numbers come from
    printed: str  # the row's cells as the paper prints them, column order, space separated
    settings: dict = field(default_factory=dict)  # what an ablation row varies (preset, stages, frames)

    @property
    def cells(self) -> tuple[str, ...]:
        return tuple(self.printed.split())


@dataclass(frozen=True)
class Note:
    mark: str
    cells: tuple[tuple[str, str], ...]  # (row key, column) pairs the note is printed beside
    text: str


@dataclass(frozen=True)
class Table:
    key: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    ours: str  # key of the paper's own row
    notes: tuple[Note, ...] = ()
    legend: str = ""  # what the columns mean where the paper leaves it implicit

    def __post_init__(self):  # a transcription slip (a lost or extra cell) fails at import
        for row in self.rows:
            if len(row.cells) != len(self.columns):
                raise ValueError(f"{self.key} row {row.key}: {len(row.cells)} cells for {len(self.columns)} columns")
            for cell in row.cells:
                if cell not in NOT_NUMBERS:
                    float(cell)

    def row(self, key: str) -> Row:
        for row in self.rows:
            if row.key == key:
                return row
        raise KeyError(f"{self.key} has no row {key!r}; rows: {', '.join(r.key for r in self.rows)}")

    def text(self, row: str, column: str) -> str:
        """The cell as printed ("-" and "N/A" included)."""
        if column not in self.columns:
            raise KeyError(f"{self.key} has no column {column!r}; columns: {', '.join(self.columns)}")
        return self.row(row).cells[self.columns.index(column)]

    def value(self, row: str, column: str) -> float | None:
        text = self.text(row, column)
        return None if text in NOT_NUMBERS else float(text)

    def numbers(self) -> list[float]:
        """Every printed number of the table, row by row (empty and N/A cells left out)."""
        return [float(c) for r in self.rows for c in r.cells if c not in NOT_NUMBERS]

    def note_marks(self, row: str, column: str) -> list[str]:
        return [n.mark for n in self.notes if (row, column) in n.cells]


_CAPTIONS = ("BLEU", "ROUGE", "METEOR", "CIDEr")

TABLE1 = Table(
    "table1", "Table 1: BenSMOT test set (video captions, instance captions, tracking)",
    tuple(f"video {m}" for m in _CAPTIONS) + tuple(f"instance {m}" for m in _CAPTIONS) + ("HOTA", "IDF1", "MOTA"),
    (Row("SORT", "SORT (Bewley et al. 2016)", SMOTER,
         "0.245 0.224 0.202 0.298 0.233 0.245 0.208 0.056 48.49 53.93 53.58"),
     Row("DeepSORT", "DeepSORT (Wojke, Bewley, and Paulus 2017)", SMOTER,
         "0.198 0.213 0.187 0.309 0.238 0.212 0.199 0.065 50.12 56.76 54.29"),
     Row("OC-SORT", "OC-SORT (Cao et al. 2023)", SMOTER,
         "0.231 0.252 0.215 0.242 0.270 0.205 0.180 0.033 51.00 58.01 55.19"),
     Row("ByteTrack", "ByteTrack (Zhang et al. 2022)", SMOTER,
         "0.224 0.225 0.212 0.266 0.304 0.242 0.224 0.064 68.84 78.37 73.87"),
     Row("TransTrack", "TransTrack (Sun et al. 2020)", SMOTER,
         "0.247 0.248 0.209 0.269 0.283 0.219 0.201 0.074 71.31 78.67 74.08"),
     Row("MOTR", "MOTR (Zeng et al. 2022)", SMOTER,
         "0.187 0.254 0.203 0.244 0.230 0.209 0.182 0.061 66.10 68.97 45.19"),
     Row("MOTRv2", "MOTRv2 (Zhang, Wang, and Zhang 2023)", SMOTER,
         "0.217 0.258 0.219 0.248 0.238 0.241 0.204 0.059 65.28 70.76 45.52"),
     Row("SMOTer", "SMOTer (Li et al. 2025)", SMOTER,
         "0.245 0.261 0.223 0.343 0.306 0.223 0.209 0.087 71.98 80.65 77.71"),
     Row("OmniPT", "OmniPT (Ours)", OMNIPT,
         "0.519 0.488 0.459 1.826 0.512 0.342 0.353 0.482 75.04 81.13 77.78")),
    ours="OmniPT",
    notes=(Note("a", (("OmniPT", "HOTA"),),
                "Table 7 (BenSMOT, images per sample) peaks at 73.04 HOTA (8 images; 16 and 32 are N/A), yet "
                "Table 1 prints 75.04 beside 77.78 MOTA; that MOTA equals Table 7's 8-image MOTA, the HOTA does "
                "not (75.04 vs 73.04)."),
           Note("b", (("OmniPT", "instance ROUGE"),),
                "The text claims improvements of over 50% across all metrics; instance ROUGE 0.342 is +40% over "
                "the best baseline (SORT, 0.245).")),
    legend="BLEU is BLEU-4 and ROUGE is ROUGE-L (SMOTer's evaluation); tracking on BenSMOT.")

TABLE2 = Table(
    "table2", "Table 2: CRTrack test set (CRMOT), in-domain and cross-domain",
    ("In-domain CVRIDF1", "In-domain CVRMA", "Cross-domain CVRIDF1", "Cross-domain CVRMA"),
    (Row("TransRMOT", "TransRMOT (Wu et al. 2023)", NOT_STATED, "23.30 8.03 3.66 0.2"),
     Row("TempRMOT", "TempRMOT (Zhang et al. 2024)", NOT_STATED, "23.43 10.14 3.78 0.39"),
     Row("CRTracker", "CRTracker (Chen, Yu, and Tao 2024)", NOT_STATED, "54.88 35.97 12.52 2.32"),
     Row("OmniPT", "OmniPT (Ours)", OMNIPT, "62.13 42.39 46.54 33.67")),
    ours="OmniPT")

TABLE3 = Table(
    "table3", "Table 3: DanceTrack test set (MOT)",
    ("HOTA", "DetA", "AssA", "MOTA", "IDF1"),
    (Row("FairMOT", "FairMOT (Zhang et al. 2021)", NOT_STATED, "39.7 66.7 23.8 82.2 40.8"),
     Row("TransTrack", "TransTrack (Sun et al. 2020)", NOT_STATED, "45.5 75.9 27.5 88.5 45.2"),
     Row("MOTR", "MOTR (Zeng et al. 2022)", NOT_STATED, "54.2 73.5 40.2 79.7 51.5"),
     # the DanceTrack README gives the same ByteTrack row as its test server's example return
     Row("ByteTrack", "ByteTrack (Zhang et al. 2022)", NOT_STATED + " (the DanceTrack test server's example)",
         "47.7 71.0 32.1 89.6 53.9"),
     Row("OC-SORT", "OC-SORT (Cao et al. 2023)", NOT_STATED, "55.1 80.3 38.3 92.0 54.6"),
     Row("OmniPT", "OmniPT (Ours)", OMNIPT, "56.4 81.7 41.0 90.2 55.4")),
    ours="OmniPT")

TABLE4 = Table(
    "table4", "Table 4: Refer-KITTI-V2 test set (RMOT)",
    ("HOTA", "DetA", "AssA", "MOTA", "IDF1"),
    (Row("FairMOT", "FairMOT (Zhang et al. 2021)", NOT_STATED, "22.53 15.8 32.82 - -"),
     Row("ByteTrack", "ByteTrack (Zhang et al. 2022)", NOT_STATED, "24.59 16.78 36.63 - -"),
     Row("iKUN", "iKUN (Du et al. 2024)", NOT_STATED, "10.32 2.17 49.77 - -"),
     Row("TransRMOT", "TransRMOT (Wu et al. 2023)", NOT_STATED, "31.00 19.40 49.68 - -"),
     Row("TempRMOT", "TempRMOT (Zhang et al. 2024)", NOT_STATED, "35.04 22.97 53.58 - -"),
     Row("OmniPT", "OmniPT (Ours)", OMNIPT, "36.15 26.68 54.62 76.56 65.30")),
    ours="OmniPT",
    notes=(Note("c", (("OmniPT", "MOTA"),), "The text says \"we achieve 75.56 MOTA\"; Table 4 prints 76.56."),))


def _preset(key: str, label: str, scale: str, printed: str) -> Row:
    return Row(key, f"{label} {scale}", "OmniPT Table 5", printed, {"preset": key, "scale": scale})


TABLE5 = Table(
    "table5", "Table 5: LVLMs and model scales",
    tuple(f"instance {m}" for m in _CAPTIONS) + ("HOTA", "IDF1", "MOTA", "RMOT HOTA"),
    (_preset("llava_next_8b", "LLaVA-NeXT (Li et al. 2024a)", "8B", "0.211 0.149 0.172 0.244 49.7 48.6 80.4 26.73"),
     _preset("internvl2_5_4b", "InternVL2.5 (Chen et al. 2024)", "4B", "0.186 0.173 0.217 0.017 46.5 48.2 77.4 25.02"),
     _preset("qwen2_vl_2b", "Qwen2-VL (Wang et al. 2024)", "2B", "0.370 0.303 0.251 0.256 53.4 51.1 84.3 33.37"),
     _preset("qwen2_5_vl_3b", "Qwen2.5-VL (Bai et al. 2025)", "3B", "0.379 0.314 0.244 0.263 53.8 51.2 87.4 34.70"),
     _preset("qwen2_5_vl_7b", "Qwen2.5-VL (Bai et al. 2025)", "7B", "0.446 0.323 0.278 0.316 54.4 52.3 90.1 34.92"),
     _preset("qwen2_5_vl_72b", "Qwen2.5-VL (Bai et al. 2025)", "72B",
             "0.512 0.342 0.353 0.482 56.4 55.4 90.2 36.15")),
    ours="qwen2_5_vl_72b",
    legend="Instance captions on BenSMOT; Tracking is DanceTrack (the 72B row equals Table 3's HOTA, IDF1 and "
           "MOTA); RMOT is Refer-KITTI-V2 HOTA (equals Table 4).")


def _stages(label: str, stages: tuple[str, ...], printed: str) -> Row:
    return Row(label, label, "OmniPT Table 6", printed, {"stages": ("stage1_format_grpo", *stages)})


TABLE6 = Table(
    "table6", "Table 6: training stages (MT: mid-training, RL: stage-4 GRPO; stage 1 runs in every row)",
    ("MOT", "RMOT", "SMOT"),
    (_stages("SFT", ("stage3_sft",), "47.38 30.37 0.40"),
     _stages("MT+SFT", ("stage2_midtrain", "stage3_sft"), "51.89 33.26 0.44"),
     _stages("SFT+RL", ("stage3_sft", "stage4_iou_grpo"), "48.63 35.46 0.41"),
     _stages("MT+SFT+RL", ("stage2_midtrain", "stage3_sft", "stage4_iou_grpo"), "56.40 36.15 0.48")),
    ours="MT+SFT+RL",
    notes=(Note("d", (("MT+SFT+RL", "SMOT"),),
                "The paper says CIDEr for SMOT without saying which; 0.48 matches Table 1's instance-caption "
                "CIDEr 0.482 (video CIDEr is 1.826), so ours is the instance-caption CIDEr."),),
    legend="MOT: DanceTrack HOTA; RMOT: Refer-KITTI-V2 HOTA; SMOT: BenSMOT CIDEr.")


def _frames(n: int, printed: str) -> Row:
    return Row(str(n), f"{n} images", "OmniPT Table 7", printed, {"frames": n})


TABLE7 = Table(
    "table7", "Table 7: images per training sample (BenSMOT)",
    ("video METEOR", "video CIDEr", "instance METEOR", "instance CIDEr", "HOTA", "MOTA"),
    (_frames(2, "0.197 0.773 0.149 0.203 52.19 72.36"),
     _frames(4, "0.258 1.027 0.199 0.271 70.60 76.42"),
     _frames(8, "0.344 1.370 0.265 0.362 73.04 77.78"),
     _frames(16, "0.418 1.774 0.336 0.457 N/A N/A"),
     _frames(32, "0.459 1.826 0.353 0.482 N/A N/A")),
    ours="32",
    notes=(Note("a", (("8", "HOTA"),), "Table 1 prints 75.04 HOTA with this row's 77.78 MOTA."),
           Note("e", (("16", "HOTA"),),
                "The implementation details train with 16 images per sample (32 for semantic tasks), yet "
                "this row marks 16-image tracking N/A (the model could not handle the input).")),
    legend="The 32-image captions equal Table 1's; N/A: \"the inability of the model to handle long inputs\".")

TABLES: dict[str, Table] = {t.key: t for t in (TABLE1, TABLE2, TABLE3, TABLE4, TABLE5, TABLE6, TABLE7)}


def table(name: str | int) -> Table:
    """``"table4"``, ``"Table 4"``, ``"4"`` or ``4``."""
    key = "table" + str(name).lower().replace("table", "").strip()
    if key not in TABLES:
        raise KeyError(f"no published table {name!r}; tables: {', '.join(TABLES)}")
    return TABLES[key]


def published(table_name: str | int, row: str, column: str) -> float | None:
    """The paper's number in one cell; None where the paper prints "-" or "N/A"."""
    return table(table_name).value(row, column)


# Vision-language SOT on TNL2K (VPTracker's comparison; its own table was not available offline).
# benchmark -> (columns, {method: {column: value}}); "source" is where each row was read.
LITERATURE: dict[str, tuple[tuple[str, ...], dict[str, dict[str, float]]]] = {
    "TNL2K": (("AUC", "P", "P_norm"), {
        "JointNLT": {"AUC": 56.9, "P": 58.1}, "UVLTrack-L": {"AUC": 64.9, "P": 69.3},
        "DUTrack-384": {"AUC": 65.6}, "MVLM": {"AUC": 66.3, "P": 71.4},
        "MambaVLT": {"AUC": 66.5, "P": 69.9}, "SUTrack": {"AUC": 67.9}}),
}
