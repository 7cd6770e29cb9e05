"""Search: classic online autofocus on a microscope — Brent, golden section, scan + fit —
and what every search shares: the :class:`Probe` that moves, snaps and scores, and the
:class:`SearchResult` every search returns (the model-guided searches of
:mod:`focuskit.singleshot` and :mod:`focuskit.fewshot` too)."""

from focuskit.search._classic import (
    GOLDEN,
    SEARCHES,
    AutofocusResult,
    BudgetSpent,
    Probe,
    SearchResult,
    Verdict,
    autofocus,
    brent_search,
    check_search_options,
    golden_section_search,
    scan_search,
    verify_final,
)

__all__ = [
    "GOLDEN",
    "SEARCHES",
    "AutofocusResult",
    "BudgetSpent",
    "Probe",
    "SearchResult",
    "Verdict",
    "autofocus",
    "brent_search",
    "check_search_options",
    "golden_section_search",
    "scan_search",
    "verify_final",
]
