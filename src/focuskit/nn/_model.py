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
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from focuskit._errors import ConfigError, ModelFileError
from focuskit._version import __version__
from focuskit.nn._folder import (
    CONFIG,
    WEIGHTS,
    read_model_config,
    read_weights,
    write_model_folder,
)
from focuskit.nn._loop import numpy_to_state, state_layout
from focuskit.nn._schema import ANY_OBJECT, Nullable, Section, Text, check_arrays, check_config
from focuskit.optics import OPTICS_TOLERANCE, Optics, describe_illumination

M = TypeVar("M", bound="TrainedModel")
T = TypeVar("T")

# What every model folder's config.json may hold besides its kind's own entries: the
# version that saved it and free-form provenance (how, on what it was trained).
BASE_SCHEMA = Section(
    required={"kind": Text()},
    optional={
        "focuskit_version": Text(),
        "preset": Nullable(Text()),
        "training": Nullable(ANY_OBJECT),
        "data": Nullable(ANY_OBJECT),
    },
    others=True,
)


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


def build_entry(config: dict[str, Any], name: str, build: Callable[[Any], T]) -> T:
    """Build an object from one config.json entry; a failure names the entry.

    Parameters
    ----------
    config : dict
        The parsed config.json (already checked against the model's schema).
    name : str
        The entry (``features``, ``optics`` …).
    build : callable
        ``build(config[name])`` → the object (e.g. ``Optics.from_dict``).

    Returns
    -------
    value : object
        What ``build`` returned.

    Raises
    ------
    ConfigError
        ``"name": what build refused`` (the model's ``load`` adds the file and the fix).
    """
    try:
        return build(config[name])
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f'"{name}" is not valid: {text}') from None


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
    # The config.json entries of this kind (checked before anything is built from them).
    schema: ClassVar[Section] = Section(others=True)

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

    # ----------------------------------------------------------- building from a folder
    @classmethod
    def damaged_fix(cls) -> str:
        """What to do about a damaged folder of this kind (ends the error messages).

        Returns
        -------
        fix : str
            "restore the folder …, or retrain it (`focuskit <system> train`)".
        """
        return (
            f"restore the folder as focuskit saved it, or retrain it (`focuskit {cls.cli} train`)"
        )

    @classmethod
    def load_network(
        cls,
        build: Callable[[], Any],
        tensors: dict[str, dict[str, np.ndarray]],
        role: str,
        path: Path,
    ) -> Any:
        """Build a network and load the weights saved under ``role``, after checking them.

        The network is first built on torch's ``meta`` device (no memory) to learn its
        tensors' shapes, so an architecture in config.json that the weights do not have is
        refused before anything is allocated.

        Parameters
        ----------
        build : callable
            ``build()`` → the torch module, from config.json's architecture.
        tensors : dict of str to dict of str to ndarray
            The folder's tensors grouped by prefix (:func:`group_tensors`).
        role : str
            The prefix of this network's tensors (``net``, ``generator`` …).
        path : Path
            The model folder (named in messages).

        Returns
        -------
        net : torch.nn.Module
            The network with the folder's weights.

        Raises
        ------
        ModelFileError
            A tensor missing, unexpected, of another shape or data type than the
            architecture's, or holding NaN or infinity.
        """
        import torch

        file = path / WEIGHTS
        if role not in tensors:
            raise ModelFileError(file, f'has no "{role}.*" tensors', cls.damaged_fix())
        try:
            with torch.device("meta"):
                layout = state_layout(build())
        except (RuntimeError, ValueError) as exc:  # e.g. a size torch cannot even describe
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(
                path / CONFIG, f'"architecture" cannot be built ({text})', cls.damaged_fix()
            ) from None
        check_arrays(tensors[role], layout, file, cls.damaged_fix(), prefix=f"{role}.")
        net = build()
        numpy_to_state(net, tensors[role])
        return net

    @classmethod
    def check_tensors(
        cls,
        tensors: dict[str, dict[str, np.ndarray]],
        group: str,
        expected: dict[str, tuple[tuple[int, ...], str]],
        path: Path,
    ) -> dict[str, np.ndarray]:
        """Check a group of extra arrays (e.g. ``ood.*``) and return it.

        Parameters
        ----------
        tensors : dict of str to dict of str to ndarray
            The folder's tensors grouped by prefix.
        group : str
            The prefix (``ood``).
        expected : dict of str to (shape, kind)
            Each array's shape and numpy dtype kind (``"f"``, ``"i"``).
        path : Path
            The model folder (named in messages).

        Returns
        -------
        arrays : dict of str to ndarray
            The group's arrays, by name without the prefix.

        Raises
        ------
        ModelFileError
            An array missing, unexpected, of another shape or type, or not finite.
        """
        file = path / WEIGHTS
        arrays = tensors.get(group, {})
        check_arrays(arrays, expected, file, cls.damaged_fix(), prefix=f"{group}.")
        return arrays

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
            Not a folder of this kind.
        ModelFileError
            (a ConfigError) A damaged folder: a file that cannot be read, a config.json
            entry missing, unknown or of the wrong type, or weights that do not fit the
            architecture; the message names the file, the entry and the fix.
        """
        path, config = read_model_config(spec)
        if config.get("kind") != cls.kind:
            raise ConfigError(
                f"{path}: a {config.get('kind')!r} model, not a {cls.title} — give a folder "
                f"saved by `focuskit {cls.cli} train` or a builtin:NAME of that kind"
            )
        file, fix = path / CONFIG, cls.damaged_fix()
        check_config(config, BASE_SCHEMA.merged(cls.schema), file, fix)
        groups = group_tensors(read_weights(path / WEIGHTS))
        try:
            model = cls.from_folder(path, config, groups, **options)
        except ModelFileError:
            raise
        except ConfigError as exc:  # a value the architecture or the optics refuse
            raise ModelFileError(file, str(exc), fix) from None
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"{path}: weights do not fit this focuskit's {cls.title} (saved by focuskit "
                f"{config.get('focuskit_version', '?')}: {text}) — retrain it with this version"
            ) from None
        # Tensors the model does not use mean config.json and the weights disagree (e.g. a
        # decoder's weights with "dpm": false). Folders from before 0.2 had no prefixes.
        used = set(model.networks()) | {k.partition(".")[0] for k in model.arrays()}
        unused = sorted(set(groups) - used) if used & set(groups) else []
        if unused:
            raise ModelFileError(
                path / WEIGHTS,
                f'holds "{unused[0]}.*" tensors that this {cls.title} does not use '
                "(config.json and the weights disagree)",
                fix,
            )
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
