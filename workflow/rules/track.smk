# Tracking: every artifact folder goes under DVC (one .dvc file each) and is pushed to the
# default remote (.dvc/config: a local directory unless changed). The outputs' timestamps are
# recorded beside the .dvc files (commit both) so a fresh clone + `dvc pull` is up to date.


rule dvc_track:
    input:
        artifact_outputs(),
    output:
        dvc_files(),
        timestamps=TIMESTAMPS,
    log:
        "logs/track/dvc.log",
    benchmark:
        "benchmarks/track/dvc.tsv"
    localrule: True
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=10,
    params:
        dirs=dvc_tracked_dirs(),
        push=dvc_push_option,
    shell:
        "talking-heads dvc track {params.dirs} {params.push} --outputs {input}"
        " --timestamps {output.timestamps} > {log} 2>&1"
