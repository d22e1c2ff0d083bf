# Data acquisition. The demo corpus is built from media that PyPI packages ship (no network);
# a `kind: folder` dataset is the user's own directory of media, indexed in place; every
# other dataset goes through the sharded acquisition stages of its registry entry:
# index (metadata) -> download (per shard) -> assemble (multi-part archives) -> scan (per
# shard: layout parsed, clips described) -> merge (one manifest, coverage, statistics).
# Raw media live in data/raw/{dataset}/, manifests in data/{dataset}/.


rule prepare_dataset:
    output:
        manifest=ensure("data/{dataset}/manifest.parquet", non_empty=True),
    log:
        "logs/data/{dataset}.log",
    benchmark:
        "benchmarks/data/{dataset}.tsv"
    wildcard_constraints:
        dataset=BUILT_DATASETS_RE,
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=720,
    shell:
        "talking-heads datasets prepare {wildcards.dataset} --root data/{wildcards.dataset}"
        " > {log} 2>&1"


rule index_folder_dataset:
    input:
        folder_files,
    output:
        manifest=ensure("data/{dataset}/manifest.parquet", non_empty=True),
        summary="data/{dataset}/summary.json",
    log:
        "logs/data/{dataset}.log",
    benchmark:
        "benchmarks/data/{dataset}.tsv"
    wildcard_constraints:
        dataset=FOLDER_DATASETS_RE,
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=240,
    params:
        path=folder_path,
    shell:
        "talking-heads datasets index folder --path '{params.path}' --out data/{wildcards.dataset}"
        " > {log} 2>&1"


rule dataset_index:
    output:
        "data/raw/{dataset}/index.parquet",
    log:
        "logs/data/{dataset}/index.log",
    benchmark:
        "benchmarks/data/{dataset}/index.tsv"
    wildcard_constraints:
        dataset=DOWNLOADED_DATASETS_RE,
    resources:
        gpu=0,
        mem_mb=4000,
        runtime=120,
        downloads=1,
    params:
        options=acquire_options,
    shell:
        "talking-heads datasets stage index {wildcards.dataset} {params.options} > {log} 2>&1"


rule dataset_download:
    input:
        "data/raw/{dataset}/index.parquet",
    output:
        "data/raw/{dataset}/downloads/shard-{shard}.parquet",
    log:
        "logs/data/{dataset}/download/shard-{shard}.log",
    benchmark:
        "benchmarks/data/{dataset}/download/shard-{shard}.tsv"
    wildcard_constraints:
        dataset=DOWNLOADED_DATASETS_RE,
    resources:
        gpu=0,
        mem_mb=4000,
        runtime=1440,
        downloads=1,
    params:
        options=acquire_options,
        shard=shard_number,
    shell:
        "talking-heads datasets stage download {wildcards.dataset} --shard {params.shard}"
        " {params.options} > {log} 2>&1"


rule dataset_assemble:
    input:
        download_records,
    output:
        "data/raw/{dataset}/assembled.json",
    log:
        "logs/data/{dataset}/assemble.log",
    benchmark:
        "benchmarks/data/{dataset}/assemble.tsv"
    wildcard_constraints:
        dataset=DOWNLOADED_DATASETS_RE,
    resources:
        gpu=0,
        mem_mb=4000,
        runtime=1440,
    params:
        options=acquire_options,
    shell:
        "talking-heads datasets stage assemble {wildcards.dataset} {params.options}" " > {log} 2>&1"


rule dataset_scan:
    input:
        scan_inputs,
    output:
        "data/{dataset}/manifest/shard-{shard}.parquet",
    log:
        "logs/data/{dataset}/scan/shard-{shard}.log",
    benchmark:
        "benchmarks/data/{dataset}/scan/shard-{shard}.tsv"
    wildcard_constraints:
        dataset=DOWNLOADED_DATASETS_RE,
    resources:
        gpu=0,
        mem_mb=4000,
        runtime=240,
    params:
        options=acquire_options,
        shard=shard_number,
    shell:
        "talking-heads datasets stage scan {wildcards.dataset} --shard {params.shard}"
        " {params.options} > {log} 2>&1"


rule dataset_merge:
    input:
        manifest_shards,
    output:
        manifest=ensure("data/{dataset}/manifest.parquet", non_empty=True),
        coverage="data/{dataset}/coverage.json",
        statistics="data/{dataset}/statistics.json",
    log:
        "logs/data/{dataset}/merge.log",
    benchmark:
        "benchmarks/data/{dataset}/merge.tsv"
    wildcard_constraints:
        dataset=DOWNLOADED_DATASETS_RE,
    resources:
        gpu=0,
        mem_mb=8000,
        runtime=60,
    params:
        options=acquire_options,
    shell:
        "talking-heads datasets stage merge {wildcards.dataset} {params.options} > {log} 2>&1"
