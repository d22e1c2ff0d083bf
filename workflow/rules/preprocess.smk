# Preprocessing: one job per shard (a fixed group of clips), then one merged manifest.


rule preprocess_shard:
    input:
        manifest=dataset_manifest,
    output:
        directory("results/preprocessed/{dataset}/{recipe}/shard-{shard}"),
    log:
        "logs/preprocess/{dataset}/{recipe}/shard-{shard}.log",
    benchmark:
        "benchmarks/preprocess/{dataset}/{recipe}/shard-{shard}.tsv"
    resources:
        gpu=preprocess_gpus,
        mem_mb=8000,
        runtime=240,
    params:
        num_shards=num_shards,
        recipe_params=recipe_params,
    shell:
        "talking-heads preprocess --manifest {input.manifest} --recipe {wildcards.recipe}"
        " --shard {wildcards.shard} --num-shards {params.num_shards} {params.recipe_params}"
        " --out {output} > {log} 2>&1"


rule preprocess_merge:
    input:
        shard_dirs_of,
    output:
        manifest="results/preprocessed/{dataset}/{recipe}/manifest.parquet",
        summary="results/preprocessed/{dataset}/{recipe}/summary.json",
    log:
        "logs/preprocess/{dataset}/{recipe}/merge.log",
    benchmark:
        "benchmarks/preprocess/{dataset}/{recipe}/merge.tsv"
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=10,
    shell:
        "talking-heads manifest merge {input} --out {output.manifest}"
        " --summary {output.summary} > {log} 2>&1"
