"""The project's feature store: Feast with a DuckDB offline store and an online store.

Every Feast call goes through here and its failures become FeatureStoreError.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from driftloop.errors import DataError, FeatureStoreError
from driftloop.features.engineering import TIMESTAMP_COLUMN
from driftloop.features.feast_import import import_feast
from driftloop.features.layout import ProjectLayout, project_layout
from driftloop.features.online_write import OfflineRows, push_rows, push_views, write_interval
from driftloop.features.pit_join import join_in_memory
from driftloop.project import Project, atomic_write_parquet

__all__ = ["ApplyResult", "FeatureStore", "OnlineRows", "utc_midnight"]


@dataclass(frozen=True)
class ApplyResult:
    """What ``apply`` wrote."""

    rows: int
    entities: int
    first_day: datetime
    last_day: datetime
    views: tuple[str, ...]


@dataclass(frozen=True)
class OnlineRows:
    """Feature rows read from the online store, with the time each row is valid from."""

    frame: pd.DataFrame  # entity keys, TIMESTAMP_COLUMN, one column per stored feature
    missing: tuple[tuple[Any, ...], ...]  # entities the online store has no row for


@contextmanager
def _feast_errors(action: str, quiet: bool = True) -> Iterator[None]:
    """Translate Feast failures, keep its progress prints off our stdout (--json).

    ``quiet=False`` for calls that print nothing and run on server threads: swapping
    ``sys.stdout`` is process-wide, and two threads interleaving the swap leave it
    pointing at one of their buffers for good."""
    try:
        with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
            yield
    except (DataError, FeatureStoreError):
        raise
    except Exception as exc:  # Feast raises many unrelated types; name the step that failed
        # A Redis connection string may carry a password: never repeat it.
        said = re.sub(r"(?i)(password=)[^,\s'\"]*", r"\1***", str(exc))
        raise FeatureStoreError(f"feature store could not {action}: {said}") from exc


class FeatureStore:
    """The project's features: compute, apply, materialize, read offline and online."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.layout: ProjectLayout = project_layout(project)
        self._store: Any = None
        self._opening = threading.Lock()  # server threads may all open Feast at once
        self._service: Any = None
        # Online rows by entity, valid while the SQLite online store's files are unchanged
        # (SQLite only: see caches_online_rows).
        self._online_cache: dict[tuple[Any, ...], dict[Any, Any]] = {}
        self._online_stamp: tuple[int, ...] | None = None
        self._stamp_paths: tuple[str, ...] | None = None  # stat()ed per lookup: built once
        self._offline: dict[str, OfflineRows] = {}  # offline tables, for incremental writes
        self._pushed: dict[str, list[Any] | None] = {}  # push source -> its feature views

    def _feast(self) -> Any:
        """Feast's store, opened once; published only once its sources are repointed, so a
        concurrent lookup never reads the registry while ``_repoint_sources`` rewrites it
        (a feature service is deleted and re-added there: the lookup saw it missing)."""
        if self._store is not None:
            return self._store
        with self._opening:
            if self._store is None:
                self._store = self._open_feast()
        return self._store

    def _open_feast(self) -> Any:
        """Feast's store for this project, its file sources pointing at this folder."""
        import_feast()
        from feast import FeatureStore as FeastStore
        from feast import RepoConfig
        from feast.infra.offline_stores.duckdb import DuckDBOfflineStoreConfig

        self.project.state_dir.mkdir(parents=True, exist_ok=True)
        with _feast_errors("configure the online store"):
            online_store = self._online_store_config()
        config = RepoConfig(
            project=self.project.config.project,
            registry=str(self.project.feast_registry_path),
            provider="local",
            offline_store=DuckDBOfflineStoreConfig(),
            online_store=online_store,
            entity_key_serialization_version=3,
        )
        with _feast_errors("open its registry"):
            store = FeastStore(config=config, repo_path=str(self.project.root))
            self._repoint_sources(store)
        return store

    def _repoint_sources(self, store: Any) -> None:
        """Feast's registry holds each file source's absolute path: in a moved or copied
        project they name the old folder (another project's tables, or none). Re-register
        the definitions, whose paths are this folder's, when a recorded path differs."""
        from feast import FileSource

        recorded = {s.name: s.path for s in store.list_data_sources() if isinstance(s, FileSource)}
        wanted = {d.name: d.path for d in self.definitions() if isinstance(d, FileSource)}
        if any(recorded.get(name, path) != path for name, path in wanted.items()):
            store.apply(self.definitions())

    def _online_store_config(self) -> Any:
        """Feast's config for the online store that ``features.online_store`` names."""
        cfg = self.project.config.features.online_store
        if cfg.type == "sqlite":
            from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig

            return SqliteOnlineStoreConfig(path=str(self.project.root / cfg.path))
        from feast.infra.online_stores.redis import RedisOnlineStoreConfig

        return RedisOnlineStoreConfig(
            connection_string=cfg.connection_string, key_ttl_seconds=cfg.key_ttl_seconds
        )

    @property
    def caches_online_rows(self) -> bool:
        """Online rows are cached only for the SQLite store, whose files show every write;
        a Redis store changes without a trace here, so every lookup reads it."""
        return self.project.config.features.online_store.type == "sqlite"

    @property
    def keys(self) -> tuple[str, ...]:
        """The entity join keys."""
        return tuple(self.layout.entity_keys)

    @property
    def stored_features(self) -> tuple[str, ...]:
        """The features Feast holds (a table project's event features are not stored)."""
        return tuple(n for names in self.layout.views().values() for n in names)

    def definitions(self) -> list[Any]:
        return self.layout.definitions()

    def compute(self, entities: Sequence[tuple[Any, ...]] | None = None) -> pd.DataFrame:
        """Feature rows from the raw events, through the one feature function."""
        return self.layout.feature_rows(self.layout.read_events(), entities)

    @property
    def has_activity(self) -> bool:
        """Real-time features whose state the server updates at each event."""
        return bool(self.layout.activity_state)

    def apply(self) -> ApplyResult:
        """Compute the offline feature table and register the definitions with Feast."""
        events = self.layout.read_events()
        features = self.layout.feature_rows(events)
        for path, table in self.layout.side_tables(events).items():
            atomic_write_parquet(table, path)
        atomic_write_parquet(features, self.layout.offline_path)
        with _feast_errors("apply the feature definitions"):
            self._feast().apply(self.definitions())
        self._service = None
        self._pushed = {}
        return ApplyResult(
            rows=len(features),
            entities=int(features.groupby(list(self.keys)).ngroups),
            first_day=features[TIMESTAMP_COLUMN].min().to_pydatetime(),
            last_day=features[TIMESTAMP_COLUMN].max().to_pydatetime(),
            views=tuple(self.layout.views()),
        )

    def _require_applied(self) -> None:
        if not self.layout.offline_path.is_file():
            raise DataError(
                f"no offline feature table at {self.layout.offline_path}: "
                "run `driftloop features apply` first"
            )

    def materialize(self, until: datetime, since: datetime | None = None) -> None:
        """Load the rows valid at ``until`` into the online store: with ``since``, only the
        rows stamped from ``since`` on, written straight (features/online_write.py)."""
        self._require_applied()
        if since is not None:
            with _feast_errors("write new rows to the online store"):
                if write_interval(self._feast(), self._offline, since, until):
                    return
        start = since or until - timedelta(days=self.project.config.features.ttl_days)
        with _feast_errors("materialize to the online store"):
            # Feast's window excludes its end; one microsecond takes in a row stamped at `until`.
            self._feast().materialize(start_date=start, end_date=until + timedelta(microseconds=1))

    def historical(self, entity_df: pd.DataFrame) -> pd.DataFrame:
        """Point-in-time join: for each entity row, the features valid at its timestamp."""
        self._require_applied()
        missing = [c for c in (*self.keys, TIMESTAMP_COLUMN) if c not in entity_df.columns]
        if missing:
            raise DataError(f"entity rows lack column(s) {missing}")
        feast = self._feast()
        with _feast_errors("join historical features"):
            service = feast.get_feature_service(self.layout.feature_service)
            joined = join_in_memory(feast, service, entity_df, TIMESTAMP_COLUMN, self._offline)
            if joined is None:  # not a plain service: Feast's own retrieval
                joined = _feast_historical(feast, service, entity_df)
        joined = self.layout.with_realtime(joined)
        order = [*entity_df.columns, *[c for c in self.layout.all_features if c not in entity_df]]
        return joined.sort_values([TIMESTAMP_COLUMN, *self.keys], kind="stable")[order].reset_index(
            drop=True
        )

    def _feast_historical(self, entity_df: pd.DataFrame) -> pd.DataFrame:
        """Feast's historical retrieval of the feature service (a DuckDB query), as the
        in-memory join must answer it (tests/features/test_pit_join.py)."""
        feast = self._feast()
        with _feast_errors("join historical features"):
            service = feast.get_feature_service(self.layout.feature_service)
            return _feast_historical(feast, service, entity_df)

    def _store_stamp(self) -> tuple[int, ...]:
        """Size and mtime of the online store's files: any write (a materialize, another
        process's ingestion) changes them."""
        if self._stamp_paths is None:
            base = self.project.online_store_path
            self._stamp_paths = (
                () if base is None else (str(base), str(base.with_name(base.name + "-wal")))
            )
        stamp: list[int] = []
        for path in self._stamp_paths:  # none for a store that is not a file: never cached
            try:
                st = os.stat(path)
            except FileNotFoundError:
                stamp += [0, 0]
            else:
                stamp += [st.st_mtime_ns, st.st_size]
        return tuple(stamp)

    def online_stamp(self) -> tuple[int, ...] | None:
        """What cached online rows are valid for (compare before and after a read), or
        None when the store's rows are never cached (see caches_online_rows)."""
        return self._store_stamp() if self.caches_online_rows else None

    def online(self, entities: Sequence[tuple[Any, ...]]) -> OnlineRows:
        """The online store's current row for each entity.

        Rows read before are served from memory while the SQLite store's files are
        unchanged: Feast's lookup costs about 8 ms a call, the cached row tens of
        microseconds. Other stores are read on every call.
        """
        if not entities:
            raise DataError(f"no entities to look up: pass at least one ({', '.join(self.keys)})")
        if not self.caches_online_rows:
            return self._online_lookup(entities)
        stamp = self._store_stamp()
        if stamp != self._online_stamp:
            self._online_cache = {}
            self._online_stamp = stamp
        cache = self._online_cache
        if all(tuple(e) in cache for e in entities):
            frame = pd.DataFrame([cache[tuple(e)] for e in entities])
            return OnlineRows(frame=frame, missing=())
        found = self._online_lookup(entities)
        if self._store_stamp() == stamp:  # nothing wrote while we read
            for row in found.frame.to_dict("records"):
                cache[tuple(row[k] for k in self.keys)] = dict(row)
        return found

    def _online_lookup(self, entities: Sequence[tuple[Any, ...]]) -> OnlineRows:
        feast = self._feast()
        rows = [dict(zip(self.keys, e, strict=True)) for e in entities]
        with _feast_errors("read the online store", quiet=False):
            if self._service is None:  # a registry read per lookup cost 1.2 ms
                self._service = feast.get_feature_service(self.layout.feature_service)
            response = feast.get_online_features(features=self._service, entity_rows=rows)
            values: dict[str, list[Any]] = response.to_dict(include_event_timestamps=True)
        return _online_frame(self.keys, rows, self.stored_features, values, entities)

    def check_reachable(self) -> None:
        """FeatureStoreError unless the online store answers a lookup (of an entity that
        need not exist), past any cached rows."""
        types = self.layout.entity_types
        self._online_lookup([tuple("" if types[k] == "string" else -1 for k in self.keys)])

    def push_activity(self, source: str, rows: pd.DataFrame) -> None:
        """Push updated activity states (keys, event_timestamp, state) through the push
        source ``source`` to the online store."""
        from feast.data_source import PushMode

        feast = self._feast()
        with _feast_errors("push activity to the online store", quiet=False):
            if source not in self._pushed:  # the registry's views, looked up once
                self._pushed[source] = push_views(feast, source)
            views = self._pushed[source]
            if views is None:
                feast.push(source, rows, to=PushMode.ONLINE)
            else:
                push_rows(feast, views, rows)

    def online_view(self, entities: Sequence[tuple[Any, ...]], view: str) -> OnlineRows:
        """One view's online rows (its own feature time), read past the cache."""
        feast = self._feast()
        names = self.layout.views()[view]
        rows = [dict(zip(self.keys, e, strict=True)) for e in entities]
        with _feast_errors("read the online store", quiet=False):
            response = feast.get_online_features(
                features=[f"{view}:{n}" for n in names], entity_rows=rows
            )
            values: dict[str, list[Any]] = response.to_dict(include_event_timestamps=True)
        return _online_frame(self.keys, rows, names, values, entities)

    def write_online(self, rows: pd.DataFrame) -> None:
        """Write feature rows straight to the online store (ingestion, repair, tests): to
        every view whose features the rows carry."""
        feast = self._feast()
        views = [v for v, names in self.layout.views().items() if set(names) <= set(rows.columns)]
        if not views:
            raise DataError(f"rows carry no view's features {self.layout.views()}")
        with _feast_errors("write to the online store"):
            for view in views:
                feast.write_to_online_store(feature_view_name=view, df=rows)

    def definitions_digest(self) -> str:
        """SHA-256 of the applied feature view specs, as Feast's registry holds them."""
        import hashlib

        self._require_applied()
        feast = self._feast()
        digest = hashlib.sha256()
        with _feast_errors("read the feature registry"):
            for view in sorted(self.layout.views()):
                spec = feast.get_feature_view(view).to_proto().spec
                digest.update(spec.SerializeToString(deterministic=True))
        return digest.hexdigest()

    def entities(self) -> list[tuple[Any, ...]]:
        """Every entity key present in the raw events, sorted."""
        sales = self.layout.read_events()
        keys = sales[list(self.keys)].drop_duplicates().sort_values(list(self.keys))
        return [
            tuple(v if isinstance(v, str) else int(v) for v in row)
            for row in keys.itertuples(index=False)
        ]


def _online_frame(
    keys: Sequence[str],
    rows: list[dict[str, Any]],
    names: Sequence[str],
    values: dict[str, list[Any]],
    entities: Sequence[tuple[Any, ...]],
) -> OnlineRows:
    stamps = np.array([values[f"{name}__ts"] for name in names], dtype="float64")
    # A row is one write: a view's features share a timestamp; 0 means "no row". With
    # several views the row's time is the newest write.
    newest = stamps.max(axis=0)
    columns: dict[str, Any] = {k: [r[k] for r in rows] for k in keys}
    columns[TIMESTAMP_COLUMN] = pd.to_datetime(newest, unit="s", utc=True)
    for name in names:  # None (no value) becomes NaN
        columns[name] = np.array(values[name], dtype="float64")
    frame = pd.DataFrame(columns)  # one construction: column inserts cost 4 ms here
    found = newest > 0
    missing = tuple(entities[int(i)] for i in np.flatnonzero(~found))
    return OnlineRows(frame=frame[found].reset_index(drop=True), missing=missing)


def utc_midnight(day: date | datetime | pd.Timestamp) -> datetime:
    """Midnight UTC of ``day``."""
    stamp = pd.Timestamp(day)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    return stamp.normalize().to_pydatetime()


def _feast_historical(feast: Any, service: Any, entity_df: pd.DataFrame) -> pd.DataFrame:
    """Feast's historical retrieval of ``service`` for ``entity_df`` (a DuckDB query)."""
    job = feast.get_historical_features(entity_df=entity_df, features=service)
    with warnings.catch_warnings():  # ibis's deprecation notices, not the user's business
        warnings.simplefilter("ignore", DeprecationWarning)
        joined: pd.DataFrame = job.to_df()
    return joined
