# Data acquisition: every dataset is prepared by its registry entry into data/{dataset}/
# (the demo corpus is built from media that PyPI packages ship; no network).


rule prepare_dataset:
    output:
        manifest=ensure("data/{dataset}/manifest.parquet", non_empty=True),
    log:
        "logs/data/{dataset}.log",
    benchmark:
        "benchmarks/data/{dataset}.tsv"
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=720,
    shell:
        "talking-heads datasets prepare {wildcards.dataset} --root data/{wildcards.dataset}"
        " > {log} 2>&1"
