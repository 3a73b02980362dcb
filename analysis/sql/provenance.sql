-- Where the results came from: zoos, datasets, plans, code versions, hosts and dates, as
-- (item, value) rows, read from the tables themselves. "training seeds per pair" says when each
-- pair and method ran once, so that no number looks more exact than one training run makes it.
WITH m AS MATERIALIZED (
    SELECT string_agg(DISTINCT zoo, ', ' ORDER BY zoo) AS zoos,
           list(DISTINCT dataset) AS datasets, count(*) AS models
    FROM models
),
r AS MATERIALIZED (
    SELECT string_agg(DISTINCT plan, ', ' ORDER BY plan) AS plans,
           count(*) AS runs,
           string_agg(DISTINCT base_method, ', ' ORDER BY base_method) AS methods,
           string_agg(DISTINCT code_version, ', ' ORDER BY code_version) AS code_versions,
           string_agg(DISTINCT host, ', ' ORDER BY host) AS hosts,
           list(DISTINCT dataset) AS datasets,
           strftime(min(started_at) AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S') AS first_started,
           strftime(max(finished_at) AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S') AS last_finished
    FROM runs
),
s AS MATERIALIZED (
    SELECT min(seeds) AS lo, max(seeds) AS hi
    FROM (SELECT count(DISTINCT seed) AS seeds FROM runs
          GROUP BY dataset, method, teacher, student)
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
    UNION ALL SELECT 8, 'training seeds per pair',
        CASE WHEN hi = 1 THEN '1 (one run per pair and method: training noise not measured)'
             WHEN lo = hi THEN CAST(hi AS VARCHAR)
             ELSE lo || '-' || hi END FROM s
    UNION ALL SELECT 9, 'code versions', code_versions FROM r
    UNION ALL SELECT 10, 'hosts', hosts FROM r
    UNION ALL SELECT 11, 'first run started (UTC)', first_started FROM r
    UNION ALL SELECT 12, 'last run finished (UTC)', last_finished FROM r
)
ORDER BY o;
