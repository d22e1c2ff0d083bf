# Scoring: the protocol's generated videos against the ground truth clips.


rule score:
    input:
        generated="results/generated/{experiment}/reconstruction",
        shards=evaluation_shards,
    output:
        "results/metrics/{experiment}/reconstruction.json",
    log:
        "logs/evaluate/{experiment}/reconstruction.log",
    benchmark:
        "benchmarks/evaluate/{experiment}/reconstruction.tsv"
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=60,
    params:
        metrics=",".join(config["evaluation"]["metrics"]),
        reference=evaluation_reference,
        device=config["device"],
    shell:
        "talking-heads score --metrics {params.metrics} --generated {input.generated}"
        " --reference {params.reference} --protocol reconstruction"
        " --device {params.device} --out {output} > {log} 2>&1"
