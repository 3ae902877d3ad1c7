"""The SQL models. Importing this package registers every table on ``db.metadata``."""

from server.models.campaigns import Campaign, CampaignSeed, Membership, Role, SeedKind
from server.models.exports import Export
from server.models.jobs import Job, JobStatus
from server.models.labels import Label, LabelAction, LabelHistory, LabelValue
from server.models.probes import ProbeRun
from server.models.security import SignInFailure
from server.models.teams import Handout, SourceLabel
from server.models.users import ApiToken, User

__all__ = [
    "ApiToken",
    "Campaign",
    "CampaignSeed",
    "Export",
    "Handout",
    "Job",
    "JobStatus",
    "Label",
    "LabelAction",
    "LabelHistory",
    "LabelValue",
    "Membership",
    "ProbeRun",
    "Role",
    "SeedKind",
    "SignInFailure",
    "SourceLabel",
    "User",
]
