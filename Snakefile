# Talking-head generation workflow: data -> preprocessing -> training -> inference -> metrics
# -> the survey's tables and figures. Default: the embedded demo (no network).
#   snakemake --cores all
#   snakemake --cores all --configfile configs/workflow/survey.yaml   # full reproduction
from snakemake.utils import min_version

min_version("9.19.0")


# the demo is the default; a --configfile replaces it instead of being merged into it
# (--config KEY=VALUE overrides still apply on top of either)
if not workflow.overwrite_configfiles:

    configfile: "configs/workflow/demo.yaml"


# documentary: the workflow installs from PyPI (pyproject.toml / environment.yml); this image
# is what `--sdm apptainer` users can build from environment.yml
container: "docker://condaforge/miniforge3:latest"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    dataset=r"[A-Za-z0-9_]+",
    recipe=r"[A-Za-z0-9_]+",
    shard=r"\d{3}",
    experiment=r"[A-Za-z0-9_]+",
    method=r"[A-Za-z0-9]+",
    protocol=names_regex(PROTOCOLS),
    showcase=r"[^/]+",


include: "workflow/rules/data.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/infer.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/track.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
