# Inference: each evaluation protocol's generated frames, and the comparison animation.


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
        gpu=1,
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


rule animate:
    input:
        unpack(animation_inputs),
    output:
        "results/generated/{experiment}/animation/{source}__{driving}.mp4",
    log:
        "logs/infer/{experiment}/animation/{source}__{driving}.log",
    benchmark:
        "benchmarks/infer/{experiment}/animation/{source}__{driving}.tsv"
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=30,
    params:
        method=method_name,
        relative=relative_flag,
        adapt_scale=adapt_scale_flag,
        batch_size=config["evaluation"]["batch_size"],
        device=config["device"],
    shell:
        "talking-heads animate --method {params.method} --checkpoint {input.ckpt}"
        " --source {input.shard}/clips/{wildcards.source}.png"
        " --driving {input.shard}/clips/{wildcards.driving}.mp4 --out {output}"
        " {params.relative} {params.adapt_scale} --batch-size {params.batch_size}"
        " --device {params.device} > {log} 2>&1"
