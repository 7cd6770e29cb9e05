"""Search: online autofocus on a microscope (Brent, golden section, scan + fit)."""

from focuskit.search._classic import (
    SEARCHES,
    AutofocusResult,
    autofocus,
    brent_search,
    golden_section_search,
    scan_search,
)

__all__ = ["SEARCHES", "AutofocusResult", "autofocus", "brent_search", "golden_section_search", "scan_search"]
