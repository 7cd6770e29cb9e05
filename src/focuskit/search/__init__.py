"""Search: online autofocus on a microscope — classic (Brent, golden section, scan + fit),
single-shot (a defocus predictor, verified, with a classic fallback) and few-shot
DeepFocus (a few blur maps matched to a calibrated blur curve)."""

from focuskit.search._classic import (
    GUIDED_SEARCHES,
    SEARCHES,
    AutofocusResult,
    autofocus,
    brent_search,
    golden_section_search,
    scan_search,
)
from focuskit.search._fewshot import PAPER_SETTINGS, deepfocus_search
from focuskit.search._singleshot import GUARDS, singleshot_search

__all__ = [
    "PAPER_SETTINGS",
    "GUARDS",
    "GUIDED_SEARCHES",
    "SEARCHES",
    "AutofocusResult",
    "autofocus",
    "brent_search",
    "deepfocus_search",
    "golden_section_search",
    "scan_search",
    "singleshot_search",
]
