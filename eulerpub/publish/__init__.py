"""Cloud-agnostic publishing: resolve the source, plan, preflight, run the pipeline per region, report.

Adapters (`eulerpub.clouds.*`) supply the API steps; this package never imports a cloud SDK.
"""

from eulerpub.publish.journal import JournalStore, RegionJournal
from eulerpub.publish.plan import PlannedStep, PublishOptions, make_spec, plan_steps
from eulerpub.publish.report import PublishResult, RegionResult, render_table
from eulerpub.publish.runner import preflight, publish
from eulerpub.publish.source import Source, from_file, from_profile, from_record

__all__ = [
    "JournalStore", "PlannedStep", "PublishOptions", "PublishResult", "RegionJournal", "RegionResult", "Source",
    "from_file", "from_profile", "from_record", "make_spec", "plan_steps", "preflight", "publish", "render_table",
]
