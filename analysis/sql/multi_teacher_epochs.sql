-- Multi-teacher transfer epoch by epoch (docs/methods.md#multi-teacher): for each ok multi-teacher
-- run (sequential, parallel), every epoch's step (the place in the teacher sequence; 0 for
-- parallel) and its teacher, the knowledge gain, knowledge loss and dist_delta against the initial
-- student, and the same within the step (`_step`: against the student as the step began, so a
-- later teacher's own gain and loss show apart from what earlier teachers gave). Mean over the
-- seeds of the same student, mode, method and teacher list (runs).
SELECT r.dataset, r.student, r.mode, r.teachers, r.method, e.epoch, e.step, e.step_teacher,
       count(*) AS runs,
       round(avg(e.knowledge_gain), 2) AS knowledge_gain,
       round(avg(e.knowledge_loss), 2) AS knowledge_loss,
       round(avg(e.dist_delta), 2) AS dist_delta,
       round(avg(e.knowledge_gain_step), 2) AS knowledge_gain_step,
       round(avg(e.knowledge_loss_step), 2) AS knowledge_loss_step,
       round(avg(e.dist_delta_step), 2) AS dist_delta_step
FROM runs r
JOIN transfer_epochs e USING (key)
WHERE NOT r.single_teacher AND r.status = 'ok'
GROUP BY r.dataset, r.student, r.mode, r.teachers, r.method, e.epoch, e.step, e.step_teacher
ORDER BY r.dataset, r.student, r.mode, r.method, r.teachers, e.epoch;
