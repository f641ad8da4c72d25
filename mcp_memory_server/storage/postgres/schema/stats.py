"""PostgreSQL counters behind ``memory_stats`` (same tables, counters and versions as SQLite's ``stats.py``).

The triggers are per statement, over its transition tables: a batch of events (one COPY)
adds its count once, not once per row. A count is added to the transaction's own delta row
and folded into ``store_counters`` at commit (see ``_COUNTERS``): every fold adds to the
committed value (an upsert waits for, then re-reads, a row another commit changed), so the
counts stay exact with any number of writers on any replicas, and a transaction never
waits for another's counter.

PostgreSQL allows transition tables only on a trigger of one event and no column list,
hence one trigger per event, and ``files``' UPDATE trigger runs for every update of a row
(it counts the rows moving in or out of "live").
"""

from __future__ import annotations

from ...counted import BLOB_REFERENCES, COUNTED
from ...engine import Migration

# The SQL for a referenced blob's size (over {row}; NULL if unknown), per referencing table.
_SIZES = {
    "artifact_blobs": "(SELECT s.size FROM blob_sizes AS s WHERE s.sha256 = {row}.sha256)",
    "file_versions": "max({row}.bytes)",
    "files": "max({row}.bytes)",
}
_REFERENCES: list[tuple[str, str, str]] = [(table, _SIZES[table], where or "TRUE") for table, where in BLOB_REFERENCES]


def _counted(table: str, counter: str, where: str) -> str:
    where_sql = where or "TRUE"
    added = f"(SELECT count(*) FROM added WHERE {where_sql.format(row='added')})"
    removed = f"(SELECT count(*) FROM removed WHERE {where_sql.format(row='removed')})"
    delta = {"INSERT": added, "DELETE": f"-{removed}", "UPDATE": f"{added} - {removed}"}
    events = ["INSERT", "DELETE", *(["UPDATE"] if where else [])]  # without a condition an update moves nothing
    referencing = {
        "INSERT": "NEW TABLE AS added",
        "DELETE": "OLD TABLE AS removed",
        "UPDATE": "OLD TABLE AS removed NEW TABLE AS added",
    }
    sql = f"""
        INSERT INTO store_counters (name, value)
        SELECT '{counter}', count(*) FROM {table} WHERE {where_sql.format(row=table)};
    """
    for event in events:
        name = f"count_{table}_{event[0].lower()}"
        sql += f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            delta BIGINT := {delta[event]};
        BEGIN
            PERFORM store_count('{counter}', delta);
            RETURN NULL;
        END $$;
        CREATE TRIGGER {name} AFTER {event} ON {table}
            REFERENCING {referencing[event]} FOR EACH STATEMENT EXECUTE FUNCTION {name}();
        """
    return sql


def _references(table: str, size: str, where: str) -> str:
    # Added first, then removed: an update that keeps a digest never drops its row on the way.
    add = f"""
            INSERT INTO blob_refs AS r (sha256, refs, size)
            SELECT added.sha256, count(*), {size.format(row="added")} FROM added
            WHERE {where.format(row="added")} GROUP BY added.sha256
            ON CONFLICT (sha256) DO UPDATE SET refs = r.refs + excluded.refs, size = coalesce(r.size, excluded.size);
    """
    remove = f"""
            UPDATE blob_refs AS r SET refs = r.refs - o.n
            FROM (SELECT removed.sha256, count(*) AS n FROM removed WHERE {where.format(row="removed")}
                  GROUP BY removed.sha256) AS o
            WHERE r.sha256 = o.sha256;
            DELETE FROM blob_refs AS r USING removed WHERE r.sha256 = removed.sha256 AND r.refs <= 0;
    """
    bodies = {"INSERT": add, "DELETE": remove, "UPDATE": add + remove}
    referencing = {
        "INSERT": "NEW TABLE AS added",
        "DELETE": "OLD TABLE AS removed",
        "UPDATE": "OLD TABLE AS removed NEW TABLE AS added",
    }
    sql = ""
    for event, body in bodies.items():
        name = f"blob_refs_{table}_{event[0].lower()}"
        sql += f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {body}
            RETURN NULL;
        END $$;
        CREATE TRIGGER {name} AFTER {event} ON {table}
            REFERENCING {referencing[event]} FOR EACH STATEMENT EXECUTE FUNCTION {name}();
        """
    return sql


def _blob_refs() -> str:
    references = " UNION ALL ".join(
        f"SELECT sha256 FROM {table} WHERE {where.format(row=table)}" for table, _, where in _REFERENCES
    )
    # A backfilled blob's size: the cache, else a file version's bytes, else a file artifact's
    # (its own blob's size; a directory's bytes are its files' total, not its manifest's).
    return f"""
        CREATE TABLE blob_refs (sha256 TEXT PRIMARY KEY, refs BIGINT NOT NULL, size BIGINT);
        CREATE INDEX blob_refs_unsized ON blob_refs (sha256) WHERE size IS NULL;
        INSERT INTO blob_refs (sha256, refs, size)
        SELECT r.sha256, r.refs, coalesce(
            (SELECT size FROM blob_sizes WHERE sha256 = r.sha256),
            (SELECT bytes FROM file_versions WHERE sha256 = r.sha256 LIMIT 1),
            (SELECT bytes FROM artifacts WHERE sha256 = r.sha256 AND is_dir = 0 LIMIT 1))
        FROM (SELECT u.sha256, count(*) AS refs FROM ({references}) AS u GROUP BY u.sha256) AS r;
        INSERT INTO store_counters (name, value) SELECT 'blobs', count(*) FROM blob_refs;
        INSERT INTO store_counters (name, value) SELECT 'blob_bytes', coalesce(sum(size), 0) FROM blob_refs;
        INSERT INTO store_counters (name, value) SELECT 'blobs_unsized', count(*) FROM blob_refs WHERE size IS NULL;
        -- One function for the three events: each branch reads only the transition tables its event has.
        CREATE FUNCTION count_blob_refs() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            d_blobs BIGINT := 0;
            d_bytes BIGINT := 0;
            d_unsized BIGINT := 0;
        BEGIN
            IF TG_OP <> 'DELETE' THEN
                SELECT d_blobs + count(*), d_bytes + coalesce(sum(size), 0),
                       d_unsized + count(*) FILTER (WHERE size IS NULL)
                INTO d_blobs, d_bytes, d_unsized FROM added;
            END IF;
            IF TG_OP <> 'INSERT' THEN
                SELECT d_blobs - count(*), d_bytes - coalesce(sum(size), 0),
                       d_unsized - count(*) FILTER (WHERE size IS NULL)
                INTO d_blobs, d_bytes, d_unsized FROM removed;
            END IF;
            PERFORM store_count('blobs', d_blobs);
            PERFORM store_count('blob_bytes', d_bytes);
            PERFORM store_count('blobs_unsized', d_unsized);
            RETURN NULL;
        END $$;
        CREATE TRIGGER count_blob_refs_i AFTER INSERT ON blob_refs
            REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION count_blob_refs();
        CREATE TRIGGER count_blob_refs_d AFTER DELETE ON blob_refs
            REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION count_blob_refs();
        CREATE TRIGGER count_blob_refs_u AFTER UPDATE ON blob_refs
            REFERENCING OLD TABLE AS removed NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION count_blob_refs();
    """


# A trigger adds to its transaction's own row of store_counter_deltas, never to the shared
# store_counters row: two transactions never wait on each other for a counter (a writer that
# bypasses the write lock, or a test that interleaves two on purpose, would otherwise block
# on the row the other holds until it ends). At commit a deferred trigger folds each delta
# row into store_counters and deletes it, so committed deltas are always gone and stats
# reads store_counters alone. Through Database.write commits are one at a time (the
# advisory lock), so the folds never wait either.
_COUNTERS = """
    CREATE TABLE store_counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
    CREATE TABLE store_counter_deltas (
        name TEXT NOT NULL, xact BIGINT NOT NULL, value BIGINT NOT NULL, PRIMARY KEY (name, xact)
    );
    CREATE FUNCTION store_count(counter TEXT, delta BIGINT) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF delta <> 0 THEN
            INSERT INTO store_counter_deltas AS d (name, xact, value) VALUES (counter, txid_current(), delta)
            ON CONFLICT (name, xact) DO UPDATE SET value = d.value + excluded.value;
        END IF;
    END $$;
    CREATE FUNCTION store_counters_fold() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        WITH moved AS (
            DELETE FROM store_counter_deltas WHERE name = NEW.name AND xact = NEW.xact RETURNING name, value
        )
        INSERT INTO store_counters AS c (name, value) SELECT name, value FROM moved
        ON CONFLICT (name) DO UPDATE SET value = c.value + excluded.value;
        RETURN NULL;
    END $$;
    CREATE CONSTRAINT TRIGGER store_counters_fold AFTER INSERT ON store_counter_deltas
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION store_counters_fold();
"""

MIGRATIONS: list[Migration] = [
    # "stats" sorts after every component whose tables it counts except vectors (see vectors v2).
    (
        "stats",
        1,
        _COUNTERS
        + "".join(_counted(*counted) for counted in COUNTED)
        + _blob_refs()
        + "".join(_references(*reference) for reference in _REFERENCES),
    ),
]

VECTOR_COUNTERS: Migration = (
    "vectors",
    2,
    # Each model's first-chunk vectors (the documents it has embedded), under 'vectors:<model>'.
    """
    INSERT INTO store_counters (name, value)
    SELECT 'vectors:' || m.model, (SELECT count(*) FROM vectors AS v WHERE v.model = m.model AND v.chunk = 0)
    FROM vector_models AS m;
    -- A model's counter goes with it (its vectors went first); its first vector's fold creates it.
    CREATE FUNCTION count_vector_models_d() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM store_counters AS c USING removed WHERE c.name = 'vectors:' || removed.model;
        DELETE FROM store_counter_deltas AS c USING removed WHERE c.name = 'vectors:' || removed.model;
        RETURN NULL;
    END $$;
    CREATE TRIGGER count_vector_models_d AFTER DELETE ON vector_models
        REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION count_vector_models_d();
    CREATE FUNCTION count_vectors_i() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM store_count('vectors:' || model, count(*)) FROM added WHERE chunk = 0 GROUP BY model;
        RETURN NULL;
    END $$;
    CREATE TRIGGER count_vectors_i AFTER INSERT ON vectors
        REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION count_vectors_i();
    CREATE FUNCTION count_vectors_d() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM store_count('vectors:' || model, -count(*)) FROM removed WHERE chunk = 0 GROUP BY model;
        RETURN NULL;
    END $$;
    CREATE TRIGGER count_vectors_d AFTER DELETE ON vectors
        REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION count_vectors_d();
    """,
)
