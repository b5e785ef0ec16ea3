# Config validation and what every rule file shares.

import sys
from pathlib import Path

# The ftdag package lives next to the rules; the workflow itself imports it from here,
# installed or not (`make install` installs it for the jobs).
sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from ftdag.core.config import ConfigError, validate_config
from ftdag.core.provenance import config_hash
from ftdag.exp3 import config_checks as exp3_config_checks

# Each family plugs in the checks across its keys that the schema cannot express.
try:
    validate_config(config, {"exp3": exp3_config_checks.problems})
except ConfigError as error:
    raise WorkflowError(str(error)) from None


RUNTIME = config["runtime"]
TRACKING = config["tracking"]


def get_final_outputs():
    """The default target: every family's results, then the cost of the campaign."""
    return [
        *get_family_outputs(),
        "results/cost_per_result.csv",
        "results/campaign.html",
    ]


def get_family_outputs():
    return get_exp3_outputs()
