"""The base of the three model objects users call (DefocusModel, BlurScorer, Refocuser):
one way to load, save, describe and check them against a microscope.

A model folder's ``weights.safetensors`` holds each network's parameters under the
network's role (``net.*``, ``generator.*``, ``dpm.*``) and extra arrays under their own
prefix (``ood.*``); ``config.json`` says which ``kind`` of model it is, the architecture
(``from_dict``/``to_dict`` configs), the optics it was made for, and how it was trained.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from focuskit._errors import ConfigError
from focuskit._version import __version__
from focuskit.nn._folder import read_model_folder, write_model_folder
from focuskit.optics import OPTICS_TOLERANCE, Optics, describe_illumination

M = TypeVar("M", bound="TrainedModel")


def group_tensors(tensors: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Group a model folder's tensors by prefix (split at the first dot).

    ``{"net.body.0.weight": …}`` → ``{"net": {"body.0.weight": …}}``.

    Parameters
    ----------
    tensors : dict of str to ndarray
        Arrays by full name, as :func:`~focuskit.nn.read_model_folder` returns them.

    Returns
    -------
    groups : dict of str to dict of str to ndarray
        The arrays of each prefix (``net``, ``ood`` …), by the rest of their names.
    """
    groups: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        prefix, _, rest = key.partition(".")
        groups.setdefault(prefix, {})[rest] = value
    return groups


class TrainedModel:
    """A trained model of one focuskit system, kept in a model folder.

    Subclasses set :attr:`kind` (config.json's ``kind``) and :attr:`title`, and implement
    :meth:`networks`, :meth:`config` and :meth:`from_folder`; the optics check and the
    summary come for free.

    Attributes
    ----------
    optics : Optics or None
        The microscope the model was trained for (None: any, e.g. the blur CNN).
    metadata : dict
        Provenance: how and on what it was trained (config.json's other entries).
    source : str
        Where it was loaded from (``builtin:NAME`` or a folder), empty if never saved.
    path : Path or None
        The folder it was loaded from.
    saved_by : str or None
        The focuskit version that saved it.
    """

    kind: ClassVar[str] = ""
    title: ClassVar[str] = "model"  # "single-shot defocus model", … for messages
    cli: ClassVar[str] = ""  # the CLI group that trains it, for messages

    optics: Optics | None
    metadata: dict[str, Any]
    source: str
    path: Path | None = None  # the folder it was loaded from
    saved_by: str | None = None  # the focuskit version that saved it

    # --------------------------------------------------------------------- subclass hooks
    def networks(self) -> dict[str, Any]:
        """The torch modules whose parameters are saved, by role (the weight-name prefix)."""
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        """Extra arrays saved with the weights, keys ``<prefix>.<name>``."""
        return {}

    def config(self) -> dict[str, Any]:
        """What config.json holds besides ``kind``, the version and ``metadata``."""
        raise NotImplementedError

    @classmethod
    def from_folder(
        cls: type[M],
        path: Path,
        config: dict[str, Any],
        tensors: dict[str, dict[str, np.ndarray]],
        **options: Any,
    ) -> M:
        """Rebuild the model from a folder's config and its tensors grouped by prefix."""
        raise NotImplementedError

    @property
    def pixel_size_um(self) -> float | None:
        """The image pixel size the model expects (µm), None if it does not care."""
        return None if self.optics is None else self.optics.pixel_size_um

    # ------------------------------------------------------------------------- files
    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the model folder (``config.json`` + ``weights.safetensors``) atomically.

        Parameters
        ----------
        path : str or path-like
            The model folder to write.
        overwrite : bool, optional
            Replace an existing folder. Default False.

        Returns
        -------
        folder : Path
            The written folder (also the model's ``source`` if it had none).

        Raises
        ------
        ConfigError
            The folder exists and ``overwrite`` is False, or its parent does not exist.
        """
        config = {
            "kind": self.kind,
            "focuskit_version": __version__,
            **self.config(),
            **self.metadata,
        }
        tensors = {
            f"{role}.{k}": v.detach().cpu().numpy()
            for role, net in self.networks().items()
            for k, v in net.state_dict().items()
        }
        tensors.update(self.arrays())
        written = write_model_folder(path, config, tensors, overwrite=overwrite)
        self.source = self.source or str(written)
        return written

    @classmethod
    def load(cls: type[M], spec: str | os.PathLike[str], **options: Any) -> M:
        """Load ``builtin:NAME`` or a model folder saved by :meth:`save`.

        Parameters
        ----------
        spec : str or path-like
            ``builtin:NAME`` (current or old name) or a model folder.
        **options
            Passed to :meth:`from_folder` (e.g. ``num_threads``).

        Returns
        -------
        model : TrainedModel
            An instance of this class, with ``source``, ``path`` and ``saved_by`` set.

        Raises
        ------
        ConfigError
            Not a folder of this kind, or weights that do not fit the architecture.
        """
        path, config, tensors = read_model_folder(spec)
        if config.get("kind") != cls.kind:
            raise ConfigError(
                f"{path}: a {config.get('kind')!r} model, not a {cls.title} — give a folder "
                f"saved by `focuskit {cls.cli} train` or a builtin:NAME of that kind"
            )
        try:
            model = cls.from_folder(path, config, group_tensors(tensors), **options)
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"{path}: weights do not fit this focuskit's {cls.title} (saved by focuskit "
                f"{config.get('focuskit_version', '?')}: {exc}) — retrain it with this version"
            ) from None
        model.source, model.path, model.saved_by = str(spec), path, config.get("focuskit_version")
        return model

    # ------------------------------------------------------------------------- checks
    def check_optics(
        self,
        optics: Optics | None = None,
        pixel_size_um: float | None = None,
        *,
        force: bool = False,
    ) -> list[str]:
        """Refuse an image from another microscope (unless ``force``).

        One rule for every model (:meth:`Optics.mismatches`: 2 % on pixel size, NA and λ;
        the same illumination). An image with only a pixel size (a plain TIFF) is checked
        on that and the model's optics are assumed for the rest, with a note.

        Parameters
        ----------
        optics : Optics, optional
            The image's (or the microscope's) optics.
        pixel_size_um : float, optional
            The image's pixel size in µm (default: ``optics.pixel_size_um``).
        force : bool, optional
            Accept a mismatch, with a note saying so. Default False.

        Returns
        -------
        notes : list of str
            What was assumed or forced (empty when the image simply matches).

        Raises
        ------
        ConfigError
            The image has no pixel size, or does not match (without ``force``).
        """
        mine = self.optics
        if optics is not None and not isinstance(optics, Optics):
            raise ConfigError(
                "check_optics(optics, pixel_size_um): optics must be a focuskit.optics.Optics or "
                f"None, got {type(optics).__name__} — pass a pixel size as pixel_size_um="
            )
        if pixel_size_um is None and optics is not None:
            pixel_size_um = optics.pixel_size_um
        expected = self.pixel_size_um
        if pixel_size_um is None:
            if expected is None:
                return ["neither the image nor the model records a pixel size: nothing was checked"]
            raise ConfigError(
                "the image has no pixel size — pass --pixel-size UM "
                f"(the model expects {expected:g} µm)"
            )
        notes: list[str] = []
        if mine is None:
            problems = (
                []
                if expected is None
                or math.isclose(pixel_size_um, expected, rel_tol=OPTICS_TOLERANCE)
                else [f"pixel size {pixel_size_um:g} µm ≠ {expected:g} µm"]
            )
        elif optics is None:
            problems = mine.mismatches(mine, pixel_size_um=pixel_size_um)
            notes.append(
                "no optics metadata: assumed the model's "
                f"({mine.objective.magnification:g}×/{mine.na:g}, λ {mine.wavelength_um:g} µm, "
                f"{describe_illumination(mine.illumination)})"
            )
        else:
            problems = mine.mismatches(optics, pixel_size_um=pixel_size_um)
        if problems:
            message = "image does not match the model: " + "; ".join(
                p.replace("≠", "≠ the model's") for p in problems
            )
            if not force:
                raise ConfigError(
                    f"{message} — use a model trained for this microscope "
                    f"(`focuskit {self.cli} train`), or --force"
                )
            notes.append("forced: " + message)
        return notes

    # ------------------------------------------------------------------------ summary
    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters per network.

        Returns
        -------
        counts : dict of str to int
            The number of parameters of each network, by role (``net``, ``generator`` …).
        """
        return {
            role: sum(p.numel() for p in net.parameters()) for role, net in self.networks().items()
        }

    def info(self) -> dict[str, Any]:
        """What the model is, as plain JSON — what ``focuskit <system> info --json`` prints.

        Returns
        -------
        info : dict
            Kind, source (``model``), folder (``path``), the focuskit version that saved it,
            parameters per network, architecture, optics (None if any) and how it was
            trained.
        """
        optics = self.optics
        return {
            **self.metadata,
            **self.config(),
            "model": self.source,
            "path": None if self.path is None else str(self.path),
            "kind": self.kind,
            "title": self.title,
            "focuskit_version": self.saved_by,
            "parameters": self.parameter_counts(),
            "optics": None if optics is None else optics.to_dict(),
        }

    def __repr__(self) -> str:
        total = sum(self.parameter_counts().values())
        return f"{type(self).__name__}({self.source or 'unsaved'}, {total:,} parameters)"
