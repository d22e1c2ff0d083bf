# Report: the survey's Tables 2 and 3 with our rows beside them (each model's rows in its
# method's table), every computed metric, and the comparison figure.


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
    wildcard_constraints:
        experiment=NOT_GROUND_TRUTH,
    localrule: True
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=10,
    params:
        method=row_method_name,
        table=row_table,
        data=config["report"]["data_label"],
        protocol=protocol_label,
        checkpoint=row_checkpoint_label,
        resolution=row_resolution,
    shell:
        "talking-heads report row --out {output} --method '{params.method}' --table {params.table}"
        " --metrics {input.metrics} --data {params.data} --protocol '{params.protocol}'"
        " --checkpoint '{params.checkpoint}' --resolution {params.resolution} > {log} 2>&1"


rule ground_truth_row:
    input:
        metrics="results/metrics/ground_truth/{protocol}.json",
    output:
        "results/report/rows/ground_truth/{protocol}.json",
    log:
        "logs/report/rows/ground_truth/{protocol}.log",
    benchmark:
        "benchmarks/report/rows/ground_truth/{protocol}.tsv"
    localrule: True
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=10,
    params:
        data=config["report"]["data_label"],
        protocol=protocol_label,
        resolution=ground_truth_resolution,
    shell:
        "talking-heads report row --out {output} --method 'Ground truth' --table table3"
        " --metrics {input.metrics} --data {params.data} --protocol '{params.protocol}'"
        " --checkpoint 'real clips' --resolution {params.resolution} > {log} 2>&1"


rule tables:
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
        table3_md=report(
            "results/report/table3.md",
            caption="../report/table3.rst",
            category="Tables",
        ),
        table3_csv="results/report/table3.csv",
        metrics_md=report(
            "results/report/metrics.md",
            caption="../report/metrics.rst",
            category="Tables",
        ),
        metrics_csv="results/report/metrics.csv",
    log:
        "logs/report/tables.log",
    benchmark:
        "benchmarks/report/tables.tsv"
    localrule: True
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=10,
    params:
        rows=table_row_options,
    shell:
        "talking-heads report tables {params.rows} --out-dir results/report > {log} 2>&1"


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
        inputs=figure_options,
        num_frames=config["report"]["figure_frames"],
    shell:
        "talking-heads report figure {params.inputs} --num-frames {params.num_frames}"
        " --out {output} > {log} 2>&1"


rule lipsync_figure:
    input:
        runs=lipsync_figure_inputs,
    output:
        report(
            "results/report/figures/lipsync.png",
            caption="../report/lipsync.rst",
            category="Figures",
        ),
    log:
        "logs/report/lipsync_figure.log",
    benchmark:
        "benchmarks/report/lipsync_figure.tsv"
    localrule: True
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=10,
    params:
        inputs=lipsync_figure_options,
        num_frames=config["report"]["figure_frames"],
    shell:
        "talking-heads report lipsync-figure {params.inputs} --num-frames {params.num_frames}"
        " --out {output} > {log} 2>&1"


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
