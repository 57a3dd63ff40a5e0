-- Aurora PostgreSQL only (the function exists there alone): this instance's replica lag in milliseconds,
-- from the row whose server_id is its DB instance identifier (NULL or -1 on the writer).
SELECT replica_lag_in_msec::float8
FROM aurora_replica_status()
WHERE server_id = %s
