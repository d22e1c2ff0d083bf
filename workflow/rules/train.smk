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
        gpu=1,
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
