-- The analysis's views over the results views: what a transfer run is to every table, defined
-- once. Run after results/views.sql (it reads the view transfer_runs):
--   duckdb -c "SET VARIABLE results = 'ktbench-results'" -c ".read results/views.sql" \
--          -c ".read analysis/views.sql" -c ".read analysis/sql/success_rate.sql"
--
-- runs: every transfer run, its `method` labelled with its compat mode, "kl (fantasticgains)"
--   (the plain name where the run used the default definitions), so runs of the two code paths
--   never average together; `base_method` is the method's registered name; `single_teacher`
--   whether it had one teacher (mode empty or 'single') rather than several (sequential,
--   parallel, soup).
-- single_runs: the single-teacher runs, which every table but the multi-teacher ones reads.
CREATE OR REPLACE VIEW runs AS
SELECT * REPLACE (method || CASE WHEN coalesce(compat, '') = '' THEN ''
                                 ELSE ' (' || compat || ')' END AS method),
       method AS base_method,
       coalesce(mode, '') IN ('', 'single') AS single_teacher
FROM transfer_runs;

CREATE OR REPLACE VIEW single_runs AS
SELECT * FROM runs WHERE single_teacher;
