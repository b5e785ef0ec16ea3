"""Stable packing of group jobs on a cluster, with checkpoints in the DAG.

Snakemake 9 packs independent jobs of a group into chunks of `group-components` by merging
group jobs in place (`GroupJob.merge`), and packs them again every time the DAG changes, as it
does after each finished checkpoint (the MTL family's training). The merged objects are the
ones its group cache returns next time, so chunks grow with every change (chunks of 2 became
4, then 8, on the local cluster), and a job already submitted in one chunk goes out again in
another: evaluations ran twice, steps counted past 100%, and the run could end in
`KeyError: JobGroup(...)` (snakemake/snakemake#2151, snakemake-executor-plugin-slurm#253 and
#463, all open). `install()` replaces that packing step with one that:

- builds each chunk as a new group job (the cached single-component groups stay as they are),
  so packing the same jobs again gives the same chunks;
- orders the components by their outputs, so the chunks do not depend on set order;
- leaves a chunk that is running as it is, and packs only the jobs outside running chunks.

It changes which jobs share a submission, never which jobs run. Installed by the workflow
(workflow/rules/common.smk) for the Snakemake versions pyproject.toml allows; tested on a real
SLURM cluster (tests/test_slurm.py).
"""

from __future__ import annotations

from collections import defaultdict


def _output_key(group) -> list[str]:
    return sorted(str(path) for job in group.jobs for path in job.output)


def pack_group_components(dag) -> None:
    """A replacement of `snakemake.dag.DAG._update_group_components` (see the module's doc)."""
    from snakemake.common import group_into_chunks

    running = {job: group for group in dag._running if group.is_group() for job in group.jobs}
    components = defaultdict(set)
    for job, group in list(dag._group.items()):
        if job in running:
            dag._group[job] = running[job]
        else:
            components[group.groupid].add(group)
    settings = dag.workflow.group_settings.group_components
    for groupid, groups in components.items():
        size = settings.get(dag.workflow.parent_groupids.get(groupid, groupid), 1)
        if size <= 1:
            continue
        for chunk in group_into_chunks(size, sorted(groups, key=_output_key)):
            if len(chunk) > 1:
                jobs = [job for group in chunk for job in group.jobs]
                packed = dag.group_job_factory.new(groupid, jobs, dag.workflow.global_resources)
                for job in packed.jobs:
                    dag._group[job] = packed
    for group in set(dag._group.values()):
        group.finalize()


def install() -> None:
    from snakemake.dag import DAG

    DAG._update_group_components = pack_group_components
