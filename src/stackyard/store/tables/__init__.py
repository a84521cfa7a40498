"""Tables, one module per entity group; importing this package registers them all."""

from stackyard.store.tables.audit import GuardrailDecision
from stackyard.store.tables.base import Base
from stackyard.store.tables.batches import BatchLineRecord, BatchRecord
from stackyard.store.tables.evals import EvalRun
from stackyard.store.tables.finetune import FileRecord, JobEvent, JobRecord, WeightsPart
from stackyard.store.tables.keys import VirtualKey
from stackyard.store.tables.prompts import Prompt, PromptAudit, PromptLabel, PromptVersion
from stackyard.store.tables.rag import CollectionRecord
from stackyard.store.tables.responses import StoredResponseRecord
from stackyard.store.tables.sessions import ConsoleSession
from stackyard.store.tables.spend import SpendDaily, SpendRecord
from stackyard.store.tables.spill import SpillReplay
from stackyard.store.tables.tenancy import Organization, Team, User
from stackyard.store.tables.traces import ScoreRecord, TraceRecord

__all__ = [
    "Base",
    "BatchLineRecord",
    "BatchRecord",
    "CollectionRecord",
    "ConsoleSession",
    "EvalRun",
    "FileRecord",
    "GuardrailDecision",
    "JobEvent",
    "JobRecord",
    "Organization",
    "Prompt",
    "PromptAudit",
    "PromptLabel",
    "PromptVersion",
    "ScoreRecord",
    "SpendDaily",
    "SpendRecord",
    "SpillReplay",
    "StoredResponseRecord",
    "Team",
    "TraceRecord",
    "User",
    "VirtualKey",
    "WeightsPart",
]
