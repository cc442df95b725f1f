# greensink: satellite imagery -> green-space carbon accounts (see README.md, docs/).
# Entry point only: configuration, validation, includes and the final targets.
import os
import sys
from pathlib import Path

REPO = Path(workflow.basedir)  # this checkout: the package is src/greensink (schema, template, tables in it)
_src = str(REPO / "src")
sys.path.insert(0, _src)  # the package of this checkout, for parse time ...
# ... and for the rule scripts (also under --use-conda). Set here, not required from the user.
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (_src, os.getenv("PYTHONPATH")) if p))

from greensink.workflow import DEMO_CONFIG, launch_context, project_setup  # noqa: E402
from greensink.errors import GreensinkError  # noqa: E402
from snakemake.logging import logger  # noqa: E402

# A config given with --configfile is the whole config; the demo city's is used only when none is given.
if not workflow.overwrite_configfiles:

    configfile: str(DEMO_CONFIG)


# the launch folder and --directory: a cluster job (not the main process) takes the main process's
_base, _directory_given = launch_context(os.getcwd(), workflow.overwrite_workdir is not None, workflow.is_main_process)
try:  # validate, resolve input paths, check the inputs (main process only) and claim the project folder
    _project, _warnings = project_setup(
        config,
        workflow.overwrite_configfiles,
        _base,
        directory_given=_directory_given,
        main=workflow.is_main_process,
    )
except GreensinkError as _err:
    raise WorkflowError(str(_err)) from None
for _warning in _warnings:
    logger.warning(f"greensink: {_warning}")
config.clear()
config.update(_project)


workdir: config["workdir"]


report: "workflow/report/workflow.rst"  # snakemake --report report.zip: its description; captions beside it


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/zones.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/composite.smk"
include: "workflow/rules/vegetation.smk"
include: "workflow/rules/types.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/carbon.smk"
include: "workflow/rules/fill.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/targets.smk"
include: "workflow/rules/comparability.smk"
include: "workflow/rules/change.smk"
include: "workflow/rules/scenarios.smk"
include: "workflow/rules/trend.smk"
include: "workflow/rules/transitions.smk"
include: "workflow/rules/zoning.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
