"""The loop's view of the champion at a check: its trailing window's signals, merged from
the stored days (one day store kept open, so each check folds only the new segments)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from driftloop.errors import DataError
from driftloop.features.layout import project_layout
from driftloop.loop.policy import Signals, accuracy_lag_days, signals_from
from driftloop.monitoring.assess import ACCURACY_METRICS, VersionAssessment
from driftloop.monitoring.daystore import DayStore
from driftloop.monitoring.monitor import VersionInfo, monitor_store, open_day_store, registry_info
from driftloop.project import Project
from driftloop.registry.base import CHAMPION, ModelRegistry
from driftloop.statistics.profile import ReferenceProfile

__all__ = ["ChampionAssessor", "newest_event_day"]


def newest_event_day(project: Project) -> date | None:
    """The newest day the project's raw events hold (None when they hold none)."""
    layout = project_layout(project)
    days = layout.event_days(layout.read_events())
    return days.max() if len(days) else None


class ChampionAssessor:
    """The champion's signals at a check, for ``registry``'s model in ``project``."""

    def __init__(self, project: Project, registry: ModelRegistry) -> None:
        self.project = project
        self.registry = registry
        self.model = registry.model_name
        self._days: DayStore | None = None  # opened once: each check folds only new segments
        self._info: dict[str, tuple[ReferenceProfile, float, float]] = {}

    def assess(self, now: datetime) -> Signals:
        """The champion's trailing window of ``monitoring.window_days`` event days to now;
        accuracy from a window as long ending earlier when labels come too late for it."""
        mon = self.project.config.monitoring
        days = mon.window_days
        end = now.date() + timedelta(days=1)
        window = (end - timedelta(days=days), end)
        champion = self.registry.alias(CHAMPION)
        if champion is None:
            return signals_from(now, window, None)
        found = self._champion_window(champion.version, window)
        lag = accuracy_lag_days(days, self.project.config.labels.delay_days, mon.min_label_coverage)
        if not lag or found is None:
            return signals_from(now, window, found)
        earlier = (window[0] - timedelta(days=lag), window[1] - timedelta(days=lag))
        return signals_from(
            now, window, found, (earlier, self._champion_window(champion.version, earlier))
        )

    def _champion_window(self, version: str, window: tuple[date, date]) -> VersionAssessment | None:
        days = (window[1] - window[0]).days
        if self._days is None:
            self._days = open_day_store(self.project, project_layout(self.project).entity_keys)
        try:
            report = monitor_store(
                self._days,
                self.model,
                self._version_info,
                self.project.config.monitoring,
                self._metric,
                since=window[0],
                until=window[1],
                window_days=days,
            )
        except DataError:  # nothing logged yet
            return None
        latest = report.latest
        if latest is None:
            return None
        return next((v for v in latest.versions if v.version == version), None)

    @property
    def _metric(self) -> str:
        return ACCURACY_METRICS[self.project.config.training.task]

    def _version_info(self, version: str) -> tuple[ReferenceProfile, float, float]:
        """A version's reference profile and holdout values, read from the registry once:
        a registered version's artifacts and metrics do not change."""
        if version not in self._info:
            info: VersionInfo = registry_info(self.registry, self._metric)
            self._info[version] = info(version)
        return self._info[version]
