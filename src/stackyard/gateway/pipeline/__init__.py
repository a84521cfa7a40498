"""One request pipeline behind every door.

A door (:mod:`stackyard.gateway.doors`) parses its wire format; the pipeline admits the
request and runs the stages, in one fixed order, around the call to the routed deployment;
settlement runs on every outcome. See ``docs/gateway.md`` ("The request pipeline").
"""

from stackyard.gateway.pipeline.core import Pipeline
from stackyard.gateway.pipeline.door import Door
from stackyard.gateway.pipeline.exchange import Events, Exchange, Inbound, Served
from stackyard.gateway.pipeline.stage import Stage

__all__ = ["Door", "Events", "Exchange", "Inbound", "Pipeline", "Served", "Stage"]
