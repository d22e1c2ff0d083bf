# Tracking: every artifact folder goes under DVC (one .dvc file each) and is pushed to the
# default remote (.dvc/config: a local directory unless changed).


rule dvc_track:
    input:
        report_outputs(),
    output:
        dvc_files(),
    log:
        "logs/track/dvc.log",
    benchmark:
        "benchmarks/track/dvc.tsv"
    localrule: True
    params:
        dirs=dvc_tracked_dirs(),
        push=dvc_push_option,
    shell:
        "talking-heads dvc track {params.dirs} {params.push} > {log} 2>&1"
