-- Every diverged or failed transfer run, listed: what ran, how far it got, where, and the last line
-- of its error (a failed run's traceback is in transfer_runs.error).
SELECT dataset, method,
       teacher, student, seed, status, epochs,
       round(dist_delta, 2) AS dist_delta,
       left(regexp_extract(rtrim(coalesce(error, ''), chr(10) || chr(13) || ' '), '[^\n]*$'), 160)
           AS error,
       host, job_id, key
FROM runs
WHERE status IS DISTINCT FROM 'ok'
ORDER BY dataset, status, method, student, teacher, seed;
