"""Micro-Manager: focuskit's autofocus on a real (or simulated) Micro-Manager core.

Needs the optional extra ``pip install "focuskit[mm]"`` (pymmcore-plus, useq-schema); this
package imports without it and names the fix on first use.

- :class:`MMCoreScope` — a ``CMMCorePlus`` as a focuskit :class:`~focuskit.scopes.Microscope`
  (the core's camera, a focus stage with limits, the pixel-size calibration);
- :func:`autofocus` — focus once with ``brent`` (OughtaFocus), ``gss``, ``scan``,
  ``singleshot`` or ``deepfocus`` → :class:`AutofocusResult`; :class:`Autofocuser` keeps a
  method's model loaded and has the pymmcore-plus software-autofocus registry's
  ``run(core, focus_device, settings, *, should_cancel)``;
- :class:`FocuskitEngine` — pymmcore-plus's MDA engine answering ``HardwareAutofocus``
  events with focuskit, keeping a z correction per position; :func:`run_timelapse`;
- :class:`SimulatedCore` — Micro-Manager's core with focuskit's simulator as Python
  devices (camera, focus drive with limits, XY stage, shutter), for trying all of it
  without a microscope; the devices themselves (:class:`SimCamera`, :class:`SimFocusStage`
  … over one :class:`MicroscopeSimulation`) for configuration files of your own;
  :func:`open_core` opens ``mmcore:CONFIG.cfg`` or ``mmcore-sim:PRESET``;
- :func:`calibrate_deepfocus` — the DeepFocus calibration stack taken on the microscope.
"""

from focuskit._lazy import lazy_exports
from focuskit.mmcore._autofocus import (
    KIND,
    Autofocuser,
    AutofocusResult,
    autofocus,
    calibrate_deepfocus,
)
from focuskit.mmcore._deps import (
    INSTALL_HINT,
    MMCoreUnavailableError,
    quiet_discovery,
    require_pymmcore_plus,
)
from focuskit.mmcore._open import CORE_FORMS, load_config, open_core
from focuskit.mmcore._plots import timelapse_plot
from focuskit.mmcore._scope import AutofocusCancelledError, MMCoreScope, device_limits_um
from focuskit.mmcore._timelapse import TimelapseResult, run_timelapse, timelapse_sequence

__all__ = [  # noqa: RUF022 - grouped: eager names, then the ones that need pymmcore-plus
    "CORE_FORMS",
    "INSTALL_HINT",
    "KIND",
    "AutofocusCancelledError",
    "AutofocusResult",
    "Autofocuser",
    "MMCoreScope",
    "MMCoreUnavailableError",
    "TimelapseResult",
    "autofocus",
    "calibrate_deepfocus",
    "device_limits_um",
    "load_config",
    "open_core",
    "quiet_discovery",
    "require_pymmcore_plus",
    "run_timelapse",
    "timelapse_plot",
    "timelapse_sequence",
    "AutofocusFailedError",
    "FocuskitEngine",
    "MicroscopeSimulation",
    "SimCamera",
    "SimFocusStage",
    "SimIllumination",
    "SimShutter",
    "SimXYStage",
    "SimulatedCore",
]
# These subclass pymmcore-plus's classes, so they load it (or name the fix) on first use.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "AutofocusFailedError": "focuskit.mmcore._engine",
        "FocuskitEngine": "focuskit.mmcore._engine",
        "MicroscopeSimulation": "focuskit.mmcore._sim",
        "SimCamera": "focuskit.mmcore._sim",
        "SimFocusStage": "focuskit.mmcore._sim",
        "SimIllumination": "focuskit.mmcore._sim",
        "SimShutter": "focuskit.mmcore._sim",
        "SimXYStage": "focuskit.mmcore._sim",
        "SimulatedCore": "focuskit.mmcore._sim",
    },
    __all__,
)
