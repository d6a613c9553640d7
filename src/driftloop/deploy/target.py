"""What a deployment renders: the served versions and their split, the project's target,
and the names every object derives from (pure, validated)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from driftloop import __version__
from driftloop.config import ProjectConfig
from driftloop.config.deploy import DEFAULT_IMAGE_REPOSITORY

__all__ = ["DeployTarget", "ServedVersions", "default_image", "resource_name", "subset_name"]

_VERSION = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class ServedVersions:
    """Who serves and how the mesh splits traffic (whole percent: Istio weights are integers)."""

    champion: str
    challenger: str | None = None
    challenger_weight: int = 0
    shadow: bool = False

    def __post_init__(self) -> None:
        for version in (self.champion, self.challenger):
            if version is not None and not _VERSION.match(version.lower()):
                raise ValueError(f"version {version!r} cannot name a Kubernetes object")
        weight = self.challenger_weight
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise ValueError(f"challenger weight must be a whole percent 0..100, got {weight!r}")
        if self.challenger is None and (weight > 0 or self.shadow):
            raise ValueError(
                f"a challenger weight ({weight}) or shadow mode needs a challenger, and the "
                "registry has none: register one with `driftloop train --on-pass challenger`"
            )
        if self.challenger == self.champion:
            raise ValueError(f"v{self.champion} cannot be champion and challenger at once")

    def aliases(self) -> tuple[tuple[str, str], ...]:
        """(alias, version) of every served version, the champion first."""
        if self.challenger is None:
            return (("champion", self.champion),)
        return (("champion", self.champion), ("challenger", self.challenger))

    def weights(self) -> dict[str, int]:
        """Percent of traffic per version, summing to 100."""
        if self.challenger is None:
            return {self.champion: 100}
        return {
            self.champion: 100 - self.challenger_weight,
            self.challenger: self.challenger_weight,
        }


@dataclass(frozen=True)
class DeployTarget:
    """Everything the renderers read: the project's config, model name, versions, image."""

    config: ProjectConfig
    model_name: str
    versions: ServedVersions
    config_yaml: str

    @property
    def name(self) -> str:
        return resource_name(self.config)

    @property
    def namespace(self) -> str:
        return self.config.deploy.namespace

    @property
    def image(self) -> str:
        return self.config.deploy.image or default_image()


def default_image() -> str:
    """The published server image of this driftloop version."""
    return f"{DEFAULT_IMAGE_REPOSITORY}:{__version__}"


def resource_name(config: ProjectConfig) -> str:
    """Base name of every object: ``deploy.name``, else the project with ``-`` for ``_``."""
    return config.deploy.name or config.project.replace("_", "-")[:50].rstrip("-")


def subset_name(version: str) -> str:
    """The Istio subset and ``version`` label of a registry version: ``v3``."""
    return f"v{version}".lower()
