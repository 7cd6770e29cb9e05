"""Deep-R architecture configs (Luo et al., Fig. S9), torch-free: what a model folder's
``architecture`` holds and what the size limits derive from."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

LEVELS = 5  # downsampling blocks of the U-Net (Fig. S9): image sides are multiples of 2**LEVELS


@dataclass(frozen=True)
class DeepRConfig:
    """Architecture of the Deep-R generator (a U-Net, Fig. S9).

    ``channels[0]`` at full resolution, then one entry per downsampling block (6 in all).

    Attributes
    ----------
    channels : tuple of int
        Widths of the full-resolution stem and of the 5 levels (6 positive entries).
    global_residual : bool
        The generator predicts the correction added to the (standardized) input.

    Raises
    ------
    ValueError
        When ``channels`` does not hold 6 positive widths.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Methods "Network structure, training and validation" and Fig. S9.
    """

    channels: tuple[int, ...] = (16, 32, 64, 96, 128, 192)
    global_residual: bool = True

    def __post_init__(self) -> None:
        if len(self.channels) != LEVELS + 1 or min(self.channels) < 1:
            raise ValueError(
                f"channels needs {LEVELS + 1} positive widths (stem + {LEVELS} levels), "
                f"got {self.channels}"
            )

    @property
    def size_multiple(self) -> int:
        """Image sides the U-Net accepts are multiples of this: 2 ** (its poolings).

        Returns
        -------
        int
            32 (pixels).
        """
        return 2**LEVELS

    def to_dict(self) -> dict[str, Any]:
        """The architecture as a JSON-able dict.

        Returns
        -------
        d : dict
        """
        return {**asdict(self), "channels": list(self.channels)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeepRConfig:
        """The architecture from :meth:`to_dict`'s form.

        Parameters
        ----------
        data : dict
            ``channels`` and, optionally, ``global_residual`` (default True).

        Returns
        -------
        config : DeepRConfig
        """
        return cls(
            channels=tuple(int(c) for c in data["channels"]),
            global_residual=bool(data.get("global_residual", True)),
        )


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Architecture of the Deep-R discriminator.

    Attributes
    ----------
    channels : tuple of int
        Widths of the strided convolution blocks, one per halving of the resolution.

    References
    ----------
    .. [1] Luo, Y., Huang, L., Rivenson, Y. & Ozcan, A. Single-shot autofocusing of
           microscopy images using deep learning. ACS Photonics 8, 625–638 (2021),
           Methods "Network structure, training and validation" and Fig. S9.
    """

    channels: tuple[int, ...] = (16, 32, 48, 64, 96)

    def to_dict(self) -> dict[str, Any]:
        """The architecture as a JSON-able dict.

        Returns
        -------
        d : dict
        """
        return {"channels": list(self.channels)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiscriminatorConfig:
        """The architecture from :meth:`to_dict`'s form.

        Parameters
        ----------
        data : dict
            ``channels``.

        Returns
        -------
        config : DiscriminatorConfig
        """
        return cls(channels=tuple(int(c) for c in data["channels"]))
