-- Server-wide health of one instance, next to its activity: connection limit and use, transactions so far
-- (two samples give transactions per second), whether it replays WAL and how far behind that replay is,
-- and whether this session's user may signal other backends (cancel / terminate).
-- The replay lag of a standby is the age of the last replayed transaction (it grows on an idle primary);
-- Aurora's own lag figure comes from aurora_replica_status() (server_health_aurora), when has_aurora_status.
SELECT
    pg_catalog.now() AS sampled_at,
    pg_catalog.current_setting('max_connections')::int AS max_connections,
    (SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE backend_type = 'client backend')::int
        AS connections,
    (SELECT sum(xact_commit + xact_rollback) FROM pg_catalog.pg_stat_database)::int8 AS xact_total,
    pg_catalog.pg_is_in_recovery() AS in_recovery,
    CASE WHEN pg_catalog.pg_is_in_recovery()
        THEN EXTRACT(EPOCH FROM pg_catalog.now() - pg_catalog.pg_last_xact_replay_timestamp())::float8
    END AS replay_lag_s,
    pg_catalog.to_regproc('aurora_replica_status') IS NOT NULL AS has_aurora_status,
    -- whether cancel / terminate can work at all (pg_signal_backend; rds_superuser is a member of it)
    pg_catalog.pg_has_role(current_user, 'pg_signal_backend', 'MEMBER') AS can_signal
