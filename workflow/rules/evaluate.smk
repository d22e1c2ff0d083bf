# Scoring: each protocol's generated frames against its ground truth.


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
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=60,
    params:
        metrics=",".join(config["evaluation"]["metrics"]),
        reference=score_reference,
        device=config["device"],
    shell:
        "talking-heads score --metrics {params.metrics} --generated {input.generated}/generated"
        " --reference {params.reference} --protocol {wildcards.protocol}"
        " --device {params.device} --out {output} > {log} 2>&1"
