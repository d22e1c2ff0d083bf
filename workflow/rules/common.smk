# Config validation and every input/params function of the workflow (rules hold no logic).
import hashlib
import re
from pathlib import Path

from snakemake.utils import validate

from talking_heads.datasets import DATASETS, is_built
from talking_heads.tracking import restore_timestamps

validate(config, schema="../schemas/config.schema.yaml")

HYDRA_CONFIG_DIR = Path("configs")
# modification times of the declared outputs, recorded with the DVC records; `dvc pull`
# restores content but not timestamps, so they are put back here (only when DVC reports the
# data identical to its records) before Snakemake compares them
TIMESTAMPS = Path("results/timestamps.json")
restore_timestamps(TIMESTAMPS)


def names_regex(names):
    """A regex matching exactly these names (one that matches nothing when empty)."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


# datasets of `kind: folder`: the user's own media under `path`, indexed into data/<name>/
FOLDER_DATASETS = [n for n, spec in config["datasets"].items() if spec.get("kind") == "folder"]
FOLDER_DATASETS_RE = names_regex(FOLDER_DATASETS)
BUILT_DATASETS_RE = names_regex(
    n for n in DATASETS.names() if is_built(n) and n not in FOLDER_DATASETS
)
DOWNLOADED_DATASETS_RE = names_regex(
    n for n in DATASETS.names() if not is_built(n) and n not in FOLDER_DATASETS
)


def downloaded_datasets():
    """Configured datasets that are downloaded (not built locally, not folders)."""
    return [d for d in config["datasets"] if d not in FOLDER_DATASETS and not is_built(d)]


def folder_path(wildcards):
    """The media directory of a folder dataset (its config entry's ``path``)."""
    path = Path(config["datasets"][wildcards.dataset]["path"]).expanduser()
    if not path.is_dir():
        raise ValueError(f"datasets.{wildcards.dataset}.path: {path} is not a directory")
    return str(path)


def folder_files(wildcards):
    """Every file of a folder dataset (new, removed or edited files re-index it)."""
    root = Path(folder_path(wildcards))
    return sorted(
        str(p)
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def download_shard_ids(dataset):
    return [f"{i:03d}" for i in range(config["datasets"][dataset].get("download_shards", 1))]


def download_records(wildcards):
    """Download records of every shard of a dataset (what assembly waits for)."""
    ds = wildcards.dataset
    return [f"data/raw/{ds}/downloads/shard-{s}.parquet" for s in download_shard_ids(ds)]


def scan_inputs(wildcards):
    """A scan shard waits for assembly (multi-part archives) or only for its own download."""
    ds = wildcards.dataset
    if DATASETS.get(ds).needs_assembly:
        return f"data/raw/{ds}/assembled.json"
    return f"data/raw/{ds}/downloads/shard-{wildcards.shard}.parquet"


def manifest_shards(wildcards):
    ds = wildcards.dataset
    return [f"data/{ds}/manifest/shard-{s}.parquet" for s in download_shard_ids(ds)]


def shard_number(wildcards):
    return int(wildcards.shard)


def acquire_options(wildcards):
    """Command-line options of the acquisition stages, from the dataset's config entry."""
    spec = config["datasets"][wildcards.dataset]
    options = ["--root data/raw --data-root data --no-progress"]
    options.append(f"--num-shards {spec.get('download_shards', 1)}")
    options.append(f"--jobs {spec.get('jobs', 4)}")
    if spec.get("source"):
        options.append(f"--source {spec['source']}")
    options += [f"--subset {subset}" for subset in spec.get("subsets", [])]
    options += [f"--mirror {key}={url}" for key, url in sorted(spec.get("mirrors", {}).items())]
    return " ".join(options)


def statistics_files():
    return [f"data/{d}/statistics.json" for d in downloaded_datasets()]


def statistics_options(wildcards):
    return " ".join(f"--dataset {d}" for d in downloaded_datasets())


def dataset_root(dataset):
    """Root folder of a dataset (its manifest lies there)."""
    return f"data/{dataset}"


def dataset_manifest(wildcards):
    """Manifest of the dataset a preprocessing shard reads."""
    return f"{dataset_root(wildcards.dataset)}/manifest.parquet"


def shard_ids(dataset):
    """Zero-padded shard ids of a dataset (static: no checkpoint needed)."""
    return [f"{i:03d}" for i in range(config["datasets"][dataset]["num_shards"])]


def shard_dirs(dataset, recipe):
    """All preprocessed shard folders of a dataset under a recipe."""
    return [f"results/preprocessed/{dataset}/{recipe}/shard-{s}" for s in shard_ids(dataset)]


def shard_dirs_of(wildcards):
    """Shard folders to merge for the ``{dataset}/{recipe}`` wildcards."""
    return shard_dirs(wildcards.dataset, wildcards.recipe)


def num_shards(wildcards):
    return config["datasets"][wildcards.dataset]["num_shards"]


def recipe_params(wildcards):
    """Recipe parameters from config as ``--preset NAME`` (configs/recipe/<NAME>.yaml) and
    repeated ``--param key=value`` options (applied over the preset)."""
    params = config["preprocess"].get(wildcards.recipe, {})
    options = [f"--preset {params['preset']}"] if params.get("preset") else []
    for key, value in sorted(params.items()):
        if key in ("datasets", "preset"):
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(str(item) for item in value)
        options.append(f"--param {key}={value}")
    return " ".join(options)


def model_gpus(wildcards):
    """The ``gpu`` resource of a model job (training, generation, scoring): 1 where it runs on
    a GPU (``device: cuda``, or ``auto`` with an NVIDIA driver), else 0. The workstation
    profile lets one ``gpu=1`` job run at a time; on a CPU-only machine that limit would only
    serialise the jobs. A cluster profile sets the resource per rule (``set-resources``)."""
    from talking_heads.utils.hardware import has_nvidia_driver

    device = str(config["device"])
    return int(device.startswith("cuda") or (device == "auto" and has_nvidia_driver()))


def preprocess_gpus(wildcards):
    """1 when the recipe's detector or landmarker runs on torch (S3FD, FAN), else 0."""
    params = config["preprocess"].get(wildcards.recipe, {})
    torch_backends = {"sfd", "fan68"}
    return int(bool({params.get("detector"), params.get("landmarks")} & torch_backends))


def preprocess_pairs():
    """(dataset, recipe) pairs to preprocess: those methods and evaluation read, and each
    recipe's ``datasets`` list in config."""
    pairs = [(spec["dataset"], spec["recipe"]) for spec in config["methods"].values()]
    pairs += [evaluation_data(e, p) for e, p in evaluations()]
    pairs.append((config["evaluation"]["dataset"], config["animation"]["recipe"]))
    for recipe, params in config["preprocess"].items():
        pairs += [(dataset, recipe) for dataset in params.get("datasets", [])]
    return list(dict.fromkeys(pairs))


OFFICIAL_SUFFIX = "_official"


def official_models():
    """``{model: method}`` of the authors' checkpoints named in config and present in the
    weights directory (each imported as ``results/models/<method>_official``)."""
    from talking_heads.weights import weights_dir

    found = {}
    for method, spec in config["methods"].items():
        official = spec.get("official")
        if official and (weights_dir() / official["file"]).is_file():
            found[method + OFFICIAL_SUFFIX] = method
    return found


def trained_models():
    """``{experiment: method}`` of the experiments to train."""
    return {
        spec["experiment"]: method
        for method, spec in config["methods"].items()
        if spec.get("train", True)
    }


def method_of(experiment):
    """The method of a model: a configured experiment, or ``<method>_official``."""
    base = experiment.removesuffix(OFFICIAL_SUFFIX)
    if experiment.endswith(OFFICIAL_SUFFIX) and base in config["methods"]:
        return base
    for method, spec in config["methods"].items():
        if spec["experiment"] == experiment:
            return method
    raise ValueError(f"no method in config uses experiment {experiment!r}")


def official_files(wildcards):
    """The official checkpoint in the weights directory for ``{method}``, and the further
    files its import reads (``official.requires``)."""
    from talking_heads.weights import weights_dir

    official = config["methods"][wildcards.method]["official"]
    return {
        "official": str(weights_dir() / official["file"]),
        "requires": [str(weights_dir() / name) for name in official.get("requires", [])],
    }


def official_experiment(wildcards):
    return config["methods"][wildcards.method]["official"]["experiment"]


def method_name(wildcards):
    """Method of the ``{experiment}`` wildcard."""
    return method_of(wildcards.experiment)


def method_spec(wildcards):
    return config["methods"][method_of(wildcards.experiment)]


def training_inputs(wildcards):
    """Preprocessed shards an experiment trains on."""
    spec = method_spec(wildcards)
    return {
        "manifest": f"results/preprocessed/{spec['dataset']}/{spec['recipe']}/manifest.parquet",
        "shards": shard_dirs(spec["dataset"], spec["recipe"]),
    }


def training_shards_dir(wildcards):
    spec = method_spec(wildcards)
    return f"results/preprocessed/{spec['dataset']}/{spec['recipe']}"


def hydra_config_digest(wildcards):
    """Digest of the training configs: edits to them re-run training (a params trigger).
    Workflow, generation-protocol and scoring configs do not affect training."""
    digest = hashlib.sha256()
    for path in sorted(HYDRA_CONFIG_DIR.rglob("*.yaml")):
        group = path.relative_to(HYDRA_CONFIG_DIR).parts[0]
        if group not in {"workflow", "protocol", "scoring"}:
            digest.update(path.as_posix().encode() + path.read_bytes())
    return digest.hexdigest()[:16]


PROTOCOLS = list(config["evaluation"]["protocols"])
# settings of a protocol's config entry that choose its data, not the protocol's own settings
PROTOCOL_DATA_KEYS = ("dataset", "recipe")


def protocol_overrides(protocol):
    """The ``{protocol}``'s config entry without its data keys."""
    entry = config["evaluation"]["protocols"][protocol] or {}
    return {k: v for k, v in entry.items() if k not in PROTOCOL_DATA_KEYS}


def protocol_spec(protocol):
    """The protocol's declaration (its YAML file with the config's overrides)."""
    from talking_heads.inference.protocols import load_protocol

    return load_protocol(protocol, **protocol_overrides(protocol))


def method_registry(experiment):
    """The registry entry of the method of a model."""
    from talking_heads.models import METHODS

    return METHODS.get(method_of(experiment))


def evaluations():
    """(model, protocol) pairs to run: every protocol that applies to the model's family."""
    from talking_heads.inference.protocols import applies_to

    specs = {p: protocol_spec(p) for p in PROTOCOLS}
    return [
        (e, p)
        for e in experiments()
        for p in PROTOCOLS
        if applies_to(specs[p], method_registry(e).family)
    ]


def evaluation_data(experiment, protocol):
    """(dataset, recipe) a model is evaluated on under a protocol: the protocol entry's
    ``dataset``/``recipe``, else ``evaluation.dataset`` and the recipe the method trains on."""
    entry = config["evaluation"]["protocols"][protocol] or {}
    dataset = entry.get("dataset", config["evaluation"]["dataset"])
    recipe = entry.get("recipe", config["methods"][method_of(experiment)]["recipe"])
    return dataset, recipe


def evaluation_shards(wildcards):
    return shard_dirs(*evaluation_data(wildcards.experiment, wildcards.protocol))


def protocol_options(wildcards):
    """``--split`` and ``--param key=value`` overrides of the ``{protocol}`` from config."""
    ev = config["evaluation"]
    options = [f"--split {ev['split']}"] if ev.get("split") else []
    overrides = protocol_overrides(wildcards.protocol)
    options += [f"--param {key}={value}" for key, value in sorted(overrides.items())]
    return " ".join(options)


def scoring_options(wildcards):
    """``--scoring NAME --scoring-param key=value`` for the ``{protocol}``'s scoring."""
    settings = dict(config["evaluation"]["scoring"].get(wildcards.protocol) or {})
    if "protocol" not in settings:
        raise ValueError(
            f"config evaluation.scoring has no entry for protocol {wildcards.protocol!r}"
        )
    options = [f"--scoring {settings.pop('protocol')}"]
    options += [f"--scoring-param {key}={value}" for key, value in sorted(settings.items())]
    return " ".join(options)


def protocol_label(wildcards):
    label = protocol_spec(wildcards.protocol).label
    return f"{wildcards.protocol}: {label}"


def showcase_clips(experiment):
    """``{input kind: clip}`` of the comparison clip for a model: the ``animation.inputs``
    its method declares."""
    declared = method_registry(experiment).declaration.input_kinds
    chosen = config["animation"]["inputs"]
    return {kind: chosen[kind] for kind in declared if kind in chosen}


def showcase_name(experiment):
    return "__".join(showcase_clips(experiment).values())


def showcase_shard(experiment=None):
    """The shard the comparison clip's inputs come from: ``animation.recipe``'s, or for a
    model whose method trains on another recipe (lip-sync: ``wav2lip``), that recipe's."""
    ev = config["evaluation"]
    recipe = config["animation"]["recipe"]
    if experiment is not None and not experiment.endswith(OFFICIAL_SUFFIX):
        recipe = config["methods"][method_of(experiment)].get("recipe", recipe)
    return shard_dirs(ev["dataset"], recipe)[0]


def showcase_inputs(wildcards):
    return {
        "ckpt": f"results/models/{wildcards.experiment}/model.ckpt",
        "shard": showcase_shard(wildcards.experiment),
    }


def showcase_options(wildcards, input):
    """``--<kind> <file>`` per declared input and ``--option k=v`` for the options the method
    declares (from ``animation.options``)."""
    from talking_heads.models.interface import SHARD_INPUT_FILES

    spec = method_registry(wildcards.experiment)
    files = [
        (
            f"--{kind} {input.shard}/{SHARD_INPUT_FILES[kind].format(clip)}"
            if kind in SHARD_INPUT_FILES
            else f"--{kind} {clip}"
        )  # a label (emotion), not a clip
        for kind, clip in showcase_clips(wildcards.experiment).items()
    ]
    names = {o.name for o in spec.declaration.options}
    chosen = config["animation"].get("options") or {}
    options = [f"--option {k}={v}" for k, v in sorted(chosen.items()) if k in names]
    return " ".join(files + options)


def experiments():
    """Every model to evaluate: the trained experiments, then the imported official ones."""
    return [*trained_models(), *official_models()]


def row_method_name(wildcards):
    return method_registry(wildcards.experiment).survey_name


def row_table(wildcards):
    """The survey table the model's rows go to (its method's declaration)."""
    return method_registry(wildcards.experiment).report_table


def row_resolution(wildcards):
    if wildcards.experiment.endswith(OFFICIAL_SUFFIX):
        from talking_heads.config import experiment_model_config

        spec = config["methods"][method_of(wildcards.experiment)]["official"]
        return experiment_model_config(spec["experiment"])["resolution"]
    return method_spec(wildcards)["resolution"]


def row_checkpoint_label(wildcards, input):
    if wildcards.experiment.endswith(OFFICIAL_SUFFIX):
        spec = config["methods"][method_of(wildcards.experiment)]["official"]
        return f"official {spec['file']} (imported)"
    return input.ckpt


def showcase_video(experiment):
    return f"results/generated/{experiment}/animation/{showcase_name(experiment)}.mp4"


#: a model name, but not the ``ground_truth`` rows' folder
NOT_GROUND_TRUTH = r"(?!ground_truth\b)[A-Za-z0-9_]+"


def ground_truth_protocols():
    """Protocols whose real clips are scored too (``ground_truth: true`` in their YAML), with
    the first model evaluated under each (whose evaluation data they share)."""
    first = {}
    for experiment, protocol in evaluations():
        if protocol_spec(protocol).extra.get("ground_truth"):
            first.setdefault(protocol, experiment)
    return first


def ground_truth_shards(wildcards):
    experiment = ground_truth_protocols()[wildcards.protocol]
    return shard_dirs(*evaluation_data(experiment, wildcards.protocol))


def ground_truth_options(wildcards, input):
    """``--generated``/``--reference`` (the shards' real crops) and ``--audio`` (their
    speech) for scoring the ground truth of ``{protocol}``."""
    clips = " ".join(f"{shard}/clips" for shard in input.shards)
    audio = " ".join(f"{shard}/audio" for shard in input.shards)
    return f"--generated {clips} --reference {clips} --audio {audio}"


def ground_truth_resolution(wildcards):
    experiment = ground_truth_protocols()[wildcards.protocol]
    return row_resolution(type("W", (), {"experiment": experiment})())


def table_rows(wildcards):
    rows = [f"results/report/rows/{e}/{p}.json" for e, p in evaluations()]
    return rows + [f"results/report/rows/ground_truth/{p}.json" for p in ground_truth_protocols()]


def table_row_options(wildcards, input):
    return " ".join(f"--row {row}" for row in input.rows)


def figure_experiments():
    """Models shown in the comparison figure: those driven by a source and a driving video."""
    return [
        e
        for e in experiments()
        if {"source", "driving"} <= set(method_registry(e).declaration.required_kinds)
    ]


def figure_inputs(wildcards):
    return {
        "shard": showcase_shard(),
        "videos": [showcase_video(e) for e in figure_experiments()],
    }


def figure_options(wildcards, input):
    clips = config["animation"]["inputs"]
    generated = " ".join(
        f"--generated '{row_label(e)}={video}'"
        for e, video in zip(figure_experiments(), input.videos)
    )
    return (
        f"--source {input.shard}/clips/{clips['source']}.png"
        f" --driving {input.shard}/clips/{clips['driving']}.mp4 {generated}"
    )


def lipsync_figure_spec():
    """``report.lipsync_figure`` with its defaults (protocol ``lipsync_pairs``, pair 0)."""
    return {
        "protocol": "lipsync_pairs",
        "pair": "00000",
        **config["report"].get("lipsync_figure", {}),
    }


def lipsync_figure_experiments():
    """Models in the lip-sync figure: those evaluated under its protocol."""
    protocol = lipsync_figure_spec()["protocol"]
    return [e for e, p in evaluations() if p == protocol]


def lipsync_figure_inputs(wildcards):
    protocol = lipsync_figure_spec()["protocol"]
    return [f"results/generated/{e}/{protocol}" for e in lipsync_figure_experiments()]


def lipsync_figure_options(wildcards, input):
    """``--reference``/``--audio`` of the figure's pair (from the first model's run) and one
    ``--generated label=video`` per model."""
    pair = lipsync_figure_spec()["pair"]
    first = input.runs[0]
    generated = " ".join(
        f"--generated '{row_label(e)}={run}/generated/{pair}.mp4'"
        for e, run in zip(lipsync_figure_experiments(), input.runs)
    )
    return f"--reference {first}/reference/{pair}.mp4 --audio {first}/audio/{pair}.wav {generated}"


def row_label(experiment):
    return f"{method_registry(experiment).survey_name} ({experiment})"


def report_outputs():
    return [
        "results/tables/table1.md",
        "results/tables/table1.csv",
        "results/report/table2.md",
        "results/report/table2.csv",
        "results/report/table3.md",
        "results/report/table3.csv",
        "results/report/metrics.md",
        "results/report/metrics.csv",
        "results/report/figures/comparison.png",
    ] + (["results/report/figures/lipsync.png"] if lipsync_figure_experiments() else [])


def dvc_tracked_dirs():
    """Artifact folders put under DVC by the last rule (one .dvc file each)."""
    roots = [dataset_root(d) for d in config["datasets"]]
    roots += [f"data/raw/{d}" for d in downloaded_datasets()]
    return roots + [
        "results/preprocessed",
        "results/models",
        "results/generated",
        "results/metrics",
        "results/report",
        "results/tables",
    ]


def dvc_files():
    return [f"{path}.dvc" for path in dvc_tracked_dirs()]


def dvc_push_option(wildcards):
    return "--push" if config["dvc"]["push"] else "--no-push"


def artifact_outputs():
    """Every declared output of the run (what the DVC records cover), in DAG order."""
    targets = [f"{dataset_root(d)}/manifest.parquet" for d in config["datasets"]]
    targets += statistics_files()
    for dataset, recipe in preprocess_pairs():
        targets += shard_dirs(dataset, recipe)
        targets += [
            f"results/preprocessed/{dataset}/{recipe}/manifest.parquet",
            f"results/preprocessed/{dataset}/{recipe}/summary.json",
        ]
    for experiment in experiments():
        targets += [f"results/models/{experiment}/model.ckpt", showcase_video(experiment)]
    for experiment, protocol in evaluations():
        targets += [
            f"results/generated/{experiment}/{protocol}",
            f"results/metrics/{experiment}/{protocol}.json",
            f"results/report/rows/{experiment}/{protocol}.json",
        ]
    for protocol in ground_truth_protocols():
        targets += [
            f"results/metrics/ground_truth/{protocol}.json",
            f"results/report/rows/ground_truth/{protocol}.json",
        ]
    return targets + report_outputs()


def final_outputs():
    """The default targets: every artifact, and the DVC records when tracking is on."""
    targets = artifact_outputs()
    if config["dvc"]["track"]:
        targets += dvc_files() + [TIMESTAMPS]
    return targets
