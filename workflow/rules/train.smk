# Training: the Hydra entry point with the experiment as an override. Checkpoints live in
# results/train/{experiment}/checkpoints (not a declared output, so an interrupted job keeps
# them and the re-run resumes from last.ckpt); the final weights are the declared output.


rule train:
    input:
        unpack(training_inputs),
    output:
        ckpt="results/models/{experiment}/model.ckpt",
    log:
        "logs/train/{experiment}.log",
    benchmark:
        "benchmarks/train/{experiment}.tsv"
    threads: 4
    resources:
        gpu=model_gpus,
        mem_mb=16000,
        runtime=2880,
    params:
        shards_dir=training_shards_dir,
        run_dir="results/train/{experiment}",
        config_digest=hydra_config_digest,
    shell:
        "talking-heads-train experiment={wildcards.experiment}"
        " hydra.run.dir={params.run_dir} data.shards_dir={params.shards_dir}"
        " export_path={output.ckpt} > {log} 2>&1"


# The authors' released checkpoint, when config names it and it is in the weights directory:
# converted strictly into our checkpoint format (an import, not a training run).
ruleorder: import_official > train


rule import_official:
    input:
        unpack(official_files),
    output:
        ckpt="results/models/{method}_official/model.ckpt",
    log:
        "logs/train/{method}_official.log",
    benchmark:
        "benchmarks/train/{method}_official.tsv"
    localrule: True
    resources:
        gpu=0,
        mem_mb=4000,
        runtime=10,
    params:
        experiment=official_experiment,
    shell:
        "talking-heads import-checkpoint --method {wildcards.method} --official {input.official}"
        " --experiment {params.experiment} --out {output.ckpt} > {log} 2>&1"
