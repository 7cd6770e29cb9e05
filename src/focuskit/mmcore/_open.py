"""Open a Micro-Manager core from a spec: ``mmcore:CONFIG.cfg`` or ``mmcore-sim:PRESET``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from focuskit._errors import ConfigError
from focuskit.mmcore._deps import quiet_discovery, require_pymmcore_plus
from focuskit.optics import PRESETS

CORE_FORMS = (
    "mmcore:CONFIG.cfg (a Micro-Manager configuration file)",
    "mmcore-sim:PRESET (focuskit's simulated microscope in Micro-Manager's core; PRESET one of "
    + ", ".join(PRESETS)
    + ")",
)


def load_config(path: str | Path) -> Any:
    """A Micro-Manager core (``UniMMCore``) with a configuration file loaded.

    ``UniMMCore`` loads C++ device adapters like Micro-Manager does and, in ``#py`` lines,
    Python devices. C++ adapters need a Micro-Manager installation (``mmcore install``);
    when there is none, the error says so.

    Parameters
    ----------
    path : str or Path
        The ``.cfg`` file.

    Returns
    -------
    core : UniMMCore
        The core, its devices loaded and initialized.

    Raises
    ------
    ConfigError
        If the file does not exist or Micro-Manager cannot load it (the message names
        the file, the core's reason and, without a Micro-Manager installation, the fix).
    MMCoreUnavailableError
        If pymmcore-plus is not installed.
    """
    pymmcore_plus = require_pymmcore_plus()
    from pymmcore_plus.experimental.unicore import UniMMCore

    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"{file}: no such Micro-Manager configuration file")
    with quiet_discovery():
        installation = pymmcore_plus.find_micromanager()
        core = UniMMCore()
    try:
        core.loadSystemConfiguration(str(file))
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        hint = ""
        if not installation and "adapter" in reason.lower():
            hint = (
                " — no Micro-Manager installation was found for its C++ device adapters: run "
                "`mmcore install` or set MICROMANAGER_PATH (a configuration of Python devices, "
                "`#py` lines, needs none)"
            )
        raise ConfigError(f"{file}: Micro-Manager could not load it ({reason}){hint}") from exc
    return core


def open_core(spec: str, **options: Any) -> Any:
    """The Micro-Manager core a spec names.

    Parameters
    ----------
    spec : str
        ``mmcore:CONFIG.cfg`` (:func:`load_config`) or ``mmcore-sim:PRESET``
        (:class:`~focuskit.mmcore.SimulatedCore`).
    **options
        ``mmcore-sim``: what :class:`~focuskit.mmcore.SimulatedCore` takes (``size``,
        ``seed``, ``focus_z_um``, ``drift_um_per_timepoint`` …); ``mmcore``: none.

    Returns
    -------
    core : CMMCorePlus
        The core.

    Raises
    ------
    ConfigError
        An unknown spec, options given to ``mmcore:``, or a configuration that cannot load.
    MMCoreUnavailableError
        If pymmcore-plus is not installed.
    """
    kind, sep, arg = str(spec).partition(":")
    kind, arg = kind.strip().lower(), arg.strip()
    if not sep or not arg or kind not in ("mmcore", "mmcore-sim"):
        raise ConfigError(f"unknown Micro-Manager scope {spec!r}; use " + " or ".join(CORE_FORMS))
    if kind == "mmcore":
        if options:
            raise ConfigError(
                f"{', '.join(sorted(options))} apply to mmcore-sim:, not to a configuration file"
            )
        return load_config(arg)
    if arg not in PRESETS:
        raise ConfigError(
            f"unknown preset {arg!r} for mmcore-sim:; use one of {', '.join(PRESETS)}"
        )
    from focuskit.mmcore._sim import SimulatedCore

    return SimulatedCore(arg, **options)
