"""The facade's functions: what joins the layers and the three systems for a user — a
simulated stack as a :class:`~focuskit.io.FocalStack`, any model folder by its kind, and
autofocus by method name. This module sits above the systems (only the root facade and the
CLI import it)."""

from __future__ import annotations

import os
from typing import Any

from focuskit._errors import ConfigError, ModelFileError
from focuskit.io import FocalStack
from focuskit.nn import read_model_config
from focuskit.scopes import Microscope
from focuskit.search import SEARCHES, SearchResult
from focuskit.search import autofocus as classic_autofocus

# Every autofocus method focuskit.autofocus runs: the classic searches, then the models'.
AUTOFOCUS_METHODS = (*SEARCHES, "singleshot", "deepfocus")


def simulate_stack(preset: Any = "fcfnn-20x-led", **options: Any) -> FocalStack:
    """Render a focal stack of a simulated microscope as a :class:`FocalStack`.

    The stack is rendered by :func:`focuskit.simulate.simulate_stack`; the simulation's
    truth — focus, sample, seed, drift, defocus map — is kept in the stack's
    ``focus_z_um`` and ``metadata``.

    Parameters
    ----------
    preset : str or Preset, optional
        A named microscope (``focuskit presets``; OPTICS.md). Default ``"fcfnn-20x-led"``.
    **options
        ``sample``, ``size``, ``z_um``, ``photons``, ``seed``, ``tilt_deg``, ``drift`` …
        as :func:`focuskit.simulate.simulate_stack` takes them (lengths in µm).

    Returns
    -------
    stack : FocalStack
        The rendered planes with their z positions (µm), pixel size (µm), optics, true
        focus ``focus_z_um`` (µm) and the simulation's record in ``metadata``.
    """
    from focuskit.simulate import simulate_stack as render

    return FocalStack.from_simulation(render(preset, **options))


def _model_classes() -> dict[str, Any]:
    from focuskit.fewshot import BlurScorer
    from focuskit.refocus import Refocuser
    from focuskit.singleshot import DefocusModel

    return {cls.kind: cls for cls in (DefocusModel, BlurScorer, Refocuser)}


def load_model(spec: str | os.PathLike[str], **options: Any) -> Any:
    """Load any focuskit model — ``builtin:NAME`` or a model folder — as its system's object.

    The class is chosen by the folder's ``kind``: :class:`~focuskit.singleshot.DefocusModel`,
    :class:`~focuskit.fewshot.BlurScorer` or :class:`~focuskit.refocus.Refocuser`.

    Parameters
    ----------
    spec : str or path-like
        ``builtin:singleshot-20x-led``, ``builtin:fewshot-widefield``,
        ``builtin:refocus-40x-fluor`` (or their old names), or a folder.
    **options
        Passed to the class's ``load`` (e.g. ``num_threads``).

    Returns
    -------
    model : DefocusModel, BlurScorer or Refocuser
        The loaded model, with ``source`` (``spec``) and ``path`` (its folder) set.

    Raises
    ------
    ConfigError
        Not a model folder.
    ModelFileError
        (a ConfigError) A damaged folder, or one of a kind this focuskit does not know;
        the message names the file, the entry and the fix.
    """
    path, config = read_model_config(spec)
    classes = _model_classes()
    kind = config.get("kind")
    cls = classes.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ModelFileError(
            path / "config.json",
            'has no "kind" entry' if kind is None else f"unknown model kind {kind!r}",
            f"give a focuskit model folder (this focuskit reads {', '.join(sorted(classes))})",
        )
    return cls.load(spec, **options)


def builtin_models_info() -> list[dict[str, Any]]:
    """One summary per bundled model (what ``focuskit models --json`` prints).

    Each summary gives its name, the name it had before focuskit 0.2, the system and kind,
    trainable parameters, the microscope it is for and the command that trained it.

    Returns
    -------
    summaries : list of dict
        One JSON-able dict per bundled model, keys ``name`` (``builtin:NAME``),
        ``old_name`` (``builtin:OLD`` or None), ``system``, ``kind``, ``class``,
        ``parameters`` (trainable, all networks), ``microscope`` (magnification/NA, λ in
        µm and illumination, or "any") and ``trained_by`` (the command, or None).
    """
    from focuskit.nn import BUILTIN_ALIASES, builtin_models
    from focuskit.optics import describe_illumination

    old_names = {new: old for old, new in BUILTIN_ALIASES.items()}
    out = []
    for name in builtin_models():
        model = load_model(f"builtin:{name}")
        optics = model.optics
        microscope = (
            "any (calibrated per objective)"
            if optics is None
            else f"{optics.objective.magnification:g}×/{optics.na:g}, "
            f"λ {optics.wavelength_um:g} µm, {describe_illumination(optics.illumination)}"
        )
        training = model.metadata.get("training") or {}
        out.append(
            {
                "name": f"builtin:{name}",
                "old_name": f"builtin:{old_names[name]}" if name in old_names else None,
                "system": type(model).__module__.split(".")[1],
                "kind": model.kind,
                "class": type(model).__name__,
                "parameters": sum(model.parameter_counts().values()),
                "microscope": microscope,
                "trained_by": training.get("command"),
            }
        )
    return out


def autofocus(
    scope: Microscope,
    method: str = "brent",
    measure: str | None = None,
    *,
    model: Any = None,
    calibration: Any = None,
    predict: Any = None,
    score_map: Any = None,
    **settings: Any,
) -> SearchResult:
    """Focus a microscope by method name; every method returns a :class:`SearchResult`.

    Parameters
    ----------
    scope : Microscope
        A simulated, replayed or real microscope (``focuskit.scopes``).
    method : str, optional
        ``brent`` (default), ``gss``, ``scan`` (classic, with ``measure``); ``singleshot``
        (a :class:`~focuskit.singleshot.DefocusModel`, or any ``predict``); ``deepfocus``
        (a :class:`~focuskit.fewshot.BlurScorer`, or any ``score_map``, with the
        objective's ``calibration``).
    measure : str, optional
        The focus measure of classic searches (and of the single-shot trace and fallback).
        Default :func:`focuskit.measures.default_measure` of the scope's optics.
    model : model object, str or path-like, optional
        A model object or ``builtin:NAME`` / folder for the model-guided methods.
    calibration : BlurCalibration or path-like, optional
        ``deepfocus``: a :class:`~focuskit.fewshot.BlurCalibration` or its JSON path.
    predict, score_map : callable, optional
        A plain predictor / blur mapper instead of a model (no optics check).
    **settings
        The search's own settings (``range_um``, ``tolerance_um``, ``max_images``, …,
        lengths in µm; for ``singleshot`` ``range_um`` is the fallback's range).

    Returns
    -------
    result : SearchResult
        Where the search finished (``z_final_um``, µm), whether it succeeded, the images
        it took and its (z, score) trace.

    Raises
    ------
    ConfigError
        An unknown method, or what a method needs is missing.
    """
    if measure is None:
        from focuskit.measures import default_measure

        measure = default_measure(scope.optics)
    if method in SEARCHES:
        return classic_autofocus(scope, method, measure, **settings)
    if method == "singleshot":
        from focuskit.singleshot import DefocusModel, singleshot_search

        range_um = settings.pop("range_um", None)
        if range_um is not None:
            settings.setdefault("fallback_range_um", range_um)
        if predict is not None:
            return singleshot_search(scope, predict, measure=measure, **settings)
        if model is None:
            raise ConfigError(
                "method 'singleshot' needs predict= or model= (a DefocusModel, or "
                "'builtin:singleshot-20x-led' / a model folder)"
            )
        chosen = model if isinstance(model, DefocusModel) else DefocusModel.load(model)
        return chosen.autofocus(scope, measure=measure, **settings)
    if method == "deepfocus":
        from focuskit.fewshot import BlurScorer, deepfocus_search

        if score_map is None and model is None:
            raise ConfigError(
                "method 'deepfocus' needs score_map= or model= (a BlurScorer, or "
                "'builtin:fewshot-widefield' / a model folder)"
            )
        if calibration is None:
            raise ConfigError(
                "method 'deepfocus' needs calibration= (a BlurCalibration or its JSON path; make "
                "one with `focuskit fewshot calibrate STACK -o CALIB.json`)"
            )
        if score_map is not None:
            return deepfocus_search(scope, score_map=score_map, calibration=calibration, **settings)
        scorer = model if isinstance(model, BlurScorer) else BlurScorer.load(model)
        return scorer.autofocus(scope, calibration, **settings)
    raise ConfigError(
        f"unknown autofocus method {method!r}; use one of {', '.join(AUTOFOCUS_METHODS)}"
    )
