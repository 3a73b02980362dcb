-- Where the results came from: zoos, datasets, plans, code versions, hosts and dates, as
-- (item, value) rows, read from the tables themselves.
WITH m AS MATERIALIZED (
    SELECT string_agg(DISTINCT zoo, ', ' ORDER BY zoo) AS zoos,
           list(DISTINCT dataset) AS datasets, count(*) AS models
    FROM models
),
r AS MATERIALIZED (
    SELECT string_agg(DISTINCT plan, ', ' ORDER BY plan) AS plans,
           count(*) AS runs,
           string_agg(DISTINCT method, ', ' ORDER BY method) AS methods,
           string_agg(DISTINCT code_version, ', ' ORDER BY code_version) AS code_versions,
           string_agg(DISTINCT host, ', ' ORDER BY host) AS hosts,
           list(DISTINCT dataset) AS datasets,
           strftime(min(started_at) AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S') AS first_started,
           strftime(max(finished_at) AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S') AS last_finished
    FROM transfer_runs
),
p AS MATERIALIZED (
    SELECT count(*) AS pairs FROM (SELECT DISTINCT dataset, teacher, student FROM pair_stats)
)
SELECT item, value FROM (
    SELECT 1 AS o, 'zoos' AS item, zoos AS value FROM m
    UNION ALL
    SELECT 2, 'datasets', nullif(array_to_string(list_sort(list_distinct(
        list_concat(m.datasets, r.datasets))), ', '), '') FROM m, r
    UNION ALL SELECT 3, 'models', CAST(models AS VARCHAR) FROM m
    UNION ALL SELECT 4, 'pairs with complementary-knowledge statistics', CAST(pairs AS VARCHAR) FROM p
    UNION ALL SELECT 5, 'plans', plans FROM r
    UNION ALL SELECT 6, 'transfer runs', CAST(runs AS VARCHAR) FROM r
    UNION ALL SELECT 7, 'methods', methods FROM r
    UNION ALL SELECT 8, 'code versions', code_versions FROM r
    UNION ALL SELECT 9, 'hosts', hosts FROM r
    UNION ALL SELECT 10, 'first run started (UTC)', first_started FROM r
    UNION ALL SELECT 11, 'last run finished (UTC)', last_finished FROM r
)
ORDER BY o;
