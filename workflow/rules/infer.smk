# Inference: each evaluation protocol's generated frames, and the comparison clip.


rule run_protocol:
    input:
        ckpt="results/models/{experiment}/model.ckpt",
        shards=evaluation_shards,
    output:
        directory("results/generated/{experiment}/{protocol}"),
    log:
        "logs/infer/{experiment}/{protocol}.log",
    benchmark:
        "benchmarks/infer/{experiment}/{protocol}.tsv"
    resources:
        gpu=model_gpus,
        mem_mb=8000,
        runtime=240,
    params:
        method=method_name,
        options=protocol_options,
        batch_size=config["evaluation"]["batch_size"],
        device=config["device"],
    shell:
        "talking-heads protocol run --protocol {wildcards.protocol} --method {params.method}"
        " --checkpoint {input.ckpt} --shards {input.shards} --out {output} {params.options}"
        " --batch-size {params.batch_size} --device {params.device} > {log} 2>&1"


# The comparison clip: each model generates it from the inputs its method declares
# (`animation.inputs` in config) with the options it declares (`animation.options`).
rule generate:
    input:
        unpack(showcase_inputs),
    output:
        "results/generated/{experiment}/animation/{showcase}.mp4",
    log:
        "logs/infer/{experiment}/animation/{showcase}.log",
    benchmark:
        "benchmarks/infer/{experiment}/animation/{showcase}.tsv"
    resources:
        gpu=model_gpus,
        mem_mb=8000,
        runtime=30,
    params:
        method=method_name,
        inputs=showcase_options,
        batch_size=config["evaluation"]["batch_size"],
        device=config["device"],
    shell:
        "talking-heads generate --method {params.method} --checkpoint {input.ckpt}"
        " {params.inputs} --out {output} --batch-size {params.batch_size}"
        " --device {params.device} > {log} 2>&1"
