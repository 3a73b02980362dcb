"""The one error type for bad input: a name, file, option, plan or results folder that the user
gave and that cannot be used.

It is raised where the input is checked, in any room; it lives here, in the room every other one
imports, so that raising it keeps imports running one way. `ktbench` reports it as one line and
exit code 2; any other exception is a bug and shows its traceback (exit code 1). The specific
kinds (`pairs.plan.PlanError`, `results.compact.CompactError`, `analysis.QueryError`,
`benchmark.models.weights.AccuracyMismatch`) subclass it.
"""


class InputError(ValueError):
    """Bad input, said in one line that names the input and what is wrong with it."""
