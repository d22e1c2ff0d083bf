# Report: the survey's Table 2 with our rows beside it, every computed metric, and the
# comparison figure.


rule table_row:
    input:
        metrics="results/metrics/{experiment}/{protocol}.json",
        ckpt="results/models/{experiment}/model.ckpt",
    output:
        "results/report/rows/{experiment}/{protocol}.json",
    log:
        "logs/report/rows/{experiment}/{protocol}.log",
    benchmark:
        "benchmarks/report/rows/{experiment}/{protocol}.tsv"
    localrule: True
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=10,
    params:
        method=row_method_name,
        data=config["report"]["data_label"],
        protocol=protocol_label,
        checkpoint=row_checkpoint_label,
        resolution=row_resolution,
    shell:
        "talking-heads report row --out {output} --method '{params.method}'"
        " --metrics {input.metrics} --data {params.data} --protocol '{params.protocol}'"
        " --checkpoint '{params.checkpoint}' --resolution {params.resolution} > {log} 2>&1"


rule table2:
    input:
        rows=table_rows,
    output:
        md=report(
            "results/report/table2.md",
            caption="../report/table2.rst",
            category="Tables",
        ),
        csv=report(
            "results/report/table2.csv",
            caption="../report/table2.rst",
            category="Tables",
        ),
        metrics_md=report(
            "results/report/metrics.md",
            caption="../report/metrics.rst",
            category="Tables",
        ),
        metrics_csv="results/report/metrics.csv",
    log:
        "logs/report/table2.log",
    benchmark:
        "benchmarks/report/table2.tsv"
    localrule: True
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=10,
    params:
        rows=table_row_options,
    shell:
        "talking-heads report table2 {params.rows} --out-dir results/report > {log} 2>&1"


rule comparison_figure:
    input:
        unpack(figure_inputs),
    output:
        report(
            "results/report/figures/comparison.png",
            caption="../report/comparison.rst",
            category="Figures",
        ),
    log:
        "logs/report/comparison_figure.log",
    benchmark:
        "benchmarks/report/comparison_figure.tsv"
    localrule: True
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=10,
    params:
        generated=figure_generated_options,
        source_clip=config["animation"]["source_clip"],
        driving_clip=config["animation"]["driving_clip"],
        num_frames=config["report"]["figure_frames"],
    shell:
        "talking-heads report figure --source {input.shard}/clips/{params.source_clip}.png"
        " --driving {input.shard}/clips/{params.driving_clip}.mp4 {params.generated}"
        " --num-frames {params.num_frames} --out {output} > {log} 2>&1"


rule table1:
    input:
        statistics_files(),
    output:
        md=report(
            "results/tables/table1.md",
            caption="../report/table1.rst",
            category="Tables",
        ),
        csv=report(
            "results/tables/table1.csv",
            caption="../report/table1.rst",
            category="Tables",
        ),
    log:
        "logs/report/table1.log",
    benchmark:
        "benchmarks/report/table1.tsv"
    localrule: True
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=10,
    params:
        datasets=statistics_options,
    shell:
        "talking-heads datasets stats --data-root data --out results/tables {params.datasets}"
        " > {log} 2>&1"
