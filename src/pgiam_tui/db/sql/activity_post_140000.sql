-- pg_stat_activity for PostgreSQL 14 and later (query_id, filled when compute_query_id is on).
-- One row per backend except our own; durations are computed by the server (no client clock involved);
-- pg_blocking_pids() is costly, so it only runs for sessions that wait on a heavyweight lock.
WITH settings AS (
    SELECT setting::int AS query_size
    FROM pg_catalog.pg_settings
    WHERE name = 'track_activity_query_size'
)
SELECT
    a.pid,
    a.datname,
    a.usename,
    a.application_name,
    host(a.client_addr) AS client_addr,
    a.client_hostname,
    a.client_port,
    a.backend_start,
    a.xact_start,
    a.query_start,
    a.state_change,
    a.state,
    a.wait_event_type,
    a.wait_event,
    a.backend_type,
    a.query_id,
    a.query,
    CASE WHEN a.wait_event_type = 'Lock' THEN pg_catalog.pg_blocking_pids(a.pid) END AS blocked_by,
    -- the server clips query text to track_activity_query_size - 1 bytes, at a character boundary
    -- (so up to 3 bytes less for UTF-8)
    COALESCE(octet_length(a.query) >= s.query_size - 4, false) AS query_truncated,
    EXTRACT(EPOCH FROM now() - CASE WHEN a.state = 'active' THEN a.query_start ELSE a.state_change END)::float8
        AS duration_s,
    EXTRACT(EPOCH FROM now() - a.xact_start)::float8 AS xact_duration_s
FROM pg_catalog.pg_stat_activity AS a
CROSS JOIN settings AS s
WHERE a.pid <> pg_catalog.pg_backend_pid()
ORDER BY a.backend_type <> 'client backend', a.query_start NULLS LAST, a.pid
