"""The options that run a study on another dataset than the zoo's (`plan`, `demo`): the zoo
probed onto it (`pairs.probe`) when its heads do not fit, or when asked."""
from pairs.probe import DEFAULT_RECIPE, PROBE_RECIPES, zoo_on


def add_dataset_arguments(p):
    g = p.add_argument_group("another dataset (a linear probe per model, docs/protocol.md#probes)")
    g.add_argument("--dataset", help="study the zoo on this dataset (e.g. digits_shift, "
                                     "imagefolder:/data/cub); a model whose head does not fit "
                                     "its classes gets a linear head fitted there first")
    g.add_argument("--probe-recipe", choices=sorted(PROBE_RECIPES), default=DEFAULT_RECIPE,
                   help=f"how heads are fitted (default {DEFAULT_RECIPE}: SGD, cosine, 50 "
                        "epochs, lr 0.1; lbfgs: a logistic regression)")
    g.add_argument("--probe", action="store_true",
                   help="fit new heads even where the models' heads fit the dataset")


def study_zoo(zoo_name: str, args):
    """The zoo the command line's study runs (`pairs.probe.zoo_on`)."""
    return zoo_on(zoo_name, args.dataset, args.probe_recipe, args.probe)
