"""Deep-R architecture configs (Luo et al., Fig. S9), torch-free: what a model folder's
``architecture`` holds and what the size limits derive from."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

LEVELS = 5  # downsampling blocks of the U-Net (Fig. S9): image sides are multiples of 2**LEVELS


@dataclass(frozen=True)
class DeepRConfig:
    """``channels[0]`` at full resolution, then one entry per downsampling block (6 in all)."""

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
        """Image sides the U-Net accepts are multiples of this: 2 ** (its poolings)."""
        return 2**LEVELS

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "channels": list(self.channels)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeepRConfig:
        return cls(
            channels=tuple(int(c) for c in data["channels"]),
            global_residual=bool(data.get("global_residual", True)),
        )


@dataclass(frozen=True)
class DiscriminatorConfig:
    channels: tuple[int, ...] = (16, 32, 48, 64, 96)

    def to_dict(self) -> dict[str, Any]:
        return {"channels": list(self.channels)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiscriminatorConfig:
        return cls(channels=tuple(int(c) for c in data["channels"]))
