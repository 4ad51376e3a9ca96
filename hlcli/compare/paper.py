"""The HyperLoader paper's published results (Tables 3 and 4), as data for ``hl compare --paper``.

Source: :data:`CITATION`. Every figure is copied exactly as printed (micro-averaged seqeval F1 on
the full test split, 0-1 scale); ``average`` is the paper's own Average row, not recomputed. The
bracketed parameter counts are kept as printed ("229M", "1.8M"); ``single_task`` is the paper's
♣ (one model per dataset). The paper's bold marks are *not* copied: in Table 3 Movie it bolds
HyperFormer's 0.8788 although UniPELT-T5's 0.8839 is higher, so callers recompute the best.
tests/test_paper.py checks every value here against the transcription in ``../shared/paper``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CITATION = (
    "Jesus-German Ortiz-Barajas, Helena Gómez-Adorno, Thamar Solorio. 2024. HyperLoader: Integrating "
    "Hypernetwork-Based LoRA and Adapter Layers into Multi-Task Transformers for Sequence Labelling. "
    "arXiv:2407.01411 (Table 3: full training data; Table 4: 10 % and 20 % of the training data)."
)
RELEASED_RUNS_SOURCE = (
    "jgermanob/hyperformer, hyperformer/outputs/hyperformer_alqvca_v2_{10,20,50}++/test_results.json "
    "(the authors' released HyperLoader runs, t5-base; the 50 % run is not in the paper)"
)
TABLE_FOR_FRACTION = {1.0: "Table 3", 0.1: "Table 4", 0.2: "Table 4"}
# The paper's row order (its Tables 3 and 4) and the key of its own Average row.
PAPER_TASK_ORDER = ("movietrivia", "movie", "restaurant", "atis", "snips", "mtop", "mtod")
AVERAGE_KEY = "average"
SINGLE_TASK_MARK = "♣"  # as printed in the paper
# hlcli method (and backbone family) -> the paper's column; UniPELT ran on both backbones.
PAPER_COLUMN_FOR = {
    ("hyperloader", "T5"): "hyperloader",
    ("hyperformer", "T5"): "hyperformer",
    ("hyperdecoder", "T5"): "hyperdecoder",
    ("unipelt", "T5"): "unipelt-t5",
    ("unipelt", "BERT"): "unipelt-bert",
}
# The backbones the paper ran: a comparison on these can be read cell by cell against it.
PAPER_BACKBONES = {"t5-base": "T5", "bert-base-uncased": "BERT", "bert-base-cased": "BERT"}


@dataclass(frozen=True)
class PublishedColumn:
    """One method's column of a published table."""

    method: str = field(metadata={"help": "Paper column key: an hlcli method, or unipelt-t5 / unipelt-bert."})
    label: str = field(metadata={"help": "Column name as printed in the paper."})
    backbone: str = field(metadata={"help": "T5 or BERT (the paper's backbone row)."})
    total: str = field(metadata={"help": "Total parameters as printed in the header's brackets, e.g. '229M'."})
    trainable: str = field(metadata={"help": "Trainable parameters as printed in the header's brackets, e.g. '6M'."})
    single_task: bool = field(metadata={"help": "The paper's ♣: one model per dataset."})
    f1: dict[str, float] = field(metadata={"help": "hlcli task name or 'average' -> micro-F1 (0-1) as printed."})

    @property
    def header(self) -> str:
        mark = SINGLE_TASK_MARK if self.single_task else ""
        return f"{self.label}{mark} ({self.backbone}) [{self.total}/{self.trainable}]"


def _column(method, label, backbone, total, trainable, single_task, f1) -> PublishedColumn:
    return PublishedColumn(method, label, backbone, total, trainable, single_task, f1)


# fraction -> the paper's columns at that fraction, in its column order.
TABLES: dict[float, list[PublishedColumn]] = {
    1.0: [  # Table 3
        _column("unipelt-bert", "UniPELT", "BERT", "110M", "1.8M", True, {
            "movietrivia": 0.6873, "movie": 0.8500, "restaurant": 0.7689, "atis": 0.9446, "snips": 0.9238,
            "mtop": 0.8432, "mtod": 0.9580, "average": 0.8537}),
        _column("unipelt-t5", "UniPELT", "T5", "220M", "4.5M", True, {
            "movietrivia": 0.7210, "movie": 0.8839, "restaurant": 0.8039, "atis": 0.9611, "snips": 0.9478,
            "mtop": 0.8374, "mtod": 0.9627, "average": 0.8740}),
        _column("hyperformer", "HyperFormer", "T5", "228M", "5M", False, {
            "movietrivia": 0.7295, "movie": 0.8788, "restaurant": 0.8136, "atis": 0.9595, "snips": 0.9462,
            "mtop": 0.8638, "mtod": 0.9648, "average": 0.8795}),
        _column("hyperloader", "HyperLoader", "T5", "229M", "6M", False, {
            "movietrivia": 0.7140, "movie": 0.8745, "restaurant": 0.7965, "atis": 0.9599, "snips": 0.9592,
            "mtop": 0.8983, "mtod": 0.9652, "average": 0.8811}),
        _column("hyperdecoder", "Hyperdecoder", "T5", "239M", "16M", False, {
            "movietrivia": 0.7072, "movie": 0.8700, "restaurant": 0.7891, "atis": 0.9519, "snips": 0.9377,
            "mtop": 0.8752, "mtod": 0.9649, "average": 0.8709}),
    ],
    0.1: [  # Table 4, 10 %
        _column("unipelt-bert", "UniPELT", "BERT", "110M", "1.8M", True, {
            "movietrivia": 0.5152, "movie": 0.7809, "restaurant": 0.5907, "atis": 0.5901, "snips": 0.7398,
            "mtop": 0.6048, "mtod": 0.9351, "average": 0.6795}),
        _column("unipelt-t5", "UniPELT", "T5", "220M", "4.5M", True, {
            "movietrivia": 0.6717, "movie": 0.8244, "restaurant": 0.7049, "atis": 0.8919, "snips": 0.8991,
            "mtop": 0.7467, "mtod": 0.9436, "average": 0.8117}),
        _column("hyperformer", "HyperFormer", "T5", "228M", "5M", False, {
            "movietrivia": 0.6589, "movie": 0.8311, "restaurant": 0.7389, "atis": 0.9162, "snips": 0.8943,
            "mtop": 0.7976, "mtod": 0.9467, "average": 0.8262}),
        _column("hyperloader", "HyperLoader", "T5", "229M", "6M", False, {
            "movietrivia": 0.6695, "movie": 0.8368, "restaurant": 0.7499, "atis": 0.9172, "snips": 0.8970,
            "mtop": 0.8114, "mtod": 0.9500, "average": 0.8331}),
        _column("hyperdecoder", "Hyperdecoder", "T5", "239M", "16M", False, {
            "movietrivia": 0.6597, "movie": 0.8202, "restaurant": 0.7216, "atis": 0.9193, "snips": 0.8727,
            "mtop": 0.7760, "mtod": 0.9436, "average": 0.8162}),
    ],
    0.2: [  # Table 4, 20 %
        _column("unipelt-bert", "UniPELT", "BERT", "110M", "1.8M", True, {
            "movietrivia": 0.6105, "movie": 0.8047, "restaurant": 0.7114, "atis": 0.8048, "snips": 0.8474,
            "mtop": 0.7052, "mtod": 0.9433, "average": 0.7753}),
        _column("unipelt-t5", "UniPELT", "T5", "220M", "4.5M", True, {
            "movietrivia": 0.7036, "movie": 0.8444, "restaurant": 0.7562, "atis": 0.9281, "snips": 0.9235,
            "mtop": 0.7863, "mtod": 0.9522, "average": 0.8420}),
        _column("hyperformer", "HyperFormer", "T5", "228M", "5M", False, {
            "movietrivia": 0.6729, "movie": 0.8407, "restaurant": 0.7517, "atis": 0.9382, "snips": 0.9252,
            "mtop": 0.8399, "mtod": 0.9543, "average": 0.8461}),
        _column("hyperloader", "HyperLoader", "T5", "229M", "6M", False, {
            "movietrivia": 0.6863, "movie": 0.8546, "restaurant": 0.7601, "atis": 0.9401, "snips": 0.9238,
            "mtop": 0.8474, "mtod": 0.9541, "average": 0.8523}),
        _column("hyperdecoder", "Hyperdecoder", "T5", "239M", "16M", False, {
            "movietrivia": 0.6767, "movie": 0.8377, "restaurant": 0.7401, "atis": 0.9311, "snips": 0.9044,
            "mtop": 0.8140, "mtod": 0.9529, "average": 0.8367}),
    ],
}

# The authors' released HyperLoader runs (:data:`RELEASED_RUNS_SOURCE`): fraction -> task -> test
# micro-F1 at full precision. The 0.1 and 0.2 runs are Table 4's HyperLoader column, unrounded.
RELEASED_RUNS: dict[float, dict[str, float]] = {
    0.1: {
        "movietrivia": 0.6694685228964189, "movie": 0.8367974648149874, "restaurant": 0.7499217527386542,
        "atis": 0.917224374779852, "snips": 0.8969933184855234, "mtod": 0.9499796112545875,
        "mtop": 0.8113860069167331,
    },
    0.2: {
        "movietrivia": 0.6862951279355065, "movie": 0.8546132339235788, "restaurant": 0.7600563468461419,
        "atis": 0.9401408450704226, "snips": 0.9237618252643294, "mtod": 0.9540847561390382,
        "mtop": 0.8473989209351895,
    },
    0.5: {
        "movietrivia": 0.6858341344053133, "movie": 0.8696057414484109, "restaurant": 0.7833070866141731,
        "atis": 0.952163207879001, "snips": 0.9414715719063546, "mtod": 0.9608129694456717,
        "mtop": 0.8747255671612001,
    },
}


def published(fraction: float) -> list[PublishedColumn]:
    """The paper's columns for ``fraction`` (empty for a fraction the paper did not table)."""
    return TABLES.get(fraction, [])


def paper_column(method: str, model: str | None, fraction: float) -> PublishedColumn | None:
    """The published column to read ``method`` on backbone ``model`` against, if the paper ran it."""
    family = PAPER_BACKBONES.get(model or "")
    key = PAPER_COLUMN_FOR.get((method, family)) if family else None
    return next((c for c in published(fraction) if c.method == key), None)


def unavailable_message(fractions) -> str:
    shown = ", ".join(f"{f:g}" for f in sorted(TABLES))
    asked = ", ".join(f"{f:g}" for f in fractions)
    return f"the paper tables fractions {shown} only (asked for {asked}); see {CITATION}"
