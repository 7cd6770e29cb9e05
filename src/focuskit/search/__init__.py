"""Search: online autofocus on a microscope — classic (Brent, golden section, scan + fit)
and single-shot (a defocus predictor, verified, with a classic fallback)."""

from focuskit.search._classic import (
    GUIDED_SEARCHES,
    SEARCHES,
    AutofocusResult,
    autofocus,
    brent_search,
    golden_section_search,
    scan_search,
)
from focuskit.search._singleshot import GUARDS, singleshot_search

__all__ = [
    "GUARDS",
    "GUIDED_SEARCHES",
    "SEARCHES",
    "AutofocusResult",
    "autofocus",
    "brent_search",
    "golden_section_search",
    "scan_search",
    "singleshot_search",
]
