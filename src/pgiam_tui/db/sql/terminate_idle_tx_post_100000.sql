-- Terminate the idle-in-transaction sessions the DBA confirmed, and only those: the same backend (pid and
-- backend_start: a pid can be reused), in the same transaction (xact_start), still idle in it. A session that
-- committed, rolled back or ran a query since the list was shown is left alone.
-- Parameters: pids int4[], backend_starts timestamptz[], xact_starts timestamptz[] (same length, same order).
SELECT
    a.pid,
    pg_catalog.pg_terminate_backend(a.pid) AS terminated
FROM pg_catalog.pg_stat_activity AS a
JOIN unnest(%s::int4[], %s::timestamptz[], %s::timestamptz[]) AS t(pid, backend_start, xact_start)
    ON a.pid = t.pid AND a.backend_start = t.backend_start AND a.xact_start = t.xact_start
WHERE a.state IN ('idle in transaction', 'idle in transaction (aborted)')
