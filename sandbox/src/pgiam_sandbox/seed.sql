-- The sandbox's scenario, after the AWS blog walkthrough in /work/shared/reference/ ("IAM 認証を使用した
-- Amazon RDS および Aurora PostgreSQL データベースアクセスの保護"): database demo, schema pgdemo with the
-- blog's products/orders tables, the oltp_ro_role / oltp_rw_role roles, IAM users in rds_iam, and pgmonitor.
--
-- Run once, as the initdb superuser sandbox_admin, against a fresh cluster (the template every sandbox server
-- is cloned from). postgres.py runs it statement by statement: statements end with ';' at the end of a line,
-- DO blocks use $$ quoting, and `\connect DB` lines switch database (so psql -f runs it unchanged, too).

-- TCP loopback uses scram-sha-256 (pg_hba); the admin's password is public on purpose: it is a sandbox.
ALTER ROLE sandbox_admin PASSWORD 'sandbox-admin';

-- As on RDS: IAM authentication is granted through membership of the NOLOGIN role rds_iam.
CREATE ROLE rds_iam NOLOGIN;

CREATE ROLE oltp_ro_role NOLOGIN;
CREATE ROLE oltp_rw_role NOLOGIN;

-- IAM users (no password: on RDS a member of rds_iam can only log in with a token).
CREATE USER oltp_ro_user WITH LOGIN;
GRANT rds_iam TO oltp_ro_user;
GRANT oltp_ro_role TO oltp_ro_user;

CREATE USER oltp_rw_user WITH LOGIN;
GRANT rds_iam TO oltp_rw_user;
GRANT oltp_rw_role TO oltp_rw_user;

CREATE USER pgmonitor WITH LOGIN;
GRANT rds_iam TO pgmonitor;
GRANT pg_monitor TO pgmonitor;
-- the demo's config allows cancel/terminate (allow_actions = true): on RDS the monitoring user needs this role
-- for it, as here (the console says so before the attempt where it is missing)
GRANT pg_signal_backend TO pgmonitor;

-- A classic password user outside rds_iam: a token presented for it fails *password* authentication.
CREATE USER app_password_user WITH LOGIN PASSWORD 'app-password';
GRANT oltp_ro_role TO app_password_user;

CREATE DATABASE demo;

-- CONNECT is granted explicitly, as a least-privilege setup would; PUBLIC keeps its default CONNECT so that
-- users created later to inject faults can still log in.
GRANT CONNECT ON DATABASE demo TO oltp_ro_role, oltp_rw_role, oltp_ro_user, oltp_rw_user, pgmonitor,
    app_password_user;

\connect demo

CREATE SCHEMA pgdemo;

-- Table shapes exactly as in the blog.
CREATE TABLE pgdemo.products (
    product_no integer PRIMARY KEY,
    name text,
    price numeric
);

CREATE TABLE pgdemo.orders (
    order_id integer PRIMARY KEY,
    product_no integer REFERENCES pgdemo.products,
    quantity integer,
    order_date timestamp(0) without time zone
);

INSERT INTO pgdemo.products VALUES (1, 'Apple', 1000);
INSERT INTO pgdemo.products VALUES (2, 'Samsung', 800);
INSERT INTO pgdemo.products VALUES (3, 'Lenovo', 500);
INSERT INTO pgdemo.products VALUES (4, 'Oneplus', 800);
INSERT INTO pgdemo.products VALUES (5, 'Xiaomi', 300);

-- The blog draws the 20 orders with random(); the sandbox spreads them deterministically over the same
-- window (2019-09-20 10:00 .. 2019-09-22 20:00) so tests can rely on the rows.
INSERT INTO pgdemo.orders
SELECT s,
       (s % 5) + 1,
       ((s * 7) % 10) + 1,
       (timestamp '2019-09-20 10:00:00' + (s - 1) * interval '171 minutes')::timestamp(0) without time zone
FROM generate_series(1, 20) AS s;

-- Not in the blog: a sequence so the workload (and tests) can insert orders without picking ids.
CREATE SEQUENCE pgdemo.orders_order_id_seq START 21 OWNED BY pgdemo.orders.order_id;
ALTER TABLE pgdemo.orders ALTER COLUMN order_id SET DEFAULT nextval('pgdemo.orders_order_id_seq');

GRANT USAGE ON SCHEMA pgdemo TO oltp_ro_role;
GRANT SELECT ON ALL TABLES IN SCHEMA pgdemo TO oltp_ro_role;

GRANT USAGE ON SCHEMA pgdemo TO oltp_rw_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA pgdemo TO oltp_rw_role;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA pgdemo TO oltp_rw_role;

-- Tables added later (fault injection, tests) get the same grants.
ALTER DEFAULT PRIVILEGES IN SCHEMA pgdemo GRANT SELECT ON TABLES TO oltp_ro_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA pgdemo GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO oltp_rw_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA pgdemo GRANT USAGE, SELECT ON SEQUENCES TO oltp_rw_role;

-- pg_stat_statements where the binaries ship it (Debian's do, the pgserver wheel's do not); postgres.py
-- preloads the library only when it exists, and creating the extension needs no preload.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements') THEN
        CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
    END IF;
END
$$;

ANALYZE;
