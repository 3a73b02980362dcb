-- Every transfer run counted by outcome, per method: ok, diverged (stopped early: non-finite loss
-- or accuracy far below its start) and failed (an error; see runs_not_ok). Multi-teacher runs
-- included. The other tables average ok runs only and count the rest beside them.
SELECT dataset, method,
       count(*) AS runs,
       count(*) FILTER (WHERE status = 'ok') AS ok,
       count(*) FILTER (WHERE status = 'diverged') AS diverged,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status NOT IN ('ok', 'diverged', 'failed') OR status IS NULL) AS other
FROM runs
GROUP BY ALL
ORDER BY dataset, method;
