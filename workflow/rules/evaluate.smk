# Scoring: each protocol's generated frames against the references, speech and source
# portraits the protocol run names in its score_inputs.json.


rule score:
    input:
        generated="results/generated/{experiment}/{protocol}",
        shards=evaluation_shards,
    output:
        "results/metrics/{experiment}/{protocol}.json",
    log:
        "logs/evaluate/{experiment}/{protocol}.log",
    benchmark:
        "benchmarks/evaluate/{experiment}/{protocol}.tsv"
    wildcard_constraints:
        experiment=NOT_GROUND_TRUTH,
    resources:
        gpu=model_gpus,
        mem_mb=8000,
        runtime=60,
    params:
        scoring=scoring_options,
        device=config["device"],
        batch_size=config["evaluation"]["batch_size"],
    shell:
        "talking-heads score {params.scoring} --inputs-from {input.generated}"
        " --protocol {wildcards.protocol}"
        " --batch-size {params.batch_size} --device {params.device} --out {output}"
        " > {log} 2>&1"


# The real clips of a protocol with `ground_truth: true`, scored like the methods' outputs
# (their own speech): the row every lip-sync number is read against.
rule score_ground_truth:
    input:
        shards=ground_truth_shards,
    output:
        "results/metrics/ground_truth/{protocol}.json",
    log:
        "logs/evaluate/ground_truth/{protocol}.log",
    benchmark:
        "benchmarks/evaluate/ground_truth/{protocol}.tsv"
    resources:
        gpu=model_gpus,
        mem_mb=8000,
        runtime=60,
    params:
        scoring=scoring_options,
        inputs=ground_truth_options,
        device=config["device"],
        batch_size=config["evaluation"]["batch_size"],
    shell:
        "talking-heads score {params.scoring} {params.inputs}"
        " --protocol '{wildcards.protocol} (ground truth)'"
        " --batch-size {params.batch_size} --device {params.device} --out {output}"
        " > {log} 2>&1"
