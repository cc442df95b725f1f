# greensink: satellite imagery -> green-space carbon accounts (see README.md, docs/).
# Entry point only: configuration, validation, includes and the final targets.
import os
import sys
from pathlib import Path

REPO = Path(workflow.basedir)  # this checkout: package, templates, schemas
_src = str(REPO / "src")
sys.path.insert(0, _src)  # the package of this checkout, for parse time ...
# ... and for the rule scripts (also under --use-conda). Set here, not required from the user.
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (_src, os.getenv("PYTHONPATH")) if p))

from greensink.config import validate as _validate  # noqa: E402
from greensink.errors import ConfigError  # noqa: E402


configfile: "config/config.yaml"


try:
    config.update(_validate(config))
except ConfigError as _err:
    raise WorkflowError(str(_err)) from None


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/zones.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/composite.smk"
include: "workflow/rules/vegetation.smk"
include: "workflow/rules/types.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/carbon.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/change.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
