"""Runs inside a rendered project (redis or sql store): fill the store, time `end_sessions`.

bench_lookup.py copies this file into the project as `bench_lookup_driver.py` and runs it
with the project's own Python, so the generated store code is what gets measured. The store
is built exactly as the app builds it (`Auth.from_settings`; the store is `auth.sessions.store`),
from REDIS_URL / DATABASE_URL, and opened as the app opens it at startup (`store.open()`).

The population: `--users` users (default 20,000) with SESSIONS_PER_USER sessions each. Every
session has its own provider session id (sid), except that every SHARED_EVERY-th user's last
two sessions share one (two app sessions from one provider login), and every NO_SID_EVERY-th
user's first session has none (a provider that sends no sid). Sessions were created within
the last 20 hours, so all are alive. Tokens have realistic sizes (a signed ID token and an
access token: ~2.1 KB of session JSON, ~3 KB encrypted).

Fill modes:
- `save`: every session goes through the store's own `create` (slow: one transaction each);
  the session id (the cookie's value) is the key `create` returns.
- `bulk`: the records `create` writes, written in batches: for Redis the same SET/SADD/EXPIRE
  commands in non-transactional pipelines of 1000 sessions; for SQL the same rows in
  multi-row INSERTs of 2000. Keys, rows and encrypted data are built with the store's own
  helpers (`record_id`, its codec with the record id as `bound_to`, its lifetime), and before
  the fill the driver checks that a session written both ways gives equal records
  (`Records.describe`).

Then it times, one call at a time, `end_sessions(sid=...)`, `(sub=...)` and `(sid=, sub=)`
on sessions that exist (disjoint random users for each; the kinds interleaved), checks every
returned count, and times `store.read` of random live sessions (reported as `load`, the
name the benchmark's output and README use). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from app.auth.core import Auth
from app.auth.sessions import Session, SessionLifetime
from app.auth.stores.server import record_id
from app.config import get_settings

SESSIONS_PER_USER = 5
SHARED_EVERY = 10
NO_SID_EVERY = 50
TOKEN_CHARS = {"id_token": 900, "access_token": 800, "refresh_token": 64}


class EndsSessions(Protocol):
    async def end_sessions(self, *, sub: str | None = None, sid: str | None = None) -> int: ...


@dataclass(frozen=True)
class Planned:
    """A session of the population and the session id (the cookie's value) it is filed under."""

    user: int
    session_id: str
    session: Session


def make_session(sub: str, sid: str | None, created_at: float) -> Session:
    """A session as the callback route starts it (either shape of the access-token fields)."""
    token = {name: secrets.token_urlsafe(chars * 3 // 4) for name, chars in TOKEN_CHARS.items()}
    scope = "openid profile email offline_access"
    expires_at = int(created_at) + 86400
    fields = {field.name for field in dataclasses.fields(Session)}
    tokens: dict[str, Any] = {name: token[name] for name in ("id_token", "refresh_token")}
    if "access_tokens" in fields:  # one access token per API
        from app.auth.sessions import AccessToken

        tokens["access_tokens"] = (AccessToken(token["access_token"], expires_at, scope, None),)
    else:
        tokens.update(access_token=token["access_token"], expires_at=expires_at, scope=scope)
    user = {"sub": sub, "name": f"User {sub[-6:]}", "email": f"{sub[-12:]}@example.com"}
    session = Session.start(user, sid=sid, **tokens)
    created = type(session.created_at)(created_at)
    return dataclasses.replace(session, created_at=created, touched_at=int(created_at))


def population(users: int, rng: random.Random) -> list[Planned]:
    planned = []
    started = time.time()
    for user in range(users):
        sub = f"auth0|{user:06d}{rng.getrandbits(64):016x}"
        sids: list[str | None] = [secrets.token_urlsafe(16) for _ in range(SESSIONS_PER_USER)]
        if user % SHARED_EVERY == 0:
            sids[-1] = sids[-2]
        if user % NO_SID_EVERY == 1:
            sids[0] = None
        for sid in sids:
            session = make_session(sub, sid, started - rng.uniform(60, 20 * 3600))
            planned.append(Planned(user, secrets.token_urlsafe(32), session))
    return planned


class Records(Protocol):
    """Store-specific access to what the store keeps."""

    async def bulk_write(self, batch: list[Planned]) -> None: ...

    async def describe(self, session_id: str) -> dict[str, Any]:
        """The record of a session, without what differs by construction (id, ciphertext).

        Values under keys ending in `ttl` are seconds left, compared with a tolerance.
        """
        ...

    async def count(self) -> int: ...


class RedisRecords:
    def __init__(self, store: Any) -> None:
        self.store = store
        self.redis = store._redis
        self.prefix: str = store._prefix

    async def bulk_write(self, batch: list[Planned]) -> None:
        store, lifetime = self.store, self.store.lifetime
        async with self.redis.pipeline(transaction=False) as pipe:
            for planned in batch:
                session, record = planned.session, record_id(planned.session_id)
                ttl = lifetime.ends_at(session) - int(time.time())
                data = store._codec.encode(session, bound_to=record)
                pipe.set(store._key(record), data, ex=max(ttl, 1))
                for index_key in store._index_keys(session):
                    pipe.sadd(index_key, record)
                    pipe.expire(index_key, lifetime.absolute)
            await pipe.execute()

    async def describe(self, session_id: str) -> dict[str, Any]:
        record = record_id(session_id)
        key = self.store._key(record)
        session = self.store._codec.decode(await self.redis.get(key), bound_to=record)
        assert session is not None, session_id
        described = {"session": session, "ttl": await self.redis.ttl(key)}
        for index_key in self.store._index_keys(session):
            member = await self.redis.sismember(index_key, record)
            described[f"{index_key} member"] = bool(member)
            described[f"{index_key} ttl"] = await self.redis.ttl(index_key)
        return described

    async def count(self) -> int:
        return sum([1 async for _ in self.redis.scan_iter(f"{self.prefix}session:*", count=5000)])


class SqlRecords:
    def __init__(self, store: Any) -> None:
        from app.auth.stores import sql

        self.sql = sql
        self.store = store
        self.engine = store.database.engine

    async def bulk_write(self, batch: list[Planned]) -> None:
        store, lifetime = self.store, self.store.lifetime
        rows = []
        for planned in batch:  # the tables exist: main() opened the store
            record = record_id(planned.session_id)
            rows.append(
                {
                    "id": record,
                    "sub": planned.session.sub,
                    "sid": planned.session.sid,
                    "expires_at": lifetime.ends_at(planned.session),
                    "data": store._codec.encode(planned.session, bound_to=record),
                }
            )
        async with self.engine.begin() as connection:
            await connection.execute(self.sql.insert(self.sql.sessions_table), rows)

    async def describe(self, session_id: str) -> dict[str, Any]:
        table = self.sql.sessions_table
        record = record_id(session_id)
        query = self.sql.select(table).where(table.c.id == record)
        async with self.engine.connect() as connection:
            row = dict((await connection.execute(query)).one()._mapping)
        row.pop("id")
        row["data"] = self.store._codec.decode(row["data"], bound_to=record)
        assert row["data"] is not None, session_id
        return row

    async def count(self) -> int:
        from sqlalchemy import func

        query = self.sql.select(func.count()).select_from(self.sql.sessions_table)
        async with self.engine.connect() as connection:
            return int((await connection.execute(query)).scalar_one())


async def save(store: Any, planned: Planned) -> Planned:
    """Store a session through `create`; the same session under the key the store gave it."""
    stored = await store.create(planned.session)
    assert stored is not None and stored.session == planned.session, stored
    return dataclasses.replace(planned, session_id=stored.key)


async def check_bulk_equals_save(store: Any, records: Records, planned: Planned) -> None:
    by_save = await save(store, planned)
    await records.bulk_write([planned])
    assert by_save.session_id != planned.session_id
    saved = await records.describe(by_save.session_id)
    written = await records.describe(planned.session_id)
    assert saved.keys() == written.keys(), (saved, written)
    for name, value in saved.items():
        same = abs(value - written[name]) <= 2 if name.endswith("ttl") else value == written[name]
        assert same, (name, value, written[name])
    ended = await store.end_sessions(sub=planned.session.sub)
    assert ended == 2, ended


async def fill(store: Any, records: Records, planned: list[Planned], mode: str) -> list[Planned]:
    if mode == "bulk":
        batch = 1000 if isinstance(records, RedisRecords) else 2000
        for start in range(0, len(planned), batch):
            await records.bulk_write(planned[start : start + batch])
        return planned
    saved: list[Planned] = []
    for start in range(0, len(planned), 64):
        chunk = planned[start : start + 64]
        saved += await asyncio.gather(*(save(store, one) for one in chunk))
    return saved


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[max(0, round(len(ordered) * 0.95) - 1)] * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await call()
    return time.perf_counter() - started, result


async def measure(store: Any, planned: list[Planned], lookups: int, rng: random.Random) -> Any:
    by_user: dict[int, list[Planned]] = {}
    for one in planned:
        by_user.setdefault(one.user, []).append(one)
    kinds = ("sid", "sub", "sid+sub")
    warmup = 20
    users = rng.sample(sorted(by_user), len(kinds) * (lookups + warmup) + lookups)
    load_users, users = users[:lookups], users[lookups:]

    def operation(kind: str, user: int) -> tuple[str, dict[str, str], int]:
        sessions = by_user[user]
        if kind == "sub":
            return kind, {"sub": sessions[0].session.sub}, len(sessions)
        sid = rng.choice([s.session.sid for s in sessions if s.session.sid])
        expected = sum(s.session.sid == sid for s in sessions)
        which = {"sid": sid} if kind == "sid" else {"sid": sid, "sub": sessions[0].session.sub}
        return kind, which, expected

    warm = [operation(kind, users.pop()) for kind in kinds for _ in range(warmup)]
    operations = [operation(kind, users.pop()) for kind in kinds for _ in range(lookups)]
    rng.shuffle(operations)
    ends: EndsSessions = store
    latencies: dict[str, list[float]] = {kind: [] for kind in kinds}
    for number, (kind, which, expected) in enumerate([*warm, *operations]):
        elapsed, ended = await timed(lambda which=which: ends.end_sessions(**which))
        assert ended == expected, (kind, which, ended, expected)
        if number >= len(warm):
            latencies[kind].append(elapsed)

    load_latencies = []
    for user in load_users:
        one = rng.choice(by_user[user])
        elapsed, stored = await timed(lambda one=one: store.read(one.session_id))
        assert stored is not None and stored.session == one.session, (stored, one.session)
        load_latencies.append(elapsed)
    return {
        **{f"end_sessions({kind})": summary(values) for kind, values in latencies.items()},
        "load": summary(load_latencies),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fill", choices=["bulk", "save"], default="bulk")
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    # The provider is never contacted; the store settings come from bench_lookup.py.
    os.environ.update(
        AUTH0_DOMAIN="https://provider.bench/",
        AUTH0_CLIENT_ID="bench",
        AUTH0_CLIENT_SECRET="bench-client-password",
        APP_BASE_URL="http://127.0.0.1:8000",
        SESSION_SECRET=secrets.token_urlsafe(32),
    )
    auth = Auth.from_settings(get_settings())
    store: Any = auth.sessions.store
    assert isinstance(auth.lifetime, SessionLifetime)
    records: Records = RedisRecords(store) if hasattr(store, "_redis") else SqlRecords(store)
    try:
        await store.open()  # as at the app's startup (SQL: creates the tables)
        started = time.perf_counter()
        planned = population(args.users, rng)
        generated = time.perf_counter() - started
        await check_bulk_equals_save(store, records, make_planned_probe(rng))

        started = time.perf_counter()
        planned = await fill(store, records, planned, args.fill)
        filled = time.perf_counter() - started
        stored = await records.count()
        assert stored == len(planned), (stored, len(planned))

        results = await measure(store, planned, args.lookups, rng)
        print(
            json.dumps(
                {
                    "sessions": stored,
                    "users": args.users,
                    "fill": args.fill,
                    "generate_s": round(generated, 1),
                    "fill_s": round(filled, 1),
                    **results,
                }
            )
        )
    finally:
        await auth.aclose()  # the provider's HTTP client and the sessions' store


def make_planned_probe(rng: random.Random) -> Planned:
    """A session outside the population, for the save-versus-bulk check."""
    sub = f"probe|{rng.getrandbits(64):016x}"
    return Planned(-1, secrets.token_urlsafe(32), make_session(sub, "probe-sid", time.time() - 60))


if __name__ == "__main__":
    asyncio.run(main())
